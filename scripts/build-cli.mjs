#!/usr/bin/env node
// Bundles the command line (packages/cli/src/index.ts) with ncc into dist/cli/index.js, run by
// bin/slipway.js (`npx slipway init`). `node scripts/build-cli.mjs [outDir]` (default dist/cli).
// Separate from scripts/build.mjs so the CLI's bundle never weighs on the actions' one; it
// builds into a scratch folder and swaps it in, so a reader never sees half a bundle.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.resolve(process.argv[2] ?? path.join(root, 'dist', 'cli'));
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-cli-build-'));
try {
  execFileSync(
    process.execPath,
    [
      path.join(root, 'node_modules', '@vercel', 'ncc', 'dist', 'ncc', 'cli.js'),
      'build',
      path.join(root, 'packages', 'cli', 'src', 'index.ts'),
      '--out',
      scratch,
      '--minify',
      '--target',
      'es2023',
      '--license',
      'licenses.txt',
      '--quiet',
      // ncc's persistent cache (~/.cache/ncc) keeps module ids from earlier builds of other
      // checkouts, so the bundle would depend on what was built before: always build fresh.
      '--no-cache',
      // Types are checked by `npm run typecheck`; ncc's own check would fail on any file of the project.
      '--transpile-only',
    ],
    { cwd: root, stdio: 'inherit' },
  );
  fs.writeFileSync(path.join(scratch, 'package.json'), '{\n  "type": "module"\n}\n');
  fs.chmodSync(scratch, 0o755);
  fs.mkdirSync(path.dirname(outDir), { recursive: true });
  const old = `${outDir}.old-${process.pid}`;
  if (fs.existsSync(outDir)) fs.renameSync(outDir, old);
  fs.renameSync(scratch, outDir);
  fs.rmSync(old, { recursive: true, force: true });
} catch (error) {
  fs.rmSync(scratch, { recursive: true, force: true });
  throw error;
}
const size = fs.statSync(path.join(outDir, 'index.js')).size;
console.log(`built the CLI into ${path.relative(root, outDir) || outDir}: ${(size / 1024).toFixed(0)} KiB`);
