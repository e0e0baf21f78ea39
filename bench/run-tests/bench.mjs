#!/usr/bin/env node
// run-tests benchmark (on demand, not a timed test). Run with Node 24 after `npm run build`:
//   node_modules/.bin/node bench/run-tests/bench.mjs [tests=312] [repeats=3]
// Generates a realistic suite (generate.mjs), then runs the BUILT run-tests action through the
// test harness exactly as the runner would:
//  1. serial (parallel: 1, the baseline) vs parallel: auto, alternating, median of `repeats`;
//  2. 4 shards split by the timings the serial run recorded (its JUnit, via timings-path)
//     vs a naive split giving each shard an equal number of test files.
// Times are the action's `duration` output: the test run(s) with interpreter start and test
// database setup, without the checks (switched off here), which are the same in every mode.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { copyProject, Job, REPO_ROOT } from '../../test/harness/job.ts';
import { preparedVenv, seedSetupDjango } from '../../test/harness/python-env.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const tests = Number(process.argv[2] ?? 312);
const repeats = Number(process.argv[3] ?? 3);
const suite = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-bench-suite-'));
execFileSync(process.execPath, [path.join(here, 'generate.mjs'), suite, String(tests)], { stdio: 'inherit' });
const venv = preparedVenv(
  ['example/requirements.txt', 'test/fixtures/failing-pytest/requirements.txt', 'test/fixtures/run-tests-tools/requirements.txt'].map((p) =>
    path.join(REPO_ROOT, p),
  ),
);
const OFF = { 'check-migrations': 'false', 'system-check': 'false', collectstatic: 'false' };

async function run(inputs) {
  const job = new Job({ workspace: copyProject(suite) });
  seedSetupDjango(job, { venv, projectDir: job.workspace, settingsModule: 'benchsite.settings' });
  const t0 = performance.now();
  const step = await job.run('run-tests', { ...OFF, ...inputs });
  const wall = (performance.now() - t0) / 1000;
  if (step.exitCode !== 0) throw new Error(`run-tests failed: ${step.failure}\n${step.log.slice(-3000)}`);
  return { seconds: Number(step.outputs.duration), wall, step };
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

console.log(`\n${tests} tests, ${os.availableParallelism()} cores, load average before: ${load()}`);
const serial = [];
const parallel = [];
const serialWall = [];
const parallelWall = [];
let junit = '';
let total = 0;
for (let i = 0; i < repeats; i++) {
  const s = await run({ parallel: '1' });
  serial.push(s.seconds);
  serialWall.push(s.wall);
  junit = s.step.outputs['junit-path'];
  total = Number(s.step.outputs.total);
  const p = await run({ parallel: 'auto' });
  parallel.push(p.seconds);
  parallelWall.push(p.wall);
  console.log(
    `  round ${i + 1}: serial ${s.seconds}s, parallel auto ${p.seconds}s; whole step ${s.wall.toFixed(2)}s vs ${p.wall.toFixed(2)}s (load ${load()})`,
  );
}
if (total !== tests) throw new Error(`expected ${tests} tests, the run reported ${total}`);
const speedup = median(serial) / median(parallel);
console.log(
  `serial (baseline) median ${median(serial)}s; parallel auto median ${median(parallel)}s; speedup ${speedup.toFixed(2)}x (target >= 1.7x)`,
);
// The whole step as the job sees it: the same plus the action's own start (Node, detection, the
// tools check), which serial and parallel pay alike.
console.log(
  `whole step: serial median ${median(serialWall).toFixed(2)}s; parallel auto median ${median(parallelWall).toFixed(2)}s; ${(median(serialWall) / median(parallelWall)).toFixed(2)}x`,
);

// Shards by recorded timings: each shard's duration, run one after another.
const timings = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-bench-timings-'));
fs.copyFileSync(junit, path.join(timings, 'previous.xml'));
const byTimings = [];
for (let k = 1; k <= 4; k++) byTimings.push((await run({ parallel: '1', shard: `${k}/4`, 'timings-path': timings })).seconds);

// Naive split: the suite's test files in order, an equal number per shard.
const files = [];
for (const app of fs.readdirSync(suite).sort()) {
  const dir = path.join(suite, app, 'tests');
  if (!fs.existsSync(dir)) continue;
  for (const f of fs.readdirSync(dir).sort()) if (/^test_.*\.py$/.test(f)) files.push(`${app}.tests.${f.slice(0, -3)}`);
}
const per = Math.ceil(files.length / 4);
const naive = [];
for (let k = 0; k < 4; k++) naive.push((await run({ parallel: '1', args: files.slice(k * per, (k + 1) * per).join(' ') })).seconds);

const report = (name, xs) => {
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  console.log(
    `${name}: shards ${xs.map((x) => `${x}s`).join(', ')}; slowest ${Math.max(...xs)}s = ${(Math.max(...xs) / mean).toFixed(2)} x mean ${mean.toFixed(2)}s`,
  );
};
report('4 shards by recorded timings', byTimings);
report('4 shards by file count (naive baseline)', naive);
console.log(`load average after: ${load()}`);
fs.rmSync(suite, { recursive: true, force: true });
