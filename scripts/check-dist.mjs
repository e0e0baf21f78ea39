#!/usr/bin/env node
// Fails when the committed dist/ differs from a fresh build of the source.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const scratch = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-check-dist-')), 'dist');
execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs'), scratch], { stdio: 'inherit' });

const list = (dir) =>
  fs.existsSync(dir)
    ? fs
        .readdirSync(dir, { recursive: true })
        .filter((f) => fs.statSync(path.join(dir, f)).isFile())
        .sort()
    : [];
const committed = list(path.join(root, 'dist'));
const fresh = list(scratch);
const differ = [...new Set([...committed, ...fresh])].filter((f) => {
  const a = path.join(root, 'dist', f);
  const b = path.join(scratch, f);
  return !fs.existsSync(a) || !fs.existsSync(b) || !fs.readFileSync(a).equals(fs.readFileSync(b));
});
fs.rmSync(path.dirname(scratch), { recursive: true, force: true });
if (differ.length) {
  console.error(`dist/ does not match the source: ${differ.join(', ')}. Run \`npm run build\` and commit dist/.`);
  process.exit(1);
}
console.log('dist/ matches the source.');
