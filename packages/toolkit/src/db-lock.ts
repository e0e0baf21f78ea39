import { spawn } from 'node:child_process';
import * as core from '@actions/core';
import { CommandError, UserError, tail } from './errors';
import { displayCommand } from './exec';

/**
 * A database lock held by a long-lived child process on its own connection (a PostgreSQL
 * advisory lock, MySQL GET_LOCK, a lock file): the process prints `readyLine` once it holds the
 * lock and keeps it until its stdin closes. Closing stdin releases it on every path, and if this
 * process dies the pipe closes, the connection ends, and the server drops the lock by itself.
 * (A long-lived interactive child is the one thing execTool does not do, hence spawn here.)
 */
export interface LockProcess {
  tool: string;
  args: string[];
  cwd?: string;
  env?: Record<string, string | undefined>;
  readyLine: string;
  /** Turns the process's final output into a one-line reason when it exits without the lock. */
  explain: (stdout: string, stderr: string) => string | undefined;
}

export async function withHeldLock<T>(lock: LockProcess, fn: () => Promise<T>): Promise<T> {
  const env = { ...process.env, ...lock.env };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  const child = spawn(lock.tool, lock.args, { cwd: lock.cwd, env, stdio: ['pipe', 'pipe', 'pipe'], shell: false });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-65536)));
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 1)));
  const acquired = await new Promise<boolean>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(new CommandError(displayCommand(lock.tool, lock.args), null, e.code === 'ENOENT' ? `${lock.tool} was not found` : e.message)),
    );
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      if (stdout.split('\n').some((l) => l.trim() === lock.readyLine)) resolve(true);
    });
    void exited.then(() => resolve(false));
  });
  if (!acquired) {
    const code = await exited;
    const reason = lock.explain(stdout, stderr);
    if (reason) throw new UserError(reason);
    throw new CommandError(displayCommand(lock.tool, lock.args), code, tail(stderr || stdout), 'Taking the migration lock');
  }
  core.info('Lock taken.');
  try {
    return await fn();
  } finally {
    child.stdin.end();
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise<number>((r) => (timer = setTimeout(() => r(-1), 10_000)))]);
    clearTimeout(timer);
    if (code === -1) child.kill('SIGKILL');
    core.info('Lock released.');
  }
}
