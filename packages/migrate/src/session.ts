import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { CommandError, tail } from '@slipway/toolkit/errors';
import { displayCommand } from '@slipway/toolkit/exec';
import { HELPER_SCRIPT } from './helper-script';
import type { MigrationHost } from './host';

/**
 * One long-lived helper process (`{"cmd": "session"}`) for a whole migrate run: Django starts
 * once, then plan, lint, lock, apply and state are requests on its stdin (one JSON line each),
 * answered by SLIPWAY_JSON lines on its stdout; anything else it prints is log output. The lock
 * lives on the helper's own connection: closing stdin, or the process ending, releases it.
 */
export interface SessionAnswer {
  error?: string;
  message?: string;
  trace?: string;
  [key: string]: unknown;
}

export interface RequestOptions {
  label: string;
  timeoutMs?: number;
  /** Echo what the helper prints while answering (migrate's own output) to the log. */
  stream?: boolean;
}

const PREFIX = 'SLIPWAY_JSON:';
const KEEP_OUTPUT = 64 * 1024;

interface Waiter {
  resolve: (answer: SessionAnswer) => void;
  reject: (error: Error) => void;
  label: string;
}

export class MigrationSession {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly shown: string;
  /** Stops what the child started beyond itself (the image host's container). */
  private readonly stopHost?: () => Promise<void>;
  private partial = '';
  /** Recent output (stdout lines that are not answers, and stderr), for failure messages. */
  private output = '';
  private stream = false;
  private waiter?: Waiter;
  private exitCode: number | null | undefined;
  private readonly exited: Promise<number | null>;

  private constructor(host: MigrationHost, database: string) {
    const cmd = host.pythonCommand(['-c', HELPER_SCRIPT, JSON.stringify({ cmd: 'session', database })]);
    this.stopHost = cmd.stop;
    // Shown without the script itself (it is long and says nothing the reader needs).
    this.shown = displayCommand(
      cmd.tool,
      cmd.args.map((a) => (a === HELPER_SCRIPT ? '<slipway migrate helper>' : a)),
    );
    const env: Record<string, string | undefined> = { ...process.env, ...cmd.env };
    for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
    this.child = spawn(cmd.tool, cmd.args, { cwd: cmd.cwd, env, stdio: ['pipe', 'pipe', 'pipe'], shell: false });
    this.child.stdin.on('error', () => undefined); // a helper that died: reported through 'close'
    this.child.stdout.on('data', (chunk: Buffer) => this.onStdout(chunk.toString('utf8')));
    this.child.stderr.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      this.keep(text);
      if (this.stream) process.stdout.write(text);
    });
    this.exited = new Promise((resolve) => {
      this.child.on('error', (e: NodeJS.ErrnoException) => {
        this.exitCode = null;
        this.fail(new CommandError(this.shown, null, e.code === 'ENOENT' ? `${cmd.tool} was not found` : e.message, this.waiter?.label));
        resolve(null);
      });
      this.child.on('close', (code, signal) => {
        this.onStdout('\n');
        this.exitCode = code ?? 128 + (signal === 'SIGKILL' ? 9 : 15);
        this.fail(new CommandError(this.shown, this.exitCode, tail(this.output), this.waiter?.label));
        resolve(this.exitCode);
      });
    });
  }

  /** Starts the helper and waits until Django is set up: the first answer, `ready` or the reason it is not. */
  static async start(
    host: MigrationHost,
    database: string,
    timeoutMs?: number,
  ): Promise<{ session: MigrationSession; answer: SessionAnswer }> {
    const session = new MigrationSession(host, database);
    try {
      const answer = await session.next({ label: 'Starting the migrate helper (Django set-up)', timeoutMs });
      return { session, answer };
    } catch (error) {
      await session.close();
      throw error;
    }
  }

  get alive(): boolean {
    return this.exitCode === undefined;
  }

  /** Sends one request and waits for its answer; a helper that exits or times out is a CommandError. */
  request(request: Record<string, unknown>, opts: RequestOptions): Promise<SessionAnswer> {
    if (!this.alive) return Promise.reject(new CommandError(this.shown, this.exitCode ?? null, tail(this.output), opts.label));
    const answer = this.next(opts);
    this.child.stdin.write(`${JSON.stringify(request)}\n`);
    return answer;
  }

  /** Ends the helper: stdin closes (releasing any lock it holds), then it exits; killed after 10 s. */
  async close(): Promise<void> {
    if (this.alive) this.child.stdin.end();
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([this.exited.then(() => 0), new Promise<number>((r) => (timer = setTimeout(() => r(-1), 10_000)))]);
    clearTimeout(timer);
    if (code === -1) {
      await this.stop();
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  /** Ends the helper now: its container (image host) killed and removed, its process terminated. */
  private async stop(): Promise<void> {
    const stopped = this.stopHost?.().catch(() => undefined);
    this.child.kill('SIGTERM');
    setTimeout(() => this.child.kill('SIGKILL'), 5000).unref();
    await stopped;
  }

  private next(opts: RequestOptions): Promise<SessionAnswer> {
    if (this.waiter) throw new Error(`migrate helper: "${opts.label}" sent while "${this.waiter.label}" is unanswered`);
    this.stream = Boolean(opts.stream);
    this.output = '';
    return new Promise<SessionAnswer>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(timer);
        this.waiter = undefined;
        this.stream = false;
      };
      this.waiter = {
        label: opts.label,
        resolve: (a) => {
          done();
          resolve(a);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      };
      if (opts.timeoutMs) {
        timer = setTimeout(() => {
          const why = `timed out after ${Math.round(opts.timeoutMs! / 1000)}s${this.output ? `\n${tail(this.output)}` : ''}`;
          const waiter = this.waiter;
          this.waiter = undefined; // answered below, once the helper is gone
          // Ending the process (and its container) also ends its connections, so the server drops
          // any lock it held; answered once both are gone.
          void Promise.all([this.exited, this.stop()]).then(([code]) =>
            waiter?.reject(new CommandError(this.shown, code, why, opts.label)),
          );
        }, opts.timeoutMs);
      }
    });
  }

  private onStdout(text: string): void {
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.startsWith(PREFIX)) {
        const answer = JSON.parse(line.slice(PREFIX.length)) as SessionAnswer;
        if (this.waiter) this.waiter.resolve(answer);
        continue;
      }
      if (!line.trim()) continue;
      this.keep(`${line}\n`);
      if (this.stream) process.stdout.write(`${line}\n`);
    }
  }

  private keep(text: string): void {
    this.output = (this.output + text).slice(-KEEP_OUTPUT);
  }

  private fail(error: Error): void {
    this.waiter?.reject(error);
  }
}
