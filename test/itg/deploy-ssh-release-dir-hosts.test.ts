/**
 * `ssh-runtime: release-dir` over two real hosts, rolling one at a time, no Docker involved:
 * - host1: the loopback "VPS" (test-env's sshd on 127.0.0.1:2222), pip reaching PyPI as usual;
 * - host2: test-env's `host2` (own network namespace at 10.213.0.2, own /root, /tmp, /run;
 *   Debian's /usr/bin/python3), which has no route out: like a private VPS it installs from a
 *   package mirror of its own, a wheel directory the runner filled with `pip download` and a
 *   pip.conf in host2's own ~/.config/pip (no-index, find-links).
 * The database both hosts share is the machine's PostgreSQL, reached by both at the address
 * this machine has on the link to host2 (10.213.0.1; a socat bridge to PostgreSQL's loopback
 * port stands for a database server on the private network), so `migrate` runs once, on the
 * first host, and the second host's release serves from the same schema.
 * wrk runs against BOTH hosts' HAProxy frontends during every deploy that has something
 * serving (host2's from inside its namespace) and must see zero failed requests. A release
 * that needs a package host2's mirror does not carry fails on host2 only: host1, already
 * switched, goes back to its previous release, and nothing of the failed one is left.
 * Own app name, remote dir and ports (195xx).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureServices } from '../harness/services';
import { Job, REPO_ROOT, type StepResult } from '../harness/job';
import { ArgvSampler } from '../security/argv-sampler';
import { processAlive, releaseGunicorns, sshInputs, startLoad, type LoadResult } from './deploy-support';

const APP = 'shoprdh';
const APP_PORT = 19500;
const PROXY_PORT = 19580;
const DB_PORT = 19532;
const DB_NAME = 'slipway_rd_hosts';
const FRONT = `http://127.0.0.1:${PROXY_PORT}/healthz?load`;
/**
 * wrk's 8 connections each wait this long between requests (a few hundred requests a second per
 * frontend): unpaced, two wrk and two gunicorns take both cores and a venv build takes 4x longer.
 */
const PACE_MS = 20;
const SECRET = 'rd-hosts-secret-Kp4-never-on-argv-0123456789abcdef';
/** host2's package mirror: /var/cache is the same directory on both hosts (host2 has its own /tmp). */
const WHEELS = '/var/cache/slipway-test/rd-hosts-wheels';

let env: Record<string, string>;
let ssh: { key: string; knownHosts: string; port: string };
let host1: string;
let host2: string;
/** This machine's address on the link to host2: where host2 (and host1) reach the database. */
let linkAddr: string;
let bridge: ChildProcess | undefined;
/** The same path on both hosts: host2's /tmp is its own. */
let remoteDir: string;
let workspace: string;
let pipConf: string;
let pipConfBefore: string | undefined;
const sampler = new ArgvSampler();
const loads: { what: string; load: LoadResult }[] = [];

const onHost2 = (p: string): string => path.join(env.SLIPWAY_TEST_HOST2_ROOT!, p);
const appDir = (h: 1 | 2): string => (h === 1 ? path.join(remoteDir, APP) : onHost2(path.join(remoteDir, APP)));
const serving = (h: 1 | 2): { releaseId: string; slot: string } =>
  JSON.parse(fs.readFileSync(path.join(appDir(h), 'current.json'), 'utf8')) as { releaseId: string; slot: string };
const link = (h: 1 | 2): string => fs.readlinkSync(path.join(appDir(h), 'current'));
const releases = (h: 1 | 2): string[] => fs.readdirSync(path.join(appDir(h), 'releases')).sort();
const envFiles = (h: 1 | 2): string[] => fs.readdirSync(path.join(appDir(h), 'env')).sort();
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function git(args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', ...args], { cwd: workspace })
    .toString()
    .trim();
}

function commit(message: string, file = 'example/shop/release_note.py', text = `NOTE = ${JSON.stringify(message)}\n`): void {
  fs.writeFileSync(path.join(workspace, file), text);
  git(['add', '-A']);
  git(['commit', '-q', '-m', message]);
}

function inputs(over: Record<string, string> = {}): Record<string, string> {
  return {
    provider: 'ssh',
    'ssh-runtime': 'release-dir',
    'working-directory': 'example',
    // host2 has Debian's python3 (with venv and ensurepip), not the runner's pyenv.
    'remote-python': '/usr/bin/python3',
    environment: 'rdhosts',
    hosts: `${host1}\n${host2}`,
    'ssh-private-key': ssh.key,
    'ssh-known-hosts': `${ssh.knownHosts.trim()}\n${fs.readFileSync(env.SLIPWAY_TEST_HOST2_KNOWN_HOSTS!, 'utf8').trim()}\n`,
    'app-name': APP,
    'app-port': String(APP_PORT),
    'proxy-port': String(PROXY_PORT),
    'proxy-address': '127.0.0.1',
    'remote-dir': remoteDir,
    env: [
      `DJANGO_SECRET_KEY=${SECRET}`,
      'DJANGO_SECURE_SSL_REDIRECT=false',
      'DJANGO_LOG_LEVEL=WARNING',
      `DATABASE_URL=postgres://postgres@${linkAddr}:${DB_PORT}/${DB_NAME}`,
    ].join('\n'),
    'health-timeout': '30s',
    // wrk's keep-alive connections keep sessions on the old slot: a drain under load runs to its end.
    'drain-timeout': '2s',
    'release-store': 'releases',
    'github-token': '',
    ...over,
  };
}

function expectNoFailures(load: LoadResult, what: string): void {
  loads.push({ what, load });
  console.info(
    `${what} proxy under load: ${load.requests} requests in ${load.durationSec.toFixed(1)} s, ${load.non2xx} non-2xx, ${load.socketErrors} socket errors`,
  );
  expect(load.requests, `${what}\n${load.raw}`).toBeGreaterThan(100);
  expect({ what, non2xx: load.non2xx, socketErrors: load.socketErrors }, load.raw).toEqual({ what, non2xx: 0, socketErrors: 0 });
}

async function deployUnderLoad(over: Record<string, string> = {}): Promise<StepResult> {
  const load1 = startLoad(FRONT, 120, undefined, PACE_MS);
  const load2 = startLoad(FRONT, 120, env.SLIPWAY_TEST_HOST2_NETNS, PACE_MS);
  let result: StepResult;
  try {
    result = await new Job({ workspace }).run('deploy', inputs(over));
  } finally {
    expectNoFailures(await load1.stop(), 'host1');
    expectNoFailures(await load2.stop(), 'host2');
  }
  return result;
}

/** The frontend's status for /healthz on a host (host2's from inside its namespace). */
function front(h: 1 | 2): string {
  const curl = ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', `http://127.0.0.1:${PROXY_PORT}/healthz`];
  const argv = h === 1 ? curl : ['ip', 'netns', 'exec', env.SLIPWAY_TEST_HOST2_NETNS!, ...curl];
  try {
    return execFileSync(argv[0]!, argv.slice(1)).toString();
  } catch (e) {
    return String((e as { stdout?: Buffer }).stdout ?? 'error');
  }
}

const alive = processAlive;
function pidOf(h: 1 | 2, slot: string): number | undefined {
  const f = path.join(appDir(h), `${slot}.pid`);
  return fs.existsSync(f) ? Number(fs.readFileSync(f, 'utf8').trim()) : undefined;
}

/** gunicorn processes running from a release dir of this app, on either host (one pid namespace). */
const gunicorns = (): { pid: number; cmdline: string }[] => (remoteDir ? releaseGunicorns(`${remoteDir}/${APP}`) : []);

/** No deploy holds the host's lock: no lock directory, and the flock is free. */
function expectUnlocked(h: 1 | 2): void {
  expect(fs.existsSync(path.join(appDir(h), 'lock')), `lock dir on host${h}`).toBe(false);
  execFileSync('flock', ['-n', path.join(appDir(h), 'deploy.flock'), 'true']);
}

function psql(sql: string, db = 'postgres'): string {
  return execFileSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', db, '-tAq', '-v', 'ON_ERROR_STOP=1', '-c', sql])
    .toString()
    .trim();
}

function order(log: string, lines: string[]): boolean {
  const at = lines.map((s) => log.indexOf(s));
  return at.every((i) => i >= 0) && at.every((i, k) => k === 0 || i > at[k - 1]!);
}

function cleanup(): void {
  for (const g of gunicorns()) {
    try {
      process.kill(g.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  for (const h of [1, 2] as const) {
    const pidFile = path.join(appDir(h), 'haproxy.pid');
    if (!fs.existsSync(pidFile)) continue;
    for (const pid of fs.readFileSync(pidFile, 'utf8').split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGTERM');
      } catch {
        // gone
      }
    }
  }
  fs.rmSync(remoteDir, { recursive: true, force: true });
  fs.rmSync(onHost2(remoteDir), { recursive: true, force: true });
}

beforeAll(async () => {
  // tools: Debian's python3 with venv and ensurepip (what host2 builds its venvs with).
  env = ensureServices(['sshd', 'haproxy', 'load', 'tools', 'host2']);
  ssh = sshInputs(env);
  host1 = `root@127.0.0.1:${ssh.port}`;
  host2 = `root@${env.SLIPWAY_TEST_HOST2}`;
  const route = JSON.parse(execFileSync('ip', ['-j', 'route', 'get', env.SLIPWAY_TEST_HOST2!]).toString()) as { prefsrc: string }[];
  linkAddr = route[0]!.prefsrc;
  expect(linkAddr).toMatch(/^10\.213\./);
  // host2's mirror: the example's wheels for host2's Python (3.11, manylinux), fetched here.
  fs.mkdirSync(WHEELS, { recursive: true });
  execFileSync(
    'python3',
    [
      '-m',
      'pip',
      'download',
      '--quiet',
      '--disable-pip-version-check',
      '--only-binary=:all:',
      '--python-version',
      '3.11',
      '--implementation',
      'cp',
      '--platform',
      'manylinux2014_x86_64',
      '--platform',
      'manylinux_2_17_x86_64',
      '--platform',
      'any',
      '-d',
      WHEELS,
      '-r',
      path.join(REPO_ROOT, 'example', 'requirements.txt'),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  pipConf = onHost2('/root/.config/pip/pip.conf');
  pipConfBefore = fs.existsSync(pipConf) ? fs.readFileSync(pipConf, 'utf8') : undefined;
  fs.mkdirSync(path.dirname(pipConf), { recursive: true });
  fs.writeFileSync(
    pipConf,
    `# slipway itg deploy-ssh-release-dir-hosts: host2's private mirror\n[global]\nno-index = true\nfind-links = ${WHEELS}\n`,
  );
  // The shared database, on the private link's address (PostgreSQL itself listens on loopback only).
  psql(`DROP DATABASE IF EXISTS ${DB_NAME}`);
  psql(`CREATE DATABASE ${DB_NAME}`);
  bridge = spawn('socat', [`TCP-LISTEN:${DB_PORT},bind=${linkAddr},reuseaddr,fork`, 'TCP:127.0.0.1:5432'], { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    try {
      execFileSync(
        'ip',
        [
          'netns',
          'exec',
          env.SLIPWAY_TEST_HOST2_NETNS!,
          'psql',
          '-h',
          linkAddr,
          '-p',
          String(DB_PORT),
          '-U',
          'postgres',
          '-d',
          DB_NAME,
          '-tAc',
          'select 1',
        ],
        { stdio: 'ignore' },
      );
      break;
    } catch {
      if (i > 50) throw new Error('the database bridge did not come up for host2');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  remoteDir = fs.mkdtempSync('/tmp/slipway-rd-hosts-');
  workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-rd-hosts-ws-'));
  fs.cpSync(path.join(REPO_ROOT, 'example'), path.join(workspace, 'example'), {
    recursive: true,
    filter: (src) => !/(__pycache__|db\.sqlite3|staticfiles|\.venv)/.test(src),
  });
  git(['init', '-q', '-b', 'main']);
  git(['add', '-A']);
  git(['commit', '-q', '-m', 'shop v1']);
  sampler.start();
}, 900_000);

afterAll(() => {
  sampler.stop();
  if (remoteDir) cleanup();
  bridge?.kill('SIGTERM');
  if (pipConf) {
    if (pipConfBefore === undefined) fs.rmSync(pipConf, { force: true });
    else fs.writeFileSync(pipConf, pipConfBefore);
  }
  if (env) {
    try {
      psql(`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`);
    } catch {
      // left for the next run's DROP
    }
  }
  if (workspace) fs.rmSync(workspace, { recursive: true, force: true });
  const total = loads.reduce((a, l) => a + l.load.requests, 0);
  const failed = loads.reduce((a, l) => a + l.load.non2xx + l.load.socketErrors, 0);
  console.log(
    `release-dir two hosts: ${failed} failed of ${total} requests over ${loads.length} loads (${loads.map((l) => `${l.what} ${l.load.requests}`).join(', ')})`,
  );
});

let first: string;
let second: string;

describe('deploy with ssh-runtime: release-dir to two hosts', () => {
  it('first deploy: host1 then host2 build the commit (host2 from its own mirror), one migration of the shared database', async () => {
    const result = await new Job({ workspace }).run('deploy', inputs({ 'setup-host': 'true', migrate: 'true' }));
    expect(result.failure, result.log).toBeUndefined();
    first = result.outputs['release-id']!;
    expect(
      order(result.log, [
        `Deploy to ${host1}`,
        `${host1}: release ${first} built`,
        `${host1}: migrations applied with release ${first}`,
        `${host1}: ${first} serves on slot blue`,
        `Deploy to ${host2}`,
        `${host2}: release ${first} built`,
        `${host2}: ${first} serves on slot blue`,
      ]),
      result.log,
    ).toBe(true);
    // Once per deploy: the second host serves from the schema the first one migrated.
    expect(result.log).not.toContain(`${host2}: migrations applied`);
    expect(Number(psql("select count(*) from django_migrations where app = 'catalog'", DB_NAME))).toBeGreaterThanOrEqual(4);
    for (const h of [1, 2] as const) {
      expect(serving(h)).toMatchObject({ releaseId: first, slot: 'blue' });
      expect(link(h)).toBe(`releases/${first}`);
      expect(alive(pidOf(h, 'blue')), `host${h} gunicorn`).toBe(true);
      expect(front(h), `host${h} frontend`).toBe('200');
      expect(fs.statSync(path.join(appDir(h), 'env', `${first}.env`)).mode & 0o777).toBe(0o600);
      expectUnlocked(h);
    }
    // host2's venv is Debian's Python, its packages the mirror's wheels (it has no route to PyPI).
    expect(fs.readFileSync(path.join(appDir(2), 'releases', first, '.venv', 'pyvenv.cfg'), 'utf8')).toMatch(/^home = \/usr\/bin$/m);
    expect(fs.existsSync(path.join(appDir(2), 'releases', first, '.venv', 'bin', 'gunicorn'))).toBe(true);
  });

  it('second deploy under load on both frontends: rolling host1 then host2, zero failed requests; keep-releases 1 prunes only once both serve', async () => {
    const oldPids = { 1: pidOf(1, 'blue'), 2: pidOf(2, 'blue') };
    commit('v2');
    const result = await deployUnderLoad({ 'keep-releases': '1' });
    expect(result.failure, result.log).toBeUndefined();
    second = result.outputs['release-id']!;
    expect(
      order(result.log, [
        `Deploy to ${host1}`,
        `${host1}: ${second} serves on slot green`,
        `Deploy to ${host2}`,
        `${host2}: ${second} serves on slot green`,
        `${host1}: pruned ${first}`,
        `${host2}: pruned ${first}`,
      ]),
      result.log,
    ).toBe(true);
    for (const h of [1, 2] as const) {
      expect(serving(h)).toMatchObject({ releaseId: second, slot: 'green' });
      expect(link(h)).toBe(`releases/${second}`);
      expect(alive(pidOf(h, 'green')), `host${h} new gunicorn`).toBe(true);
      expect(alive(oldPids[h]), `host${h} old gunicorn stopped`).toBe(false);
      expect(releases(h), `host${h}`).toEqual([second]);
      expect(envFiles(h), `host${h}`).toEqual([`${second}.env`]);
      expectUnlocked(h);
    }
  });

  it("a release host2's mirror cannot install: host2 fails before its switch, host1 goes back to its previous release, both serve it under load", async () => {
    const before = { 1: serving(1), 2: serving(2) };
    // A new dependency, on PyPI (host1 gets it) but not in host2's mirror.
    commit(
      'v3 new dependency',
      'example/requirements.txt',
      `${fs.readFileSync(path.join(REPO_ROOT, 'example', 'requirements.txt'), 'utf8')}six==1.17.0\n`,
    );
    const result = await deployUnderLoad({ 'keep-releases': '1' });
    expect(result.exitCode).not.toBe(0);
    const id = result.outputs['release-id']!;
    expect(result.failure).toMatch(
      new RegExp(
        `^deploy failed: Installing dependencies on ${escape(host2)} failed \\(exit code 1: .*six.*\\)\\. The previous release keeps serving\\.$`,
      ),
    );
    // host1 had switched to the release; it was moved back, then nothing was pruned.
    expect(
      order(result.log, [`${host1}: ${id} serves on slot blue`, `Deploy to ${host2}`, `Roll back ${host1}`, `${host1}: back on ${second}`]),
      result.log,
    ).toBe(true);
    expect(result.log).not.toMatch(/pruned/);
    for (const h of [1, 2] as const) {
      expect(serving(h), `host${h}`).toEqual(before[h]);
      expect(link(h), `host${h}`).toBe(`releases/${second}`);
      expect(alive(pidOf(h, 'green')), `host${h} serving gunicorn`).toBe(true);
      expect(fs.existsSync(path.join(appDir(h), 'blue.pid')), `host${h}: the failed release's gunicorn stopped`).toBe(false);
      expect(front(h), `host${h} frontend`).toBe('200');
      // Nothing of the failed release is kept: its files and its env file (secrets) are gone.
      expect(releases(h), `host${h}`).toEqual([second]);
      expect(envFiles(h), `host${h}`).toEqual([`${second}.env`]);
      expectUnlocked(h);
    }
    expect(gunicorns().filter((g) => g.cmdline.includes(id))).toEqual([]);
    const rec = JSON.parse(fs.readFileSync(path.join(workspace, 'releases', 'rdhosts', `${id}.json`), 'utf8')) as Record<string, unknown>;
    expect(rec).toMatchObject({ outcome: 'rolled-back' });
  });

  it('the secret was never on any command line on this machine (host2 included: one pid namespace)', () => {
    sampler.sample();
    expect(sampler.samples).toBeGreaterThan(100);
    expect([...sampler.seen].filter((l) => l.includes(SECRET) || l.includes(SECRET.slice(0, 20)))).toEqual([]);
    expect([...sampler.seen].some((l) => l.includes('gunicorn') && l.includes(`${remoteDir}/${APP}`))).toBe(true);
  });
});
