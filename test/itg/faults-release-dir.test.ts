/**
 * Faults of `ssh-runtime: release-dir` on one host, with real components: a private sshd "VPS"
 * (test/security/vps.ts: its own port and key, PATH shims that fail a remote call on demand,
 * its session processes ours to kill), gunicorn, the real HAProxy, a SQLite database per host.
 * - the SSH connection cut mid-deploy, while the new release builds (faults-deploy.test.ts's
 *   mechanism: the sshd session processes killed for 3 s);
 * - a failure after the traffic switch but before it is recorded (the rename of the `current`
 *   link fails once: `current.json` already names the new release), which switchBackRelease undoes.
 * In each case the previous release keeps serving (wrk: zero failed requests), what the host
 * records is what it serves, the lock is released (or taken over by the next deploy, saying so),
 * nothing of the failed release is kept, and the next deploy succeeds under load.
 * Own app name, remote dir and ports (195xx).
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
import { startLoad, type LoadResult } from './deploy-support';

const APP = 'shoprdf';
const APP_PORT = 19520;
const PROXY_PORT = 19590;
const FRONT = `http://127.0.0.1:${PROXY_PORT}/healthz`;
const SECRET = 'rd-faults-secret-Zt8-never-on-argv-0123456789abcdef';
/** Paced load (see deploy-ssh-release-dir-hosts): the builds run on this machine's two cores too. */
const PACE_MS = 20;
const TAKEOVER = /took over the deploy lock|taking over the deploy lock|stale deploy lock/i;

let vps: Vps;
let key: ReturnType<typeof canaryKeyPair>;
let remoteDir: string;
let appDir: string;
let workspace: string;
const sampler = new ArgvSampler();
const loads: LoadResult[] = [];
const passed: string[] = [];

function git(args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', ...args], { cwd: workspace })
    .toString()
    .trim();
}

function commit(message: string): void {
  fs.writeFileSync(path.join(workspace, 'example', 'shop', 'release_note.py'), `NOTE = ${JSON.stringify(message)}\n`);
  git(['add', '-A']);
  git(['commit', '-q', '-m', message]);
}

function inputs(over: Record<string, string> = {}): Record<string, string> {
  return {
    provider: 'ssh',
    'ssh-runtime': 'release-dir',
    'working-directory': 'example',
    environment: 'rdfaults',
    hosts: `root@127.0.0.1:${vps.port}`,
    'ssh-private-key': key.value,
    'ssh-known-hosts': vps.knownHosts,
    'app-name': APP,
    'app-port': String(APP_PORT),
    'proxy-port': String(PROXY_PORT),
    'proxy-address': '127.0.0.1',
    'remote-dir': remoteDir,
    env: `DJANGO_SECRET_KEY=${SECRET}\nDJANGO_SECURE_SSL_REDIRECT=false\nDJANGO_LOG_LEVEL=WARNING\nDATABASE_URL=sqlite:///${remoteDir}/shop.sqlite3`,
    'health-timeout': '30s',
    'drain-timeout': '2s',
    'keep-releases': '2',
    'release-store': 'releases',
    'github-token': '',
    ...over,
  };
}

function expectNoFailures(load: LoadResult): void {
  loads.push(load);
  expect(load.requests, load.raw).toBeGreaterThan(100);
  expect({ non2xx: load.non2xx, socketErrors: load.socketErrors }, load.raw).toEqual({ non2xx: 0, socketErrors: 0 });
}

interface Serving {
  releaseId: string;
  slot: string;
}
const serving = (): Serving => JSON.parse(fs.readFileSync(path.join(appDir, 'current.json'), 'utf8')) as Serving;
const link = (): string => fs.readlinkSync(path.join(appDir, 'current'));
const releases = (): string[] => fs.readdirSync(path.join(appDir, 'releases')).sort();
const envFiles = (): string[] => fs.readdirSync(path.join(appDir, 'env')).sort();
const lockHeld = (): boolean => fs.existsSync(path.join(appDir, 'lock'));

function pidOf(slot: string): number | undefined {
  const f = path.join(appDir, `${slot}.pid`);
  return fs.existsSync(f) ? Number(fs.readFileSync(f, 'utf8').trim()) : undefined;
}
function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    return !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** gunicorn processes (masters and workers) running from a release dir of this app. */
function gunicorns(): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmdline = fs.readFileSync(`/proc/${p}/cmdline`, 'latin1').split('\0').join(' ');
      if (appDir && cmdline.includes(`${appDir}/releases/`) && cmdline.includes('gunicorn')) out.push({ pid: Number(p), cmdline });
    } catch {
      // gone
    }
  }
  return out;
}

/** HAProxy's servers of our backend as the admin socket reports them. */
function proxyServers(): { slot: string; status: string }[] {
  const csv = execFileSync('socat', ['stdio', `UNIX-CONNECT:${path.join(appDir, 'haproxy.sock')}`], { input: 'show stat\n' }).toString();
  const [head = '', ...rows] = csv.split('\n').filter((l) => l.trim());
  const cols = head.replace(/^#\s*/, '').split(',');
  const [px, sv, st] = ['pxname', 'svname', 'status'].map((c) => cols.indexOf(c)) as [number, number, number];
  return rows
    .map((r) => r.split(','))
    .filter((f) => f[px] === 'app' && ['blue', 'green'].includes(f[sv]!))
    .map((f) => ({ slot: f[sv]!, status: f[st]! }));
}

/**
 * What the host records is what serves: HAProxy sends traffic to `current.json`'s slot only, the
 * `current` link names the same release, and that slot's gunicorn runs from it.
 */
function expectConsistent(when: string): void {
  const now = serving();
  const open = proxyServers()
    .filter((s) => !/MAINT|DRAIN/.test(s.status))
    .map((s) => s.slot);
  expect(open, `${when}: HAProxy serves current.json's slot`).toEqual([now.slot]);
  expect(link(), `${when}: the current link`).toBe(`releases/${now.releaseId}`);
  const pid = pidOf(now.slot);
  expect(alive(pid), `${when}: ${now.slot}'s gunicorn runs`).toBe(true);
  expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1')).toContain(`${appDir}/releases/${now.releaseId}/`);
}

async function underLoad<T>(run: () => Promise<T>): Promise<T> {
  const load = startLoad(FRONT, 120, undefined, PACE_MS);
  try {
    return await run();
  } finally {
    expectNoFailures(await load.stop());
  }
}

/** The next deploy after a fault: it succeeds under load and leaves exactly the releases it should keep. */
async function nextDeploy(name: string, keep: string): Promise<StepResult> {
  commit(`after ${name}`);
  const r = await underLoad(() => new Job({ workspace }).run('deploy', inputs()));
  expect(r.failure, `${name}: the next deploy\n${r.log}`).toBeUndefined();
  const id = r.outputs['release-id']!;
  expect(serving().releaseId).toBe(id);
  expectConsistent(`${name}: after the next deploy`);
  expect(lockHeld(), `${name}: lock released after the next deploy`).toBe(false);
  // keep-releases 2: the new release and the good one before it; nothing of the failed one.
  expect(releases(), `${name}: kept releases`).toEqual([keep, id].sort());
  expect(envFiles()).toEqual([`${keep}.env`, `${id}.env`].sort());
  expect(gunicorns().filter((g) => !g.cmdline.includes(`/releases/${id}/`))).toEqual([]);
  return r;
}

beforeAll(async () => {
  ensureServices(['haproxy', 'load', ...(fs.existsSync('/usr/sbin/sshd') ? [] : (['sshd'] as const))]);
  key = canaryKeyPair('rd faults key');
  vps = await startVps([key.publicKey]);
  remoteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-rd-faults-host-'));
  appDir = path.join(remoteDir, APP);
  workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-rd-faults-ws-'));
  fs.cpSync(path.join(REPO_ROOT, 'example'), path.join(workspace, 'example'), {
    recursive: true,
    filter: (src) => !/(__pycache__|db\.sqlite3|staticfiles|\.venv)/.test(src),
  });
  git(['init', '-q', '-b', 'main']);
  git(['add', '-A']);
  git(['commit', '-q', '-m', 'shop v1']);
  sampler.start();
  const first = await new Job({ workspace }).run('deploy', inputs({ 'setup-host': 'true', migrate: 'true' }));
  expect(first.failure, first.log).toBeUndefined();
}, 600_000);

afterAll(() => {
  sampler.stop();
  for (const g of gunicorns()) {
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
  console.log(`release-dir faults passed: ${passed.join('; ')}; load: ${failed} failed of ${total} requests over ${loads.length} deploys`);
});

describe('release-dir deploy faults (real sshd, gunicorn, HAProxy, wrk)', () => {
  it('the SSH connection cut while the release builds: the old release serves throughout, the next deploy gets past what was left', async () => {
    const name = 'ssh cut mid-build';
    const before = serving();
    commit(name);
    const envDir = path.join(appDir, 'env');
    const seen = new Set(fs.readdirSync(envDir));
    let killed = 0;
    const r = await underLoad(async () => {
      const step = new Job({ workspace }).run('deploy', inputs());
      // Mid-way: the new release's env file is written, its venv and dependencies not yet.
      for (let i = 0; i < 1500 && !fs.readdirSync(envDir).some((f) => !seen.has(f)); i++) await new Promise((res) => setTimeout(res, 20));
      const until = Date.now() + 3000;
      while (Date.now() < until) {
        // Stopped first, then killed: no session runs another instruction once one dies.
        const pids = vps.sessionPids();
        for (const signal of ['SIGSTOP', 'SIGKILL'] as const) {
          for (const pid of pids) {
            try {
              process.kill(pid, signal);
              if (signal === 'SIGKILL') killed++;
            } catch {
              // gone
            }
          }
        }
        await new Promise((res) => setTimeout(res, 20));
      }
      return step;
    });
    expect(killed).toBeGreaterThan(0);
    expect(r.exitCode).not.toBe(0);
    // Whichever call the cut hits: ssh's diagnosis, the lost lock, or a build step that names the connection.
    expect(r.failure, r.log).toMatch(
      /SSH connection to root@127\.0\.0\.1:\d+ failed|Lost the deploy lock|on root@127\.0\.0\.1:\d+ failed \(exit code 255: the SSH connection was lost\)/,
    );
    expect(r.failure).not.toContain('\n');
    expect(serving()).toEqual(before);
    expectConsistent(`${name}: after the failed deploy`);
    // The lock is not cleared by hand: the next deploy must get past whatever the cut left.
    const left = lockHeld();
    const cut = r.outputs['release-id']!;
    // Left when the clean-up could not reach the host either: marked unfinished, pruned first.
    const dirLeft = releases().includes(cut);
    if (dirLeft) expect(fs.existsSync(path.join(appDir, 'releases', cut, '.slipway-unfinished'))).toBe(true);
    const later = await nextDeploy(name, before.releaseId);
    if (left) expect(later.log, "the next deploy says it took over a dead holder's lock").toMatch(TAKEOVER);
    if (dirLeft) expect(later.log).toMatch(new RegExp(`pruned .*${cut}`));
    passed.push(
      `${name} (lock ${left ? 'left, taken over' : 'released'}; release dir ${dirLeft ? 'left, pruned' : 'cleaned up'}: ${r.failure})`,
    );
  });

  it('the switch not recorded (the `current` link rename fails once, after current.json named the new release): traffic goes back, the record is restored', async () => {
    const name = 'switch not recorded';
    const before = serving();
    commit(name);
    vps.failOn(`mv -T -f ${appDir}/current.new`, 1);
    let r: StepResult;
    try {
      r = await underLoad(() => new Job({ workspace }).run('deploy', inputs()));
      expect(vps.injected(), 'the injected failure was hit once').toHaveLength(1);
    } finally {
      vps.failOn(undefined);
    }
    expect(r.exitCode).not.toBe(0);
    const id = r.outputs['release-id']!;
    expect(r.failure, r.log).toMatch(/mv -T -f .*current\.new.*exited with code 42/);
    expect(r.log).toContain(`the switch to ${id} could not be recorded; ${before.releaseId} serves again`);
    expect(serving()).toEqual(before);
    expectConsistent(`${name}: after the failed deploy`);
    expect(lockHeld(), 'lock released').toBe(false);
    // The release that served for a moment is gone: its gunicorn, its dir and its env file.
    expect(gunicorns().filter((g) => g.cmdline.includes(id))).toEqual([]);
    expect(releases()).not.toContain(id);
    expect(envFiles()).not.toContain(`${id}.env`);
    const rec = JSON.parse(fs.readFileSync(path.join(workspace, 'releases', 'rdfaults', `${id}.json`), 'utf8')) as Record<string, unknown>;
    expect(rec).toMatchObject({ outcome: 'rolled-back' });
    await nextDeploy(name, before.releaseId);
    passed.push(name);
  });

  it('the secret was never on any command line on this machine', () => {
    sampler.sample();
    expect(sampler.samples).toBeGreaterThan(100);
    expect([...sampler.seen].filter((l) => l.includes(SECRET) || l.includes(SECRET.slice(0, 20)))).toEqual([]);
    expect([...sampler.seen].some((l) => l.includes('gunicorn') && l.includes(appDir))).toBe(true);
  });
});
