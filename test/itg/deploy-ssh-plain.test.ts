/**
 * `ssh-runtime: release-dir` end to end: the deploy bundle, run as the runner runs it, against a
 * private sshd "VPS" on loopback (test/security/vps.ts: its own port, host key and authorized
 * key) that has no Docker in the picture: the checked-out commit of a git workspace holding the
 * example shop app is streamed over SSH, unpacked into releases/<id>, gets a venv with its
 * requirements (pip), collectstatic and migrations (a SQLite database shared by releases),
 * and is served by gunicorn behind the real HAProxy the action sets up. wrk runs against the
 * HAProxy frontend during every deploy that has something serving and must see zero failed
 * requests; every command line on the machine is sampled and must never hold the secret.
 * Own app name, remote dir, proxy and slot ports: nothing is shared with the other deploy tests.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureServices } from '../harness/services';
import { Job, REPO_ROOT, type StepResult } from '../harness/job';
import { ArgvSampler } from '../security/argv-sampler';
import { canaryKeyPair } from '../security/canary';
import { startVps, type Vps } from '../security/vps';
import { processAlive, releaseGunicorns, startLoad, type LoadResult } from './deploy-support';

const APP = 'shopplain';
const APP_PORT = 18900;
const PROXY_PORT = 18980;
const FRONT = `http://127.0.0.1:${PROXY_PORT}/healthz`;
const SECRET = 'plain-secret-Vq7-never-on-argv-0123456789abcdef';

let vps: Vps;
let key: ReturnType<typeof canaryKeyPair>;
let remoteDir: string;
let appDir: string;
let workspace: string;
let database: string;
const sampler = new ArgvSampler();

function git(args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', ...args], { cwd: workspace })
    .toString()
    .trim();
}

/** A new commit in the workspace (the deploy ships the checked-out commit only). */
function commit(message: string, file = 'example/shop/release_note.py', text = `NOTE = ${JSON.stringify(message)}\n`): string {
  fs.writeFileSync(path.join(workspace, file), text);
  git(['add', '-A']);
  git(['commit', '-q', '-m', message]);
  return git(['rev-parse', 'HEAD']);
}

function inputs(over: Record<string, string> = {}): Record<string, string> {
  return {
    provider: 'ssh',
    'ssh-runtime': 'release-dir',
    'working-directory': 'example',
    'shared-dirs': 'media',
    environment: 'plain',
    hosts: `root@127.0.0.1:${vps.port}`,
    'ssh-private-key': key.value,
    'ssh-known-hosts': vps.knownHosts,
    'app-name': APP,
    'app-port': String(APP_PORT),
    'proxy-port': String(PROXY_PORT),
    'proxy-address': '127.0.0.1',
    'remote-dir': remoteDir,
    env: `DJANGO_SECRET_KEY=${SECRET}\nDJANGO_SECURE_SSL_REDIRECT=false\nDJANGO_LOG_LEVEL=WARNING\nDATABASE_URL=sqlite:///${database}`,
    'health-timeout': '30s',
    // wrk's keep-alive connections keep sessions on the old slot: a drain under load runs to its end.
    'drain-timeout': '3s',
    'keep-releases': '2',
    'release-store': 'releases',
    'github-token': '',
    ...over,
  };
}

async function deploy(over: Record<string, string> = {}, load = true): Promise<{ result: StepResult; load?: LoadResult }> {
  const wrk = load ? startLoad(FRONT, 120) : undefined;
  const job = new Job({ workspace, env: { GITHUB_SHA: git(['rev-parse', 'HEAD']) } });
  try {
    return { result: await job.run('deploy', inputs(over)) };
  } finally {
    if (wrk) {
      const l = await wrk.stop();
      loads.push(l);
      expectNoFailures(l);
    }
  }
}

const loads: LoadResult[] = [];

function expectNoFailures(load: LoadResult): void {
  expect(load.requests, load.raw).toBeGreaterThan(100);
  expect({ non2xx: load.non2xx, socketErrors: load.socketErrors }, load.raw).toEqual({ non2xx: 0, socketErrors: 0 });
}

const link = (): string => fs.readlinkSync(path.join(appDir, 'current'));
const serving = (): { releaseId: string; slot: string } =>
  JSON.parse(fs.readFileSync(path.join(appDir, 'current.json'), 'utf8')) as { releaseId: string; slot: string };
const releases = (): string[] => fs.readdirSync(path.join(appDir, 'releases')).sort();
const lockHeld = (): boolean => fs.existsSync(path.join(appDir, 'lock'));

function pidOf(slot: string): number | undefined {
  const f = path.join(appDir, `${slot}.pid`);
  return fs.existsSync(f) ? Number(fs.readFileSync(f, 'utf8').trim()) : undefined;
}

const alive = processAlive;
/** gunicorn processes (master and workers) running from a release dir of this app. */
const gunicorns = (): { pid: number; cmdline: string }[] => releaseGunicorns(appDir);

async function front(pathname = '/healthz'): Promise<number> {
  return fetch(`http://127.0.0.1:${PROXY_PORT}${pathname}`).then(
    (r) => r.status,
    () => 0,
  );
}

let first: string;
let second: string;

beforeAll(async () => {
  const needed = fs.existsSync('/usr/sbin/sshd') ? [] : (['sshd'] as const);
  ensureServices(['haproxy', 'load', ...needed]);
  key = canaryKeyPair('plain key');
  vps = await startVps([key.publicKey]);
  remoteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-plain-host-'));
  appDir = path.join(remoteDir, APP);
  database = path.join(remoteDir, 'shop.sqlite3');
  workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-plain-ws-'));
  fs.cpSync(path.join(REPO_ROOT, 'example'), path.join(workspace, 'example'), {
    recursive: true,
    filter: (src) => !/(__pycache__|db\.sqlite3|staticfiles|\.venv)/.test(src),
  });
  fs.writeFileSync(path.join(workspace, '.gitignore'), '.env\n');
  // Untracked and ignored: a deploy of the commit must never carry it to the host.
  fs.writeFileSync(path.join(workspace, 'example', '.env'), 'LOCAL_ONLY=1\n');
  git(['init', '-q', '-b', 'main']);
  git(['add', '-A']);
  git(['commit', '-q', '-m', 'shop v1']);
  sampler.start();
}, 300_000);

afterAll(() => {
  sampler.stop();
  for (const g of appDir ? gunicorns() : []) {
    try {
      process.kill(g.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  const pidFile = appDir && path.join(appDir, 'haproxy.pid');
  if (pidFile && fs.existsSync(pidFile)) {
    for (const pid of fs.readFileSync(pidFile, 'utf8').split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGTERM');
      } catch {
        // gone
      }
    }
  }
  vps?.stop();
  if (key) fs.rmSync(key.dir, { recursive: true, force: true });
  if (remoteDir) fs.rmSync(remoteDir, { recursive: true, force: true });
  if (workspace) fs.rmSync(workspace, { recursive: true, force: true });
  const total = loads.reduce((a, l) => a + l.requests, 0);
  const failed = loads.reduce((a, l) => a + l.non2xx + l.socketErrors, 0);
  console.log(`release-dir load: ${failed} failed of ${total} requests over ${loads.length} deploys under load`);
});

describe('deploy with ssh-runtime: release-dir (private sshd, HAProxy, gunicorn, wrk)', () => {
  it('first deploy: the commit in releases/<id> with its venv, statics and migrations, served through HAProxy', async () => {
    const { result } = await deploy({ 'setup-host': 'true', migrate: 'true' }, false);
    expect(result.failure, result.log).toBeUndefined();
    first = result.outputs['release-id']!;
    expect(first).toMatch(/^\d{8}-\d{6}-/);
    expect(await front()).toBe(200);
    expect(link()).toBe(`releases/${first}`);
    expect(serving()).toMatchObject({ releaseId: first, slot: 'blue' });
    const rel = path.join(appDir, 'releases', first);
    expect(fs.existsSync(path.join(rel, 'example', 'manage.py'))).toBe(true);
    expect(fs.existsSync(path.join(rel, '.venv', 'bin', 'gunicorn'))).toBe(true);
    // collectstatic ran (STATIC_ROOT is set): the manifest WhiteNoise serves from.
    expect(fs.existsSync(path.join(rel, 'example', 'staticfiles', 'staticfiles.json'))).toBe(true);
    expect(await front('/static/catalog/site.css')).toBe(200);
    // migrate ran with the release's venv and env, before the switch.
    const tables = execFileSync('python3', [
      '-c',
      'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from django_migrations where app=\'catalog\'").fetchone()[0])',
      database,
    ]);
    expect(Number(tables.toString())).toBeGreaterThanOrEqual(4);
    expect(result.log).toMatch(/migrations applied with release/);
    // The env file: 0600, linked into the project folder; the ignored local .env never shipped.
    const envFile = path.join(appDir, 'env', `${first}.env`);
    expect(fs.statSync(envFile).mode & 0o777).toBe(0o600);
    expect(fs.readlinkSync(path.join(rel, 'example', '.env'))).toBe(envFile);
    expect(fs.readFileSync(envFile, 'utf8')).not.toMatch(/LOCAL_ONLY/);
    expect(fs.readlinkSync(path.join(rel, 'example', 'media'))).toBe(path.join(appDir, 'shared', 'media'));
    expect(alive(pidOf('blue'))).toBe(true);
    expect(lockHeld()).toBe(false);
    const rec = JSON.parse(fs.readFileSync(path.join(workspace, 'releases', 'plain', `${first}.json`), 'utf8')) as Record<string, unknown>;
    expect(rec).toMatchObject({ outcome: 'success', providerReleaseId: first, image: `git:${git(['rev-parse', 'HEAD'])}` });
  });

  it('second deploy under load: zero failed requests, `current` moves to the new release, the old gunicorn stops', async () => {
    const oldPid = pidOf('blue');
    commit('v2');
    const { result } = await deploy();
    expect(result.failure, result.log).toBeUndefined();
    second = result.outputs['release-id']!;
    expect(link()).toBe(`releases/${second}`);
    expect(serving()).toMatchObject({ releaseId: second, slot: 'green' });
    expect(fs.existsSync(path.join(appDir, 'releases', second, 'example', 'shop', 'release_note.py'))).toBe(true);
    expect(alive(pidOf('green'))).toBe(true);
    expect(alive(oldPid), 'the old gunicorn master stopped').toBe(false);
    expect(fs.existsSync(path.join(appDir, 'blue.pid'))).toBe(false);
    expect(result.log).toMatch(/gunicorn of \S+ stopped \(slot blue\)/);
    expect(releases()).toEqual([first, second].sort());
    expect(lockHeld()).toBe(false);
  });

  it('a release whose health check fails: the old one keeps serving (zero failed requests), one-line failure, nothing left', async () => {
    commit('v3 broken database');
    const before = { link: link(), serving: serving(), pid: pidOf('green') };
    const { result } = await deploy({
      env: `DJANGO_SECRET_KEY=${SECRET}\nDJANGO_SECURE_SSL_REDIRECT=false\nDATABASE_URL=postgres://nobody@127.0.0.1:1/none`,
      'health-timeout': '5s',
    });
    expect(result.exitCode).not.toBe(0);
    expect(result.failure).toMatch(
      /^deploy failed: Health check of release \S+ on root@127\.0\.0\.1:\d+ failed after .*The previous release keeps serving\.$/,
    );
    expect(result.failure).not.toContain('\n');
    const failed = result.outputs['release-id']!;
    expect(link()).toBe(before.link);
    expect(serving()).toEqual(before.serving);
    expect(pidOf('green')).toBe(before.pid);
    expect(alive(before.pid)).toBe(true);
    expect(fs.existsSync(path.join(appDir, 'blue.pid')), 'the new gunicorn stopped').toBe(false);
    expect(gunicorns().filter((g) => g.cmdline.includes(failed))).toEqual([]);
    expect(releases(), 'the failed release dir removed').toEqual([first, second].sort());
    expect(lockHeld()).toBe(false);
    expect(await front()).toBe(200);
  });

  it('a build that fails (a requirement that does not exist): one line naming the step, the old release serves', async () => {
    commit(
      'v4 bad requirement',
      'example/requirements.txt',
      `${fs.readFileSync(path.join(REPO_ROOT, 'example', 'requirements.txt'), 'utf8')}slipway-no-such-package==0.0.1\n`,
    );
    const before = { link: link(), serving: serving() };
    const { result } = await deploy();
    expect(result.failure).toMatch(
      /^deploy failed: Installing dependencies on root@127\.0\.0\.1:\d+ failed \(exit code 1: .*\)\. The previous release keeps serving\.$/,
    );
    expect(link()).toBe(before.link);
    expect(serving()).toEqual(before.serving);
    expect(releases()).toEqual([first, second].sort());
    expect(lockHeld()).toBe(false);
    // Put the requirements back for the next deploy.
    commit('v5', 'example/requirements.txt', fs.readFileSync(path.join(REPO_ROOT, 'example', 'requirements.txt'), 'utf8'));
  });

  it('a third good release under load: keep-releases 2 prunes the oldest release dir and its env file; restart-commands run', async () => {
    // Argv lines, no shell: `;` and `$(…)` are characters of the file name; a failing line is a warning.
    const { result } = await deploy({ 'restart-commands': `touch ${remoteDir}/hook-ran\nfalse\ntouch '${remoteDir}/a;b$(id)'` });
    expect(result.failure, result.log).toBeUndefined();
    const third = result.outputs['release-id']!;
    expect(link()).toBe(`releases/${third}`);
    expect(serving()).toMatchObject({ releaseId: third, slot: 'blue' });
    expect(releases()).toEqual([second, third].sort());
    expect(fs.existsSync(path.join(appDir, 'env', `${first}.env`))).toBe(false);
    expect(result.log).toMatch(new RegExp(`pruned ${first}`));
    expect(fs.existsSync(path.join(remoteDir, 'hook-ran'))).toBe(true);
    expect(fs.existsSync(path.join(remoteDir, 'a;b$(id)'))).toBe(true);
    expect(result.log).toMatch(/::warning::.*`restart-commands` line 2 \(false\) failed \(exit code 1\); \S+ serves\./);
  });

  it('rollback serves the kept previous release dir again, under load, without a checkout', async () => {
    const load = startLoad(FRONT, 120);
    const job = new Job({ workspace: fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-plain-rb-')) });
    fs.cpSync(path.join(workspace, 'releases'), path.join(job.workspace, 'releases'), { recursive: true });
    let r: StepResult;
    try {
      const i = inputs();
      r = await job.run('rollback', {
        provider: 'ssh',
        'ssh-runtime': 'release-dir',
        environment: 'plain',
        hosts: i.hosts!,
        'ssh-private-key': i['ssh-private-key']!,
        'ssh-known-hosts': i['ssh-known-hosts']!,
        'app-name': APP,
        'app-port': String(APP_PORT),
        'proxy-port': String(PROXY_PORT),
        'proxy-address': '127.0.0.1',
        'remote-dir': remoteDir,
        'drain-timeout': '3s',
        'health-timeout': '30s',
        'release-store': 'releases',
        'github-token': '',
      });
    } finally {
      fs.rmSync(job.workspace, { recursive: true, force: true });
      const l = await load.stop();
      loads.push(l);
      expectNoFailures(l);
    }
    expect(r.failure, r.log).toBeUndefined();
    expect(link()).toBe(`releases/${second}`);
    expect(serving()).toMatchObject({ releaseId: second, slot: 'green' });
    expect(alive(pidOf('green'))).toBe(true);
    expect(fs.existsSync(path.join(appDir, 'blue.pid'))).toBe(false);
    expect(await front()).toBe(200);
  });

  it('the secret was never on any command line on this machine', () => {
    sampler.sample();
    expect(sampler.samples).toBeGreaterThan(100);
    const leaks = [...sampler.seen].filter((l) => l.includes(SECRET) || l.includes(SECRET.slice(0, 20)));
    expect(leaks).toEqual([]);
    // ... while the deploys did run their remote steps through the sampled sshd.
    expect([...sampler.seen].some((l) => l.includes('gunicorn') && l.includes(appDir))).toBe(true);
  });
});
