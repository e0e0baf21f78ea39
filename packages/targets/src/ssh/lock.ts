import { spawn, type ChildProcess } from 'node:child_process';
import { UserError } from '@slipway/toolkit/errors';
import type { ExecResult } from '@slipway/toolkit/exec';

/**
 * The per-host deploy lock. Two parts:
 *
 * - a holder process on the host, started over the deploy's own SSH connection, that holds an
 *   flock(1) on `<dir>/deploy.flock` for as long as its stdin stays open. The kernel drops the
 *   flock when that process ends, however it ends (deploy finished, SSH session cut, host
 *   rebooted), so "is the holder alive?" is a question the host answers exactly: a later deploy
 *   that gets the flock knows every earlier holder is gone. A live holder keeps everyone out.
 * - the `<dir>/lock` directory with an `owner` record (who, which run, since when, holder pid),
 *   for people and for the message a refused deploy prints. The holder removes it, while it
 *   still holds the flock, when its stdin closes: at the end of the deploy, or when the SSH
 *   session dies first. If the holder itself was killed it stays behind, and the next deploy,
 *   holding the flock, takes it over with a log line saying whose it was.
 *
 * A lock directory whose owner record names no holder (taken by hand, or by a Slipway release
 * before this one) cannot be checked and still refuses, as before.
 */
export const HOLDER_SCRIPT = [
  'exec 9>>"$1/deploy.flock" || exit 70',
  // flock -n exits 1 when the lock is held; anything else (127: no flock) is another failure.
  'flock -n 9 || { rc=$?; if [ "$rc" = 1 ]; then echo busy; exit 75; fi; exit "$rc"; }',
  'echo "held $$"',
  // No terminal: a hangup or a broken pipe must not skip the clean-up below; only EOF ends it.
  "trap '' HUP INT PIPE",
  'cat >/dev/null',
  // Only a lock whose record names this holder is ours to remove (never a hand-made one).
  'if grep -qx "holder pid $$" "$1/lock/owner" 2>/dev/null; then rm -rf "$1/lock"; fi',
].join('\n');

const BUSY = 75;
const HOLDER_LINE = /^holder pid (\d+)/m;

export interface LockHost {
  readonly name: string;
  /** The app directory on the host (it exists before `acquire`). */
  readonly dir: string;
  run(argv: string[], opts?: { input?: string; allowFailure?: boolean; label?: string }): Promise<ExecResult>;
  /** The local program and arguments that run `argv` on the host, stdin and stdout attached. */
  holderCommand(argv: string[]): [string, string[]];
}

export class HostLock {
  private holder?: ChildProcess;
  private holderPid = '';
  private releasing = false;
  /** Set when the holder ended while the lock was ours: nothing more may change on the host. */
  lost = false;

  constructor(private readonly host: LockHost) {}

  get held(): boolean {
    return this.holder !== undefined && !this.lost;
  }

  /** Takes the lock or throws a UserError saying who holds it; nothing is changed then. */
  async acquire(owner: string, log: (line: string) => void): Promise<void> {
    const { name, dir } = this.host;
    await this.startHolder();
    /** The directory is ours (made or taken over) and the record does not name our holder yet. */
    let unrecorded = false;
    try {
      const made = await this.host.run(['mkdir', `${dir}/lock`], { allowFailure: true });
      if (made.exitCode !== 0) {
        const exists = await this.host.run(['test', '-d', `${dir}/lock`], { allowFailure: true });
        if (exists.exitCode !== 0) {
          throw new UserError(`Could not take the deploy lock on ${name} (mkdir ${dir}/lock: ${lastLine(made.stderr)}).`);
        }
        const previous = await this.readOwner();
        const holder = HOLDER_LINE.exec(previous);
        if (!holder) throw this.refusal(previous, false);
        // We hold the flock, so the process that held it for this record has ended.
        log(
          `${name}: taking over the deploy lock left by ${previous.split('\n')[0]} (its holder, pid ${holder[1]}, is gone: ` +
            'that deploy ended without releasing it)',
        );
      }
      unrecorded = true;
      await this.host.run(['dd', `of=${dir}/lock/owner`, 'status=none'], { input: `${owner}\nholder pid ${this.holderPid}\n` });
    } catch (error) {
      // The holder would leave a record that does not name it: remove the directory from here.
      if (unrecorded) await this.host.run(['rm', '-rf', `${dir}/lock`], { allowFailure: true }).catch(() => undefined);
      await this.release();
      throw error;
    }
  }

  /**
   * Ends the holder, which removes the lock directory (when the record names it) while it still
   * holds the flock, then drops the flock. Only the holder removes a recorded lock: this process
   * may not have seen yet that the holder died (its exit comes after a cut command's error), and
   * by then another deploy may have taken the lock over.
   */
  async release(): Promise<void> {
    const holder = this.holder;
    if (!holder || this.lost) return;
    this.releasing = true;
    holder.stdin?.end();
    const code = await waitExit(holder, 15_000);
    if (code === null) holder.kill('SIGKILL');
    this.holder = undefined;
  }

  /**
   * After a command's SSH connection failed: gives the holder up to `ms` to show whether it went
   * with it (its ssh ends when the shared connection does), so `lost` is known before anything
   * else runs on the host.
   */
  async settle(ms: number): Promise<void> {
    const holder = this.holder;
    if (!holder || this.lost || this.releasing) return;
    await waitExit(holder, ms);
  }

  /** Throws when the holder ended under us (its SSH session died): another deploy may hold the lock now. */
  assertHeld(what: string): void {
    if (this.lost) {
      throw new UserError(
        `Lost the deploy lock on ${this.host.name} (its SSH session ended) before ${what}; stopped without changing anything more there. ` +
          'Deploy again once the host is reachable.',
      );
    }
  }

  private async startHolder(): Promise<void> {
    const [tool, args] = this.host.holderCommand(['sh', '-c', HOLDER_SCRIPT, 'slipway-lock', this.host.dir]);
    const child = spawn(tool, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin.on('error', () => undefined);
    const first = await new Promise<{ line?: string; code?: number | null }>((resolve) => {
      const timer = setTimeout(() => resolve({ code: null }), 60_000);
      const onData = (): void => {
        const nl = stdout.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        child.stdout.off('data', onData);
        resolve({ line: stdout.slice(0, nl) });
      };
      child.stdout.on('data', onData);
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ line: stdout.split('\n')[0] || undefined, code });
      });
      child.once('error', (e) => {
        clearTimeout(timer);
        stderr += e.message;
        resolve({ code: -1 });
      });
    });
    const held = /^held (\d+)$/.exec(first.line ?? '');
    if (held && first.code === undefined) {
      this.holder = child;
      this.holderPid = held[1]!;
      child.once('exit', () => {
        if (!this.releasing) this.lost = true;
      });
      return;
    }
    child.kill('SIGKILL');
    if (first.line === 'busy' || first.code === BUSY) throw this.refusal(await this.readOwner(), true);
    const why = lastLine(stderr) || (first.code === null ? 'no answer in 60 s' : `exit code ${first.code}`);
    if (/flock: (command )?not found|flock: No such file/i.test(stderr)) {
      throw new UserError(`Cannot take the deploy lock on ${this.host.name}: the host has no flock (install util-linux).`);
    }
    throw new UserError(`Cannot take the deploy lock on ${this.host.name}: ${why}`);
  }

  private async readOwner(): Promise<string> {
    const r = await this.host.run(['cat', `${this.host.dir}/lock/owner`], { allowFailure: true });
    return r.exitCode === 0 ? r.stdout.trim() : '';
  }

  /** `live`: its holder holds the flock now; else a lock without a holder record. */
  private refusal(owner: string, live: boolean): UserError {
    const who = owner.split('\n')[0] || 'owner unknown';
    return new UserError(
      `Another deploy holds the lock on ${this.host.name} (${who}); nothing was changed. ` +
        (live
          ? 'It is still running; this deploy can run when it ends.'
          : `If no deploy is running, remove ${this.host.dir}/lock on the host.`),
    );
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop() ?? '';
}

function waitExit(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}
