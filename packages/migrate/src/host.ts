import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '@slipway/toolkit/errors';
import { execTool, type ExecResult } from '@slipway/toolkit/exec';

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
  pythonCommand(args: string[]): { tool: string; args: string[]; cwd?: string; env?: Record<string, string> };
  /** A Python on the runner that can run plain scripts (SQLite copies). */
  localPython: string;
  dispose(): void;
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
 * VALUE on argv). The image's WORKDIR holds manage.py; host networking reaches the same
 * databases the runner reaches.
 */
export function imageHost(opts: {
  image: string;
  settingsModule?: string;
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
  fs.writeFileSync(envFile, envFileText(entries), { mode: 0o600 });
  const argv = (args: string[], interactive: boolean): string[] => [
    'run',
    '--rm',
    ...(interactive ? ['-i'] : []),
    '--network',
    'host',
    '--env-file',
    envFile,
    opts.image,
    'python',
    ...args,
  ];
  return {
    kind: 'image',
    managePy: 'manage.py',
    localPython: opts.localPython,
    python: (args, o = {}) => execTool(docker, argv(args, false), { quiet: o.silent, ...o }),
    pythonCommand: (args) => ({ tool: docker, args: argv(args, true) }),
    dispose: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
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
