#!/usr/bin/env bash
# The README's test command (after `npm ci`): unit tests, then integration tests that run the
# committed bundles against real programs. The integration tests install and start what they
# need (scripts/test-env/up.sh). Prints one closing line: "tests: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export UV_PYTHON_DOWNLOADS=never

status=0
npx vitest run --config vitest.config.ts --reporter=default --reporter=json --outputFile.json="$out/unit.json" "$@" || status=1
npx vitest run --config vitest.config.itg.ts --reporter=default --reporter=json --outputFile.json="$out/itg.json" "$@" || status=1

node -e '
  const fs = require("fs");
  let passed = 0, failed = 0, skipped = 0;
  for (const f of process.argv.slice(1)) {
    if (!fs.existsSync(f)) { failed++; continue; }
    const r = JSON.parse(fs.readFileSync(f, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0);
    skipped += r.numPendingTests + r.numTodoTests;
  }
  console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
  if (passed === 0) process.exit(1);
' "$out/unit.json" "$out/itg.json" || status=1
exit $status
