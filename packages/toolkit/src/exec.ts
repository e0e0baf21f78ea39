import { spawn } from 'node:child_process';
import * as core from '@actions/core';
import { CommandError, tail } from './errors';

export interface ExecOptions {
  cwd?: string;
  /** Added to (or, with `replaceEnv`, instead of) this process's environment. */
  env?: Record<string, string | undefined>;
  replaceEnv?: boolean;
  /** Written to the program's stdin: the way secrets reach a program (never argv). */
  input?: string | Buffer;
  /** Do not echo the program's output to the log (it is still captured). */
  silent?: boolean;
  /** Do not print the `[command]` line either. */
  quiet?: boolean;
  /** Return a non-zero exit instead of throwing. */
  allowFailure?: boolean;
  timeoutMs?: number;
  /** Short description used in the error message, e.g. "Installing dependencies". */
  label?: string;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

const MAX_CAPTURE = 32 * 1024 * 1024;

/** Quotes an argv for display only; it is never handed to a shell. */
export function displayCommand(tool: string, args: readonly string[]): string {
  return [tool, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/**
 * Runs a program with an argv array, never through a shell. Throws CommandError (command, exit
 * code, stderr tail) when it fails, unless `allowFailure` is set.
 */
export function execTool(tool: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const shown = displayCommand(tool, args);
  if (!opts.quiet) core.info(`[command]${shown}`);
  const env = opts.replaceEnv ? { ...opts.env } : { ...process.env, ...opts.env };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, {
      cwd: opts.cwd,
      env: env,
      stdio: ['pipe', 'pipe', 'pipe'],
      shell: false,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGTERM');
          setTimeout(() => child.kill('SIGKILL'), 5000).unref();
        }, opts.timeoutMs)
      : undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      if (stdout.length < MAX_CAPTURE) stdout += chunk.toString('utf8');
      if (!opts.silent) process.stdout.write(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-MAX_CAPTURE);
      if (!opts.silent) process.stdout.write(chunk);
    });
    child.stdin.on('error', () => undefined); // a program that exits without reading its input
    child.stdin.end(opts.input ?? '');
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      const why = error.code === 'ENOENT' ? `${tool} was not found` : error.message;
      reject(new CommandError(shown, null, why, opts.label));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const exitCode = code ?? 128 + (signal ? 15 : 0);
      const result = { exitCode, stdout, stderr, durationMs: Date.now() - started };
      if (exitCode === 0 || opts.allowFailure) return resolve(result);
      const why = timedOut
        ? `timed out after ${Math.round((opts.timeoutMs ?? 0) / 1000)}s\n${tail(stderr || stdout)}`
        : tail(stderr || stdout);
      reject(new CommandError(shown, exitCode, why, opts.label));
    });
  });
}
