import { defineConfig } from 'vitest/config';

// bench/deploy runs on demand through vitest (it reuses the TypeScript test support):
//   npx vitest run --config bench/deploy/vitest.config.ts
export default defineConfig({
  test: {
    include: ['bench/deploy/*.bench-run.ts'],
    testTimeout: 1_800_000,
    hookTimeout: 1_800_000,
    reporters: ['default'],
  },
});
