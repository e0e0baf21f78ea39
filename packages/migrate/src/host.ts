import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as core from '@actions/core';
import { CommandError, UserError, tail } from '@slipway/toolkit/errors';
import { displayCommand, execTool, type ExecResult } from '@slipway/toolkit/exec';

/**
 * Where the project's Python runs: the runner's own environment (default), or inside a built
 * image. Deploy's ssh provider plugs in here later by implementing MigrationHost (run Python in
 * the project on the target, env through a 0600 file), nothing else changes.
 */
export interface MigrationHost {
  kind: 'runner' | 'image' | 'ssh';
  /** manage.py as the Python on that host sees it. */
  managePy: string;
  /** Runs the project's Python with `args` in the project folder, settings and env applied. */
  python(args: string[], opts?: PythonOptions): Promise<ExecResult>;
  /** The argv that starts that Python long-lived (the lock holder), for spawn. */
  pythonCommand(args: string[]): HostCommand;
  /** A Python on the runner that can run plain scripts (SQLite copies). */
  localPython: string;
  dispose(): void;
}

export interface HostCommand {
  tool: string;
  args: string[];
  cwd?: string;
  env?: Record<string, string>;
  /** Stops what the command started beyond its own process (image: kills and removes the container). */
  stop?: () => Promise<void>;
}

export interface PythonOptions {
  silent?: boolean;
  timeoutMs?: number;
  label?: string;
  allowFailure?: boolean;
}

export function runnerHost(opts: { python: string; managePy: string; settingsModule: string; env: Record<string, string> }): MigrationHost {
  const projectDir = path.dirname(opts.managePy);
  const env = {
    ...opts.env,
    DJANGO_SETTINGS_MODULE: opts.settingsModule,
    PYTHONPATH: [projectDir, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter),
    PYTHONUNBUFFERED: '1',
  };
  return {
    kind: 'runner',
    managePy: opts.managePy,
    localPython: opts.python,
    python: (args, o = {}) => execTool(opts.python, args, { cwd: projectDir, env, quiet: o.silent, ...o }),
    pythonCommand: (args) => ({ tool: opts.python, args, cwd: projectDir, env }),
    dispose: () => undefined,
  };
}

/**
 * `docker run` of the image with the project's environment from a 0600 --env-file (never -e
 * VALUE on argv). The project is in the image's WORKDIR, or in `projectDir` (absolute, or
 * relative to the WORKDIR); host networking reaches the same databases the runner reaches.
 * Every container is named (slipway-migrate-<run id>-<random>): a timeout or an abort kills and
 * removes it by name, since stopping the docker client does not stop it (Python as PID 1
 * ignores the SIGTERM the client passes on), and it would keep its connection and lock.
 */
export function imageHost(opts: {
  image: string;
  settingsModule?: string;
  /** Where manage.py is inside the image (migrate's `working-directory`); default the WORKDIR. */
  projectDir?: string;
  env: Record<string, string>;
  tempDir: string;
  localPython: string;
  docker?: string;
}): MigrationHost {
  const docker = opts.docker ?? 'docker';
  const dir = fs.mkdtempSync(path.join(opts.tempDir, 'slipway-migrate-env-'));
  const envFile = path.join(dir, 'env');
  const entries: Record<string, string> = { ...opts.env, PYTHONUNBUFFERED: '1' };
  if (opts.settingsModule) entries.DJANGO_SETTINGS_MODULE = opts.settingsModule;
  if (opts.projectDir) entries.SLIPWAY_PROJECT_DIR = opts.projectDir;
  fs.writeFileSync(envFile, envFileText(entries), { mode: 0o600 });
  const mine = new Set<string>();
  const argv = (name: string, args: string[], interactive: boolean): string[] => [
    'run',
    '--rm',
    ...(interactive ? ['-i'] : []),
    '--name',
    name,
    '--network',
    'host',
    '--env-file',
    envFile,
    opts.image,
    'python',
    ...args,
  ];
  const start = (): string => {
    const name = containerName();
    mine.add(name);
    trackContainer(docker, name);
    return name;
  };
  return {
    kind: 'image',
    managePy: 'manage.py',
    localPython: opts.localPython,
    python: async (args, o = {}) => {
      const name = start();
      const shown = displayCommand(docker, argv(name, args, false));
      let stopping: Promise<void> | undefined;
      // At the timeout the container is killed (its client then exits); the client's own
      // timeout, later, only covers a container that never started.
      const timer = o.timeoutMs
        ? setTimeout(() => {
            stopping = stopContainer(docker, name);
          }, o.timeoutMs)
        : undefined;
      try {
        const result = await execTool(docker, argv(name, args, false), {
          quiet: o.silent,
          ...o,
          allowFailure: true,
          timeoutMs: o.timeoutMs ? o.timeoutMs + 15_000 : undefined,
        });
        if (stopping) {
          await stopping;
          result.stderr = `${result.stderr}\ntimed out after ${Math.round(o.timeoutMs! / 1000)}s: container ${name} killed and removed`;
        }
        if (result.exitCode !== 0 && !o.allowFailure)
          throw new CommandError(shown, result.exitCode, tail(result.stderr || result.stdout), o.label);
        return result;
      } finally {
        clearTimeout(timer);
        untrackContainer(name);
      }
    },
    pythonCommand: (args) => {
      const name = start();
      return { tool: docker, args: argv(name, args, true), stop: () => stopContainer(docker, name) };
    },
    dispose: () => {
      for (const name of mine) untrackContainer(name);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A container name unique to this run and call: slipway-migrate-<run id>-<8 hex>. */
export function containerName(): string {
  const run = (process.env.GITHUB_RUN_ID ?? 'local').replace(/[^\w.-]/g, '') || 'local';
  return `slipway-migrate-${run}-${crypto.randomBytes(4).toString('hex')}`;
}

/**
 * `docker kill` then `docker rm -f` (--rm may already be removing it), then waits until the
 * container is gone, so its database connection, and any lock on it, are gone too.
 */
export async function stopContainer(docker: string, name: string): Promise<void> {
  const quiet = { silent: true, quiet: true, allowFailure: true, timeoutMs: 30_000 };
  core.info(`Stopping container ${name} (docker kill, docker rm -f)`);
  await execTool(docker, ['kill', name], quiet).catch(() => undefined);
  await execTool(docker, ['rm', '-f', name], quiet).catch(() => undefined);
  for (let i = 0; i < 50; i++) {
    const seen = await execTool(docker, ['container', 'inspect', '--format', '{{.State.Status}}', name], quiet).catch(() => undefined);
    if (!seen || seen.exitCode !== 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  untrackContainer(name);
}

/*
 * Containers that may be running, killed synchronously if the step is cancelled (the runner
 * sends SIGINT, then SIGTERM): the process then ends as the signal would have ended it.
 */
const running = new Map<string, string>();
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

function onAbort(signal: NodeJS.Signals): void {
  for (const [name, docker] of running) {
    // Written synchronously: the process ends right after.
    fs.writeSync(1, `${signal}: killing and removing container ${name} (docker kill, docker rm -f)\n`);
    for (const args of [
      ['kill', name],
      ['rm', '-f', name],
    ]) {
      try {
        execFileSync(docker, args, { stdio: 'ignore', timeout: 15_000 });
      } catch {
        // already gone
      }
    }
  }
  running.clear();
  for (const s of SIGNALS) process.removeListener(s, onAbort);
  process.kill(process.pid, signal);
}

function trackContainer(docker: string, name: string): void {
  if (!running.size) for (const s of SIGNALS) process.on(s, onAbort);
  running.set(name, docker);
}

function untrackContainer(name: string): void {
  if (!running.delete(name) || running.size) return;
  for (const s of SIGNALS) process.removeListener(s, onAbort);
}

/** docker's --env-file format: KEY=value lines, no quoting, so no newlines in values. */
export function envFileText(entries: Record<string, string>): string {
  return Object.entries(entries)
    .map(([k, v]) => {
      if (/[\r\n]/.test(v)) throw new UserError(`Environment variable ${k} has a newline, which docker's --env-file cannot carry.`);
      return `${k}=${v}\n`;
    })
    .join('');
}
