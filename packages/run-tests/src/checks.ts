import * as path from 'node:path';
import * as core from '@actions/core';
import { inspectDjango } from '@slipway/toolkit/django';
import { CommandError, tail, UserError } from '@slipway/toolkit/errors';
import { displayCommand, execTool } from '@slipway/toolkit/exec';
import { makemigrationsArgv, ruffArgv } from './context';

export interface CheckEnv {
  python: string;
  projectDir: string;
  workspace: string;
  settingsModule: string;
  env: Record<string, string>;
}

/** Apps with model changes that have no migration, from `makemigrations --check --dry-run`. */
export function appsMissingMigrations(output: string): string[] {
  return [...new Set([...output.matchAll(/Migrations for '([^']+)'/g)].map((m) => m[1]!))].sort();
}

export async function checkMigrations(c: CheckEnv): Promise<void> {
  const argv = makemigrationsArgv();
  const result = await execTool(c.python, argv, { cwd: c.projectDir, env: c.env, allowFailure: true });
  if (result.exitCode === 0) return;
  const apps = appsMissingMigrations(result.stdout);
  if (apps.length) {
    throw new UserError(
      `Models have changes that are not in migrations (app${apps.length > 1 ? 's' : ''} ${apps.join(', ')}): run \`manage.py makemigrations\` and commit the result.`,
    );
  }
  throw new CommandError(
    displayCommand(c.python, argv),
    result.exitCode,
    tail(result.stderr || result.stdout),
    'Checking for missing migrations',
  );
}

export async function systemCheck(c: CheckEnv): Promise<void> {
  await execTool(c.python, ['manage.py', 'check'], { cwd: c.projectDir, env: c.env, label: 'Django system check' });
}

/** Whether the project's static storage needs collectstatic's manifest before templates render. */
export async function needsCollectstatic(c: CheckEnv): Promise<{ needed: boolean; storage: string }> {
  const info = await inspectDjango({ python: c.python, projectDir: c.projectDir, settingsModule: c.settingsModule, env: c.env });
  return { needed: /Manifest/.test(info.staticfilesStorage), storage: info.staticfilesStorage };
}

export async function collectstatic(c: CheckEnv): Promise<void> {
  await execTool(c.python, ['manage.py', 'collectstatic', '--noinput', '-v', '0'], {
    cwd: c.projectDir,
    env: c.env,
    label: 'collectstatic',
  });
}

/**
 * ruff with GitHub's output format: it prints its own `::error file=…,line=…` commands, which the
 * runner turns into annotations. Run from the workspace root so the paths are the ones GitHub
 * expects, on the project's folder.
 */
export async function ruff(c: CheckEnv): Promise<void> {
  const target = path.relative(c.workspace, c.projectDir) || '.';
  const argv = [...ruffArgv().slice(0, -1), target];
  const result = await execTool(c.python, argv, { cwd: c.workspace, env: c.env, allowFailure: true });
  if (result.exitCode === 0) return;
  const problems = result.stdout.split('\n').filter((l) => l.startsWith('::')).length;
  if (problems) throw new UserError(`ruff found ${problems} problem${problems > 1 ? 's' : ''} (annotated at their lines).`);
  core.info(result.stdout);
  throw new CommandError(displayCommand(c.python, argv), result.exitCode, tail(result.stderr || result.stdout), 'Linting with ruff');
}
