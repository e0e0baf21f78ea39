/**
 * The ssh provider's per-host deploy lock against the real OpenSSH server on 127.0.0.1:2222:
 * the SSH connection of a deploy cut mid-deploy (only that connection's sshd processes killed,
 * the shared server keeps running), the holder process killed with it, and two deploys at once.
 * The old release keeps serving through each fault (wrk: no failed request), and the next
 * deploy needs no hand on the host. And the SSH client itself: a command whose connection is cut
 * under it is reported as the connection lost, not as the command's failure.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshClient, SshConnectionError } from '@slipway/toolkit/ssh';
import { emptyWorkspace, Job } from '../harness/job';
import { buildDeployImage, cleanupHost, deployServices, sshInputs, startLoad, type LoadResult } from './deploy-support';

const APP = 'shoplock';
const APP_PORT = 18900;
const PROXY_PORT = 18980;
const FRONT = `http://127.0.0.1:${PROXY_PORT}/healthz`;
const SECRET = 'lock-secret-key-0123456789abcdef0123456789abcdef';

let env: Record<string, string>;
let image: { ref: string };
let ssh: { key: string; knownHosts: string; port: string };
let remoteDir: string;
let workspace: string;

function inputs(over: Record<string, string> = {}): Record<string, string> {
  return {
    provider: 'ssh',
    environment: 'locktest',
    image: image.ref,
    hosts: `root@127.0.0.1:${ssh.port}`,
    'ssh-private-key': ssh.key,
    'ssh-known-hosts': ssh.knownHosts,
    'app-name': APP,
    'app-port': String(APP_PORT),
    'proxy-port': String(PROXY_PORT),
    'proxy-address': '127.0.0.1',
    'remote-dir': remoteDir,
    env: `DJANGO_SECRET_KEY=${SECRET}\nDJANGO_SECURE_SSL_REDIRECT=false\nDJANGO_LOG_LEVEL=WARNING`,
    'health-timeout': '30s',
    'release-store': 'releases',
    'github-token': '',
    ...over,
  };
}

const appDir = (): string => path.join(remoteDir, APP);
const current = (): { releaseId: string } => JSON.parse(fs.readFileSync(path.join(appDir(), 'current'), 'utf8')) as { releaseId: string };
const lockDir = (): string => path.join(appDir(), 'lock');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function expectNoFailures(load: LoadResult): void {
  expect(load.requests, load.raw).toBeGreaterThan(100);
  expect({ non2xx: load.non2xx, socketErrors: load.socketErrors }, load.raw).toEqual({ non2xx: 0, socketErrors: 0 });
}

function procStat(pid: number): { ppid: number; args: string } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    return { ppid, args };
  } catch {
    return undefined;
  }
}

/** Whether a process is running: false once it has exited, even before it is reaped (state Z). */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * The host-side processes of one SSH connection, found from the lock holder it runs: the holder's
 * ancestors up to (not including) the shared sshd listener, which other tests use too.
 */
function connectionOf(holder: number): number[] {
  const chain: number[] = [];
  for (let pid = procStat(holder)?.ppid; pid && pid > 1; pid = procStat(pid)?.ppid) {
    const p = procStat(pid);
    if (!p || p.args.includes('[listener]')) return chain;
    chain.push(pid);
  }
  throw new Error(`no sshd listener above pid ${holder}`);
}

/** Starts a deploy and waits until it is mid-way: lock held, the new env file on the host. */
async function midDeploy(job: Job): Promise<{ step: ReturnType<Job['run']>; holder: number }> {
  const envDir = path.join(appDir(), 'env');
  const seen = new Set(fs.readdirSync(envDir));
  const step = job.run('deploy', inputs());
  for (let i = 0; i < 1500 && !fs.readdirSync(envDir).some((f) => !seen.has(f)); i++) await sleep(20);
  const owner = fs.readFileSync(path.join(lockDir(), 'owner'), 'utf8');
  const holder = Number(/^holder pid (\d+)$/m.exec(owner)?.[1]);
  expect(holder, owner).toBeGreaterThan(1);
  return { step, holder };
}

beforeAll(async () => {
  env = deployServices();
  process.env.DOCKER_HOST = env.DOCKER_HOST ?? process.env.DOCKER_HOST;
  image = buildDeployImage(env);
  ssh = sshInputs(env);
  remoteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-lock-host-'));
  workspace = emptyWorkspace();
  cleanupHost(APP, path.join(os.tmpdir(), 'none'), env);
  const first = await new Job({ workspace }).run('deploy', inputs({ 'setup-host': 'true' }));
  expect(first.failure, first.log).toBeUndefined();
});

afterAll(() => {
  if (env && remoteDir) cleanupHost(APP, remoteDir, env);
});

describe('the deploy lock on an ssh host', () => {
  it('a remote command whose connection is cut under it: "the SSH connection was lost", even where a failure is allowed', async () => {
    const target = { user: 'root', host: '127.0.0.1', port: Number(ssh.port) };
    const client = new SshClient({ privateKey: ssh.key, knownHosts: ssh.knownHosts });
    // The command walks up to the sshd process serving its connection and kills it: the
    // connection (master and session) goes while the command is still running.
    const cutOwn = [
      'sh',
      '-c',
      'p=$$; while [ "$(cat /proc/$p/comm)" != sshd ]; do p=$(cut -d" " -f4 /proc/$p/stat); done; kill -9 $p; sleep 10',
    ];
    try {
      await client.connect(target);
      const err: unknown = await client.run(target, cutOwn, { allowFailure: true }).then(
        (r) => r,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SshConnectionError);
      expect((err as Error).message).toMatch(
        /^SSH connection to root@127\.0\.0\.1:\d+ failed during `sh -c .*`: the SSH connection was lost/,
      );
    } finally {
      await client.close();
    }
    // A remote command that itself exits 255 and says why is the command's failure, not a cut.
    const other = new SshClient({ privateKey: ssh.key, knownHosts: ssh.knownHosts });
    try {
      await other.connect(target);
      const r = await other.run(target, ['sh', '-c', 'echo own-reason >&2; exit 255'], { allowFailure: true });
      expect({ code: r.exitCode, stderr: r.stderr.trim() }).toEqual({ code: 255, stderr: 'own-reason' });
    } finally {
      await other.close();
    }
  });

  it("a deploy's SSH connection cut mid-deploy: it fails, the old release serves, the lock goes with the connection", async () => {
    const before = current();
    const load = startLoad(FRONT, 120);
    const { step, holder } = await midDeploy(new Job({ workspace }));
    const connection = connectionOf(holder);
    expect(connection.length).toBeGreaterThan(0);
    for (const pid of connection) process.kill(pid, 'SIGKILL');
    const r = await step;
    expectNoFailures(await load.stop());
    expect(r.exitCode).not.toBe(0);
    expect(r.failure).toMatch(/SSH connection to root@127\.0\.0\.1:\d+ failed|Lost the deploy lock on root@127\.0\.0\.1:\d+/);
    expect(current()).toEqual(before);
    // The holder saw its stdin close when the connection died and removed the lock. It does so on
    // its own after the connection is gone, so give it a moment; a zombie (exited, not yet reaped
    // by the host's init) counts as gone.
    for (let i = 0; i < 250 && (alive(holder) || fs.existsSync(lockDir())); i++) await sleep(20);
    expect(alive(holder), `holder pid ${holder} still running`).toBe(false);
    expect(fs.existsSync(lockDir())).toBe(false);

    const next = await new Job({ workspace }).run('deploy', inputs());
    expect(next.failure, next.log).toBeUndefined();
    expect(next.log).not.toContain('taking over the deploy lock');
    expect(current().releaseId).toBe(next.outputs['release-id']);
    expect(fs.existsSync(lockDir())).toBe(false);
  });

  it('the holder killed with the connection (lock left behind): the next deploy sees it is gone and takes over', async () => {
    const before = current();
    const load = startLoad(FRONT, 120);
    const { step, holder } = await midDeploy(new Job({ workspace }));
    const owner = fs.readFileSync(path.join(lockDir(), 'owner'), 'utf8');
    for (const pid of [holder, ...connectionOf(holder)]) process.kill(pid, 'SIGKILL');
    const r = await step;
    expectNoFailures(await load.stop());
    expect(r.exitCode).not.toBe(0);
    expect(current()).toEqual(before);
    // Nothing on the host could clean up: the record of a dead holder stays.
    expect(fs.readFileSync(path.join(lockDir(), 'owner'), 'utf8')).toBe(owner);

    const next = await new Job({ workspace }).run('deploy', inputs());
    expect(next.failure, next.log).toBeUndefined();
    expect(next.log).toContain(
      `root@127.0.0.1:${ssh.port}: taking over the deploy lock left by ${owner.split('\n')[0]} (its holder, pid ${holder}, is gone`,
    );
    expect(current().releaseId).toBe(next.outputs['release-id']);
    expect(fs.existsSync(lockDir())).toBe(false);
  });

  it('two deploys at once: the live holder keeps the second out, which changes nothing', async () => {
    const before = current();
    const load = startLoad(FRONT, 120);
    const [a, b] = await Promise.all([new Job({ workspace }).run('deploy', inputs()), new Job({ workspace }).run('deploy', inputs())]);
    expectNoFailures(await load.stop());
    const [won, lost] = [a, b].sort((x, y) => Number(x.exitCode !== 0) - Number(y.exitCode !== 0));
    expect(won!.failure, won!.log).toBeUndefined();
    expect(lost!.failure).toMatch(
      /Another deploy holds the lock on root@127\.0\.0\.1:\d+ \(.*\); nothing was changed\. It is still running; this deploy can run when it ends\./,
    );
    expect(lost!.log).not.toContain('taking over');
    expect(current().releaseId).toBe(won!.outputs['release-id']);
    expect(current()).not.toEqual(before);
    expect(fs.existsSync(lockDir())).toBe(false);
    // The refused deploy left no container or env file of its own behind.
    const names = execFileSync('docker', ['ps', '-a', '--filter', `label=slipway.app=${APP}`, '--format', '{{.Names}}']).toString();
    expect(names).not.toContain(lost!.outputs['release-id']);
    expect(fs.existsSync(path.join(appDir(), 'env', `${lost!.outputs['release-id']}.env`))).toBe(false);
  });
});
