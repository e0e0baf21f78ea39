// The Slipway demo (`npm run demo`, via scripts/demo.sh): the whole chain on the example app, on
// this machine, with the embedded defaults. SQLite; the deploy target is this machine over SSH
// (the ssh provider against the local sshd on 127.0.0.1, driving the local Docker engine and an
// HAProxy it sets up). Stages that cannot run here are skipped with the reason and the fix.
// Idempotent: it removes what an earlier run left, and cleans up after itself.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Job } from './runner.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const node = process.execPath;
const APP = 'slipway-demo';
const STATE = path.join(os.tmpdir(), 'slipway-demo');
const LOCK = path.join(os.tmpdir(), 'slipway-demo.pid');
const WORKSPACE = path.join(STATE, 'shop');
const HOST_DIR = path.join(STATE, 'host');
const RELEASES = path.join(STATE, 'releases');
// Ports of the demo's own: outside every test's (deploy, rollback, faults and the security suites
// use 18400-18880, build-image 18000-19999 at random, act-cd 17400-17480). app: blue and green
// slots; proxy: HAProxy's frontend.
const APP_PORT = '17600';
const PROXY_PORT = '17680';
const DEMO_PORTS = [APP_PORT, String(Number(APP_PORT) + 1), PROXY_PORT];
const SECRET = `demo-${Math.random().toString(36).slice(2)}-not-a-real-secret`;
const keep = process.env.SLIPWAY_DEMO_KEEP === '1';

const services = serviceEnv();
const results = [];

const say = (text = '') => process.stdout.write(`${text}\n`);
const rule = (title) => say(`\n=== ${title} ${'='.repeat(Math.max(3, 72 - title.length))}`);

function serviceEnv() {
  const r = spawnSync('bash', [path.join(root, 'scripts', 'test-env', 'env.sh')], { encoding: 'utf8' });
  const env = {};
  for (const line of (r.stdout ?? '').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

function run(cmd, args, env = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } });
}

function portOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: Number(port) });
    s.setTimeout(2000);
    s.on('connect', () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
    s.on('timeout', () => (s.destroy(), resolve(false)));
  });
}

/** What the Docker-based stages need, each with the fix when missing. */
async function probe() {
  const denv = { DOCKER_HOST: services.DOCKER_HOST ?? '' };
  const missing = [];
  const docker = run('docker', ['info', '--format', '{{.ServerVersion}}'], denv);
  if (docker.status !== 0) missing.push('a Docker engine');
  else if (run('docker', ['image', 'inspect', services.SLIPWAY_TEST_BASE_IMAGE ?? 'python:3.11-slim'], denv).status !== 0) {
    missing.push(`the base image ${services.SLIPWAY_TEST_BASE_IMAGE ?? 'python:3.11-slim'}`);
  }
  const registry = (services.SLIPWAY_TEST_REGISTRY ?? '127.0.0.1:5000').split(':')[1];
  if (!(await portOpen(registry))) missing.push(`a registry on 127.0.0.1:${registry}`);
  if (!(await portOpen(services.SLIPWAY_TEST_SSH_PORT ?? '2222'))) missing.push('the local sshd');
  if (run('haproxy', ['-v']).status !== 0) missing.push('haproxy');
  return missing;
}

/** The pid of a demo still running, from its lock file (outside STATE: cleanup removes STATE). */
function otherDemo() {
  let pid;
  try {
    pid = Number(fs.readFileSync(LOCK, 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined; // the lock of a demo that ended without removing it
  }
}

/** The demo's ports something else listens on (a proxy just stopped by cleanup gets 3 s to go). */
async function takenPorts() {
  let taken = [];
  for (let i = 0; i < 12; i++) {
    taken = [];
    for (const port of DEMO_PORTS) if (await portOpen(port)) taken.push(port);
    if (!taken.length) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return taken;
}

function cleanup() {
  const denv = { DOCKER_HOST: services.DOCKER_HOST ?? '' };
  const ids = run('docker', ['ps', '-aq', '--filter', `label=slipway.app=${APP}`], denv);
  const list = (ids.stdout ?? '').split('\n').filter(Boolean);
  if (ids.status === 0 && list.length) run('docker', ['rm', '-f', ...list], denv);
  const pidFile = path.join(HOST_DIR, APP, 'haproxy.pid');
  if (fs.existsSync(pidFile)) {
    for (const pid of fs.readFileSync(pidFile, 'utf8').split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGTERM');
      } catch {
        // already gone
      }
    }
  }
  // The demo's images stay: they are the build cache that makes the next run fast.
  fs.rmSync(STATE, { recursive: true, force: true });
}

function record(stage, status, detail) {
  results.push({ stage, status, detail });
}

async function step(job, stage, action, inputs, { expectMissing } = {}) {
  rule(stage);
  const r = await job.run(action, inputs);
  if (r.code === 0) {
    say(r.summary || '(no summary)');
    say(`--> ${stage}: ok (${r.seconds.toFixed(1)} s)`);
    record(stage, 'ok', `${r.seconds.toFixed(1)} s`);
    return r;
  }
  if (expectMissing && expectMissing.test(r.failure ?? '')) {
    say(`--> ${stage}: skipped: ${r.failure}`);
    record(stage, 'skipped', r.failure);
    job.failed = false; // an action not there yet is not a failed chain
    return undefined;
  }
  say(r.log.split('\n').slice(-25).join('\n'));
  say(`--> ${stage}: FAILED: ${r.failure ?? `exit ${r.code}`}`);
  record(stage, 'failed', r.failure ?? `exit ${r.code}`);
  return undefined;
}

function skip(stage, why) {
  rule(stage);
  say(`--> ${stage}: skipped: ${why}`);
  record(stage, 'skipped', why);
}

async function main() {
  if (!fs.existsSync(path.join(root, 'dist', 'slipway', 'index.js'))) {
    say('dist/ is missing: run `npm run build` first.');
    return 2;
  }
  const other = otherDemo();
  if (other) {
    process.stderr.write(`demo: another demo runs (pid ${other}); wait for it to finish, or end it, and run this again.\n`);
    return 2;
  }
  fs.writeFileSync(LOCK, `${process.pid}\n`);
  cleanup();
  const taken = await takenPorts();
  if (taken.length) {
    process.stderr.write(
      `demo: port${taken.length > 1 ? 's' : ''} ${taken.join(', ')} on 127.0.0.1 ${taken.length > 1 ? 'are' : 'is'} taken; the demo needs ${DEMO_PORTS.join(', ')} ` +
        '(app slots and proxy): stop what listens there (`ss -ltnp`) and run it again.\n',
    );
    return 2;
  }
  fs.mkdirSync(HOST_DIR, { recursive: true });
  fs.cpSync(path.join(root, 'example'), WORKSPACE, { recursive: true });
  const missing = await probe();
  const job = new Job({
    root,
    node,
    workspace: WORKSPACE,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME ?? os.homedir(),
      LANG: 'C.UTF-8',
      GITHUB_REPOSITORY: 'slipway-dev/shop',
      GITHUB_REPOSITORY_OWNER: 'slipway-dev',
      GITHUB_SHA: '0123456789abcdef0123456789abcdef01234567',
      GITHUB_REF: 'refs/heads/main',
      GITHUB_REF_NAME: 'main',
      GITHUB_REF_TYPE: 'branch',
      GITHUB_EVENT_NAME: 'push',
      GITHUB_ACTOR: 'demo',
      GITHUB_RUN_ID: '1',
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_JOB: 'demo',
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_API_URL: 'https://api.github.com',
      RUNNER_OS: 'Linux',
      RUNNER_ARCH: 'X64',
      UV_PYTHON_DOWNLOADS: 'never',
      DOCKER_BUILDKIT: '0',
      ...(services.DOCKER_HOST ? { DOCKER_HOST: services.DOCKER_HOST } : {}),
      ...Object.fromEntries(
        ['PYENV_ROOT', 'PIP_INDEX_URL', 'UV_INDEX_URL', 'PIP_CONFIG_FILE'].filter((k) => process.env[k]).map((k) => [k, process.env[k]]),
      ),
      // The embedded defaults: SQLite next to manage.py, a throwaway key.
      DJANGO_SECRET_KEY: SECRET,
    },
  });
  job.masks.add(SECRET);
  say(`Slipway demo: the example shop in ${WORKSPACE}`);
  say(
    missing.length
      ? `Docker stages: skipped (missing ${missing.join(', ')})`
      : 'Docker stages: on (engine, base image, registry, sshd, haproxy found)',
  );
  try {
    const setup = await step(job, 'setup-django', 'setup-django', {});
    if (!setup) return finish();
    await step(job, 'run-tests', 'run-tests', {});
    let image;
    const fix =
      'start them with `bash scripts/test-env/up.sh docker base-image registry sshd haproxy` (root; installs Debian packages), or run `npm run demo -- --with-services`.';
    if (missing.length) {
      skip('build-image', `missing ${missing.join(', ')}: ${fix}`);
    } else {
      const built = await step(job, 'build-image', 'build-image', {
        image: `${services.SLIPWAY_TEST_REGISTRY ?? '127.0.0.1:5000'}/slipway-demo/shop`,
        push: 'true',
        // The only base image on this machine is python:3.11-slim (nothing can be pulled).
        'python-version': '3.11',
        'smoke-test-env': 'DJANGO_SECURE_SSL_REDIRECT=false\nDATABASE_URL=sqlite:////tmp/smoke.sqlite3',
      });
      image = built?.outputs.image;
    }
    await step(job, 'migrate', 'migrate', {});
    const ssh = {
      hosts: `root@127.0.0.1:${services.SLIPWAY_TEST_SSH_PORT ?? '2222'}`,
      'ssh-private-key': readIf(services.SLIPWAY_TEST_SSH_KEY),
      'ssh-known-hosts': readIf(services.SLIPWAY_TEST_SSH_KNOWN_HOSTS),
      'release-store': RELEASES,
      'github-token': '',
    };
    const deployInputs = (release) => ({
      provider: 'ssh',
      environment: 'demo',
      image,
      ...ssh,
      'app-name': APP,
      'app-port': APP_PORT,
      'proxy-port': PROXY_PORT,
      'proxy-address': '127.0.0.1',
      'remote-dir': HOST_DIR,
      'setup-host': 'true',
      // The container's own SQLite file, where the app may write (not the image's /app).
      env: `DJANGO_SECRET_KEY=${SECRET}\nDATABASE_URL=sqlite:////tmp/demo.sqlite3\nDJANGO_SECURE_SSL_REDIRECT=false\nDJANGO_ALLOWED_HOSTS=127.0.0.1,localhost\nDEMO_RELEASE=${release}`,
      'health-timeout': '60s',
    });
    if (!image) {
      const why = missing.length ? 'no image (build-image was skipped)' : 'no image (build-image failed)';
      for (const s of ['deploy', 'deploy again', 'rollback']) skip(s, why);
      return finish();
    }
    const first = await step(job, 'deploy', 'deploy', deployInputs(1));
    const second = first && (await step(job, 'deploy again', 'deploy', deployInputs(2)));
    if (!second) skip('rollback', 'needs two releases (a deploy failed)');
    else {
      await step(
        job,
        'rollback',
        'rollback',
        {
          provider: 'ssh',
          environment: 'demo',
          ...ssh,
          'app-name': APP,
          'app-port': APP_PORT,
          'proxy-port': PROXY_PORT,
          'proxy-address': '127.0.0.1',
          'remote-dir': HOST_DIR,
          'health-timeout': '60s',
          // Both demo releases run one image on one schema (they differ in config): roll back
          // image and config. migrate-back and restore-backup are shown by rollback's own tests.
          database: 'none',
          env: `DJANGO_SECRET_KEY=${SECRET}\nDATABASE_URL=sqlite:///${path.join(WORKSPACE, 'db.sqlite3')}`,
        },
        { expectMissing: /not implemented/ },
      );
      const url = `http://127.0.0.1:${PROXY_PORT}/healthz`;
      const res = await fetch(url).then(
        (r) => `${r.status}`,
        (e) => `${e.message}`,
      );
      say(`\nGET ${url} -> ${res}`);
    }
    return finish();
  } finally {
    await job.post();
    job.cleanup();
    if (!keep) cleanup();
    else say(`\nKept (SLIPWAY_DEMO_KEEP=1): ${STATE}; containers labelled slipway.app=${APP}`);
  }
}

function readIf(file) {
  try {
    return file ? fs.readFileSync(file, 'utf8') : '';
  } catch {
    return '';
  }
}

function finish() {
  rule('summary');
  for (const r of results) say(`${r.status.padEnd(8)} ${r.stage.padEnd(14)} ${r.detail ?? ''}`);
  const failed = results.filter((r) => r.status === 'failed').length;
  const ok = results.filter((r) => r.status === 'ok').length;
  say(`demo: ${ok} ok, ${failed} failed, ${results.length - ok - failed} skipped`);
  return failed ? 1 : 0;
}

try {
  process.exitCode = await main();
} finally {
  // Only our own lock: a refused second demo leaves the running one's alone.
  if (fs.existsSync(LOCK) && fs.readFileSync(LOCK, 'utf8').trim() === String(process.pid)) fs.rmSync(LOCK, { force: true });
}
