import { spawn, type ChildProcess } from 'node:child_process';

/** One side of a pipe: a program and its argv (never a shell string). */
export interface PipeCommand {
  command: string;
  args: readonly string[];
}

export interface PipeSide {
  /** Exit code; null when it ended by a signal or never started. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Why it could not be started (spawn error), if so. */
  spawnError?: string;
  /** The last few KB of its stderr. */
  stderr: string;
  ok: boolean;
}

export interface PipeResult {
  source: PipeSide;
  sink: PipeSide;
  /** Bytes that went from the source's stdout to the sink's stdin. */
  bytes: number;
  timedOut: boolean;
  /** Which side failed first (and the other was stopped for it). */
  firstFailure?: 'source' | 'sink';
  /** The sink's stdout (its last few KB). */
  sinkStdout: string;
}

const TAIL = 4096;
const KILL_GRACE_MS = 5000;

function tailAppend(tail: string, chunk: Buffer): string {
  const text = tail + chunk.toString('utf8');
  return text.length > TAIL ? text.slice(-TAIL) : text;
}

/**
 * `source | sink` without a shell: the source's stdout streams into the sink's stdin through a
 * pipe, so memory stays bounded and a slow sink slows the source (backpressure). When either side
 * fails, the other is stopped (SIGTERM, SIGKILL after a grace period) so a failed source never
 * lets the sink see a clean end of input, and both are waited for (no zombies). Never rejects.
 */
export function pipeCommands(
  source: PipeCommand,
  sink: PipeCommand,
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<PipeResult> {
  return new Promise((resolve) => {
    const sides = {
      source: { exitCode: null, signal: null, stderr: '', ok: false } as PipeSide,
      sink: { exitCode: null, signal: null, stderr: '', ok: false } as PipeSide,
    };
    let bytes = 0;
    let sinkStdout = '';
    let timedOut = false;
    let firstFailure: PipeResult['firstFailure'];
    let open = 2;
    const timers: NodeJS.Timeout[] = [];

    const src = spawn(source.command, [...source.args], { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env });
    const dst = spawn(sink.command, [...sink.args], { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env });
    const procs: Record<'source' | 'sink', ChildProcess> = { source: src, sink: dst };

    const stop = (which: 'source' | 'sink'): void => {
      const p = procs[which];
      if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) return;
      p.kill('SIGTERM');
      const t = setTimeout(() => {
        if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      }, KILL_GRACE_MS);
      t.unref();
      timers.push(t);
    };
    const failed = (which: 'source' | 'sink'): void => {
      if (firstFailure) return;
      firstFailure = which;
      stop(which === 'source' ? 'sink' : 'source');
    };
    const closed = { source: false, sink: false };
    const finish = (which: 'source' | 'sink', code: number | null, signal: NodeJS.Signals | null): void => {
      if (closed[which]) return;
      closed[which] = true;
      const side = sides[which];
      if (side.spawnError === undefined) {
        side.exitCode = code;
        side.signal = signal;
      }
      side.ok = side.spawnError === undefined && code === 0;
      if (!side.ok) failed(which);
      // The sink's input ends only when the source succeeded: a failed source never looks complete.
      else if (which === 'source') dst.stdin.end();
      // A sink that is gone reads nothing more: a source still writing would block on a full pipe.
      if (which === 'sink' && !closed.source) {
        firstFailure ??= 'sink';
        stop('source');
      }
      if (--open === 0) {
        for (const t of timers) clearTimeout(t);
        resolve({ source: sides.source, sink: sides.sink, bytes, timedOut, firstFailure, sinkStdout });
      }
    };

    src.stdout.on('data', (chunk: Buffer) => (bytes += chunk.length));
    src.stdout.pipe(dst.stdin, { end: false });
    // The sink going away mid-stream (EPIPE) is reported by its exit, not thrown here.
    dst.stdin.on('error', () => undefined);
    src.stdout.on('error', () => undefined);
    src.stderr.on('data', (c: Buffer) => (sides.source.stderr = tailAppend(sides.source.stderr, c)));
    dst.stderr.on('data', (c: Buffer) => (sides.sink.stderr = tailAppend(sides.sink.stderr, c)));
    dst.stdout.on('data', (c: Buffer) => (sinkStdout = tailAppend(sinkStdout, c)));
    for (const which of ['source', 'sink'] as const) {
      const p = procs[which];
      p.on('error', (e) => {
        // Never started (no pid): that side ends here; a 'close' that may follow is ignored.
        sides[which].spawnError = e.message;
        if (p.pid === undefined) finish(which, null, null);
        else failed(which);
      });
      p.on('close', (code, signal) => finish(which, code, signal));
      // A grandchild that inherited its pipes could hold 'close' back long after the exit.
      p.on('exit', () => {
        const t = setTimeout(() => {
          for (const s of [p.stdin, p.stdout, p.stderr]) s?.destroy();
        }, 2000);
        t.unref();
        timers.push(t);
      });
    }
    if (opts.timeoutMs) {
      const t = setTimeout(() => {
        timedOut = true;
        if (!firstFailure) firstFailure = 'sink';
        stop('source');
        stop('sink');
      }, opts.timeoutMs);
      t.unref();
      timers.push(t);
    }
  });
}
