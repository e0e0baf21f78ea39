import { defineConfig } from 'vitest/config';

// Unit tests: fast, table-driven, no network or external programs beyond a temp dir.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    testTimeout: 10_000,
  },
});
