import * as path from 'node:path';
import * as core from '@actions/core';
import { inspectDjango } from '@slipway/toolkit/django';
import { CommandError, tail, UserError } from '@slipway/toolkit/errors';
import { displayCommand, execTool } from '@slipway/toolkit/exec';
import { annotate } from '@slipway/toolkit/log';
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
 * ruff with GitHub's output format. ruff writes absolute paths there; the lines are read and
 * annotated again with workspace-relative paths, as annotations need, capped like test failures.
 */
export async function ruff(c: CheckEnv): Promise<void> {
  const argv = ruffArgv();
  const result = await execTool(c.python, argv, { cwd: c.projectDir, env: c.env, allowFailure: true, silent: true });
  const problems = parseGithubAnnotations(result.stdout);
  for (const p of problems.slice(0, MAX_LINT_ANNOTATIONS)) {
    const file = path.relative(c.workspace, path.resolve(c.projectDir, p.file));
    core.info(`${file}:${p.line}: ${p.title}: ${p.message.split('\n')[0]}`);
    annotate('error', p.message, { file, line: p.line, endLine: p.endLine, title: p.title });
  }
  for (const p of problems.slice(MAX_LINT_ANNOTATIONS)) core.info(`${p.file}:${p.line}: ${p.title}: ${p.message.split('\n')[0]}`);
  if (result.exitCode === 0) return core.info('ruff: no problems.');
  if (problems.length)
    throw new UserError(`ruff found ${problems.length} problem${problems.length > 1 ? 's' : ''} (annotated at their lines).`);
  throw new CommandError(displayCommand(c.python, argv), result.exitCode, tail(result.stderr || result.stdout), 'Linting with ruff');
}

const MAX_LINT_ANNOTATIONS = 20;

export interface GithubAnnotation {
  title: string;
  file: string;
  line: number;
  endLine?: number;
  message: string;
}

/** `::error title=…,file=…,line=…::message` lines, as ruff's `--output-format=github` prints them. */
export function parseGithubAnnotations(text: string): GithubAnnotation[] {
  const out: GithubAnnotation[] = [];
  const unescape = (s: string): string =>
    s.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%3A/g, ':').replace(/%2C/g, ',').replace(/%25/g, '%');
  for (const line of text.split('\n')) {
    const m = /^::(?:error|warning|notice) ([^:]*)::(.*)$/.exec(line);
    if (!m) continue;
    const props = Object.fromEntries(
      m[1]!.split(',').map((kv) => {
        const eq = kv.indexOf('=');
        return [kv.slice(0, eq), unescape(kv.slice(eq + 1))];
      }),
    );
    if (!props.file) continue;
    out.push({
      title: props.title ?? 'ruff',
      file: props.file,
      line: Number(props.line ?? 1),
      endLine: props.endLine ? Number(props.endLine) : undefined,
      message: unescape(m[2]!),
    });
  }
  return out;
}
