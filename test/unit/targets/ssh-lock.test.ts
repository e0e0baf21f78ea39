import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execTool } from '@slipway/toolkit/exec';
import { HostLock, type LockHost } from '@slipway/targets/ssh/lock';

/**
 * The deploy lock's host side (the holder script, flock, the owner record) run for real with
 * local processes instead of an SSH session: the host's commands go to sh here, the holder's
 * stdin is a pipe from this process, exactly as it is from ssh.
 */
let dir: string;

function localHost(): LockHost {
  return {
    name: 'root@test-host',
    dir,
    run: (argv, opts) =>
      execTool(argv[0]!, argv.slice(1), { input: opts?.input, allowFailure: opts?.allowFailure, silent: true, quiet: true }),
    holderCommand: (argv) => [argv[0]!, argv.slice(1)],
  };
}

const owner = (): string => fs.readFileSync(path.join(dir, 'lock', 'owner'), 'utf8');
const holderPid = (): number => Number(/^holder pid (\d+)$/m.exec(owner())![1]);
/** Whether another process could take the flock now (flock -n exits 1 when it is held). */
const flockFree = (): boolean => {
  try {
    execFileSync('flock', ['-n', path.join(dir, 'deploy.flock'), 'true']);
    return true;
  } catch {
    return false;
  }
};
const waitFor = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
};

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-lock-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('HostLock (flock holder + owner record)', () => {
  it('takes the lock with a checkable holder, keeps a second deploy out, releases cleanly', async () => {
    const a = new HostLock(localHost());
    await a.acquire('alice run 1', () => undefined);
    expect(owner()).toMatch(/^alice run 1\nholder pid \d+\n$/);
    expect(() => process.kill(holderPid(), 0)).not.toThrow();
    expect(flockFree()).toBe(false);

    const b = new HostLock(localHost());
    await expect(b.acquire('bob run 2', () => undefined)).rejects.toThrow(
      /^Another deploy holds the lock on root@test-host \(alice run 1\); nothing was changed\. It is still running/,
    );
    expect(owner()).toMatch(/^alice run 1\n/);

    await a.release();
    expect(fs.existsSync(path.join(dir, 'lock'))).toBe(false);
    expect(flockFree()).toBe(true);
    await b.acquire('bob run 2', () => undefined);
    expect(owner()).toMatch(/^bob run 2\n/);
    await b.release();
  });

  it('the session dies (holder stdin closed): the holder removes the lock and the deploy stops changing the host', async () => {
    const a = new HostLock(localHost());
    await a.acquire('alice run 1', () => undefined);
    const pid = holderPid();
    // What a cut SSH session does to the remote command: its stdin ends. The local side does not know yet.
    (a as unknown as { holder: { stdin: NodeJS.WritableStream } }).holder.stdin.end();
    await waitFor(() => a.lost);
    expect(a.lost).toBe(true);
    expect(fs.existsSync(path.join(dir, 'lock'))).toBe(false);
    expect(() => process.kill(pid, 0)).toThrow();
    expect(() => a.assertHeld('`docker run`')).toThrow(/Lost the deploy lock on root@test-host .* before `docker run`/);
    const b = new HostLock(localHost());
    const log: string[] = [];
    await b.acquire('bob run 2', (l) => log.push(l));
    expect(log).toEqual([]);
    await b.release();
  });

  it('a holder killed outright leaves the directory; the next deploy checks the holder is gone and takes over', async () => {
    const a = new HostLock(localHost());
    await a.acquire('alice run 1', () => undefined);
    const pid = holderPid();
    process.kill(pid, 'SIGKILL');
    await waitFor(flockFree);
    expect(fs.existsSync(path.join(dir, 'lock', 'owner'))).toBe(true);

    const b = new HostLock(localHost());
    const log: string[] = [];
    await b.acquire('bob run 2', (l) => log.push(l));
    expect(log).toEqual([
      `root@test-host: taking over the deploy lock left by alice run 1 (its holder, pid ${pid}, is gone: that deploy ended without releasing it)`,
    ]);
    expect(owner()).toMatch(/^bob run 2\nholder pid \d+\n$/);
    expect(holderPid()).not.toBe(pid);
    await b.release();
    expect(fs.existsSync(path.join(dir, 'lock'))).toBe(false);
  });

  it("the holder killed just before the deploy lets go (its exit not seen yet): the dead holder's record stays for the next deploy", async () => {
    const a = new HostLock(localHost());
    await a.acquire('alice run 1', () => undefined);
    const pid = holderPid();
    // As when a cut command's error reaches the deploy before the holder's own ssh has ended:
    // the deploy lets go at once, not knowing its holder is gone (and another deploy may own the lock).
    process.kill(pid, 'SIGKILL');
    await a.release();
    expect(owner()).toBe(`alice run 1\nholder pid ${pid}\n`);

    const b = new HostLock(localHost());
    const log: string[] = [];
    await b.acquire('bob run 2', (l) => log.push(l));
    expect(log[0]).toMatch(/^root@test-host: taking over the deploy lock left by alice run 1 \(its holder, pid \d+, is gone/);
    await b.release();
    expect(fs.existsSync(path.join(dir, 'lock'))).toBe(false);
  });

  it('settle: after a connection error, waits for the holder to show it went with the connection', async () => {
    const a = new HostLock(localHost());
    await a.acquire('alice run 1', () => undefined);
    const started = Date.now();
    await a.settle(300);
    expect(a.lost).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    process.kill(holderPid(), 'SIGKILL');
    expect(a.lost).toBe(false);
    await a.settle(5_000);
    expect(a.lost).toBe(true);
    expect(() => a.assertHeld('`rm`')).toThrow(/Lost the deploy lock on root@test-host/);
  });

  it('a lock without a holder record (by hand, older release) still refuses and is left as it is', async () => {
    fs.mkdirSync(path.join(dir, 'lock'));
    fs.writeFileSync(path.join(dir, 'lock', 'owner'), 'someone run 42\n');
    const b = new HostLock(localHost());
    await expect(b.acquire('bob run 2', () => undefined)).rejects.toThrow(
      `Another deploy holds the lock on root@test-host (someone run 42); nothing was changed. If no deploy is running, remove ${dir}/lock on the host.`,
    );
    await waitFor(flockFree);
    expect(flockFree()).toBe(true);
    expect(owner()).toBe('someone run 42\n');
  });

  it('failing to record the owner (disk full) gives the lock back', async () => {
    const host = localHost();
    const failing: LockHost = {
      ...host,
      run: (argv, opts) => (argv[0] === 'dd' ? execTool('false', [], { silent: true, quiet: true }) : host.run(argv, opts)),
    };
    await expect(new HostLock(failing).acquire('alice run 1', () => undefined)).rejects.toThrow(/false/);
    await waitFor(flockFree);
    expect(fs.existsSync(path.join(dir, 'lock'))).toBe(false);
    expect(flockFree()).toBe(true);
  });

  it('a host without flock is one clear line', async () => {
    const host = localHost();
    const noFlock: LockHost = {
      ...host,
      holderCommand: (argv) => ['env', ['PATH=/nonexistent', '/bin/sh', ...argv.slice(1)]],
    };
    await expect(new HostLock(noFlock).acquire('alice', () => undefined)).rejects.toThrow(
      'Cannot take the deploy lock on root@test-host: the host has no flock (install util-linux).',
    );
  });
});
