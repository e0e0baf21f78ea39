import { defineConfig } from 'vitest/config';

// bench/rollback runs on demand through vitest (it reuses the TypeScript test support):
//   npx vitest run --config bench/rollback/vitest.config.ts
export default defineConfig({
  test: {
    include: ['bench/rollback/*.bench-run.ts'],
    testTimeout: 1_800_000,
    hookTimeout: 1_800_000,
    reporters: ['default'],
  },
});
