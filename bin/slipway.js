#!/usr/bin/env node
// `npx slipway`: the command line (packages/cli), bundled by scripts/build-cli.mjs into dist/cli/.
import { main } from '../dist/cli/index.js';

const code = await main(process.argv.slice(2), {
  cwd: process.cwd(),
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
});
process.exitCode = code;
