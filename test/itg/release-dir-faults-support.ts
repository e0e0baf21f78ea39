/**
 * The host the release-dir fault tests share (faults-release-dir*.test.ts): a private sshd "VPS"
 * (test/security/vps.ts: its own port and key, PATH shims that fail a remote call on demand, its
 * session processes ours to kill) serving one app with `ssh-runtime: release-dir` (gunicorn, the
 * real HAProxy, a SQLite database on the host), deployed once in beforeAll; what the tests check
 * after a fault (what the host records is what serves) and the deploy that must succeed next.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureServices } from '../harness/services';
import { Job, REPO_ROOT, type StepResult } from '../harness/job';
import { ArgvSampler } from '../security/argv-sampler';
import { canaryKeyPair } from '../security/canary';
import { startVps, type Vps } from '../security/vps';
import { processAlive, releaseGunicorns, startLoad, type LoadResult } from './deploy-support';

export const TAKEOVER = /took over the deploy lock|taking over the deploy lock|stale deploy lock/i;

export interface FaultHostOptions {
  app: string;
  appPort: number;
  proxyPort: number;
  environment: string;
  secret: string;
}

/** Registers the file's beforeAll (host, first deploy) and afterAll (clean-up, load totals). */
export function releaseDirFaultHost(o: FaultHostOptions) {
  const { app: APP, appPort: APP_PORT, proxyPort: PROXY_PORT, environment, secret: SECRET } = o;
  const FRONT = `http://127.0.0.1:${PROXY_PORT}/healthz`;
  /** Paced load (see deploy-ssh-release-dir-hosts): the builds run on this machine's two cores too. */
  const PACE_MS = 20;

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
      environment,
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
  const alive = processAlive;
  /** gunicorn processes (masters and workers) running from a release dir of this app. */
  const gunicorns = (): { pid: number; cmdline: string }[] => releaseGunicorns(appDir);

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
    key = canaryKeyPair(`${APP} key`);
    vps = await startVps([key.publicKey]);
    remoteDir = fs.mkdtempSync(path.join(os.tmpdir(), `slipway-${APP}-host-`));
    appDir = path.join(remoteDir, APP);
    workspace = fs.mkdtempSync(path.join(os.tmpdir(), `slipway-${APP}-ws-`));
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
    console.log(
      `release-dir faults (${APP}) passed: ${passed.join('; ')}; load: ${failed} failed of ${total} requests over ${loads.length} deploys`,
    );
  });

  return {
    get vps(): Vps {
      return vps;
    },
    get appDir(): string {
      return appDir;
    },
    get workspace(): string {
      return workspace;
    },
    environment,
    passed,
    sampler,
    inputs,
    commit,
    serving,
    releases,
    envFiles,
    lockHeld,
    gunicorns,
    expectConsistent,
    underLoad,
    nextDeploy,
  };
}

export type FaultHost = ReturnType<typeof releaseDirFaultHost>;

/**
 * A failure between the HAProxy switch and `current` recording it (switchBackRelease): `rule` (a
 * VPS shim prefix, {dir} the app dir) fails `times` times (undefined: every time). The previous
 * release serves again, the host records it, nothing of the failed release stays, the outcome is
 * rolled-back, the lock is free, and the next deploy succeeds under load.
 */
export function switchNotRecordedCase(h: FaultHost, c: { name: string; rule: string; times?: number; says: RegExp }): void {
  const { name, rule, times, says } = c;
  it(`${name}: traffic goes back, what the host records is what serves`, async () => {
    const before = h.serving();
    h.commit(name);
    h.vps.failOn(rule.replaceAll('{dir}', h.appDir), times);
    let r: StepResult;
    try {
      r = await h.underLoad(() => new Job({ workspace: h.workspace }).run('deploy', h.inputs()));
      if (times) expect(h.vps.injected(), 'the injected failure was hit').toHaveLength(times);
      else expect(h.vps.injected().length, 'the injected failure was hit').toBeGreaterThan(0);
    } finally {
      h.vps.failOn(undefined);
    }
    expect(r.exitCode).not.toBe(0);
    const id = r.outputs['release-id']!;
    expect(r.failure, r.log).toMatch(says);
    expect(r.log).toContain(`the switch to ${id} could not be recorded; ${before.releaseId} serves again`);
    expect(r.log).not.toMatch(/Could not move traffic back/);
    expect(h.serving()).toEqual(before);
    h.expectConsistent(`${name}: after the failed deploy`);
    expect(h.lockHeld(), 'lock released').toBe(false);
    // The release that served for a moment is gone: its gunicorn, its dir and its env file.
    expect(h.gunicorns().filter((g) => g.cmdline.includes(id))).toEqual([]);
    expect(h.releases()).not.toContain(id);
    expect(h.envFiles()).not.toContain(`${id}.env`);
    const rec = JSON.parse(fs.readFileSync(path.join(h.workspace, 'releases', h.environment, `${id}.json`), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(rec).toMatchObject({ outcome: 'rolled-back' });
    await h.nextDeploy(name, before.releaseId);
    h.passed.push(name);
  });
}

/** The deploys' secret was on no command line of this machine (every process sampled throughout). */
export function secretNeverOnArgv(h: FaultHost, secret: string): void {
  it('the secret was never on any command line on this machine', () => {
    h.sampler.sample();
    expect(h.sampler.samples).toBeGreaterThan(100);
    expect([...h.sampler.seen].filter((l) => l.includes(secret) || l.includes(secret.slice(0, 20)))).toEqual([]);
    expect([...h.sampler.seen].some((l) => l.includes('gunicorn') && l.includes(h.appDir))).toBe(true);
  });
}
