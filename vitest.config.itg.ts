import { defineConfig } from 'vitest/config';

// Integration tests: the committed bundles run as the runner runs them, against real Python,
// Django, databases, Docker, a registry and sshd. Files run one at a time: they share those
// services and the machine has two cores.
export default defineConfig({
  test: {
    include: ['test/itg/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 900_000,
    fileParallelism: false,
    globalSetup: ['test/itg/global-setup.ts'],
    reporters: ['default'],
  },
});
