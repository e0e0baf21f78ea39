import { defineConfig } from 'vitest/config';

// Integration tests: the committed bundles run as the runner runs them, against real Python,
// Django, databases, Docker, a registry and sshd. Files run one at a time: they share those
// services and the machine has two cores.
//
// ON_DEMAND files are excluded from the default run (and so from .ci/run) unless
// SLIPWAY_TEST_FULL=1: each entry says why. Every one runs for real when asked for.
const ON_DEMAND: Record<string, string> = {};

export default defineConfig({
  test: {
    include: ['test/itg/**/*.test.ts'],
    exclude: process.env.SLIPWAY_TEST_FULL === '1' ? [] : Object.keys(ON_DEMAND),
    testTimeout: 600_000,
    hookTimeout: 900_000,
    fileParallelism: false,
    globalSetup: ['test/itg/global-setup.ts'],
    reporters: ['default'],
  },
});
