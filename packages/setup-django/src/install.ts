import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CommandError, UserError } from '@slipway/toolkit/errors';
import { execTool } from '@slipway/toolkit/exec';
import {
  pipenvRequirementsArgv,
  poetryInstallArgv,
  pyprojectRequirements,
  requirementsInstallArgv,
  uvIndexEnv,
  uvSyncArgv,
  venvCreateArgv,
  type DependencyProject,
  type Installer,
} from '@slipway/toolkit/package-manager';
import { isVenv, venvBin, venvPython } from '@slipway/toolkit/python';
import { runnerTemp } from '@slipway/toolkit/runner';
import { maskUrl } from '@slipway/toolkit/secrets';
import { ensurePythonTool, ensureUv } from './tools';

export interface InstallPlan {
  project: DependencyProject;
  installer: Installer;
  interpreter: string;
  venv: string;
  extras: string[];
  groups: string[];
}

/** pip.conf files pip itself would read, lowest priority first. */
function pipConfigTexts(): string[] {
  const files = [
    '/etc/pip.conf',
    '/etc/xdg/pip/pip.conf',
    path.join(os.homedir(), '.pip', 'pip.conf'),
    path.join(os.homedir(), '.config', 'pip', 'pip.conf'),
  ];
  if (process.env.PIP_CONFIG_FILE && process.env.PIP_CONFIG_FILE !== os.devNull) files.push(process.env.PIP_CONFIG_FILE);
  return files.filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f, 'utf8'));
}

/**
 * Creates the venv (unless a restored one is there) and installs the project's dependencies
 * into it with the project's own tool. Runs over a partly matching restored venv too: every
 * tool here installs only what is missing or different.
 */
export async function installDependencies(plan: InstallPlan): Promise<void> {
  const { project, installer, interpreter, venv } = plan;
  const needsUv = installer === 'uv' || project.kind === 'uv';
  const uv = needsUv ? await ensureUv(interpreter) : undefined;
  const indexEnv = uvIndexEnv(process.env, pipConfigTexts());
  // A private index URL may carry credentials: hide them before any tool can print them.
  for (const url of [indexEnv.UV_DEFAULT_INDEX, ...(indexEnv.UV_INDEX ?? '').split(' ')]) maskUrl(url);
  const uvEnv = { ...indexEnv, UV_PYTHON_DOWNLOADS: process.env.UV_PYTHON_DOWNLOADS ?? 'never' };
  const python = venvPython(venv);

  const pipenvLines = project.kind === 'pipenv' ? await pipenvRequirements(plan, uv, uvEnv) : undefined;

  if (!isVenv(venv)) {
    const [tool, args] = venvCreateArgv(project.kind === 'uv' ? 'uv' : installer, interpreter, venv, uv);
    await execTool(tool, args, { env: uvEnv, label: 'Creating the virtualenv' });
  }

  const installFiles = async (files: string[]): Promise<void> => {
    const [tool, args] = requirementsInstallArgv(installer, python, files, uv);
    await execTool(tool, args, { cwd: project.dir, env: uvEnv, label: 'Installing dependencies' });
  };

  switch (project.kind) {
    case 'requirements':
      return installFiles(project.requirements);
    case 'pyproject': {
      const file = path.join(project.dir, 'pyproject.toml');
      const lines = pyprojectRequirements(fs.readFileSync(file, 'utf8'), plan.extras, plan.groups, path.basename(file));
      if (!lines.length) return;
      return installFiles([writeTemp('pyproject-requirements.txt', lines.join('\n'))]);
    }
    case 'uv':
      // --locked: a pyproject.toml edited without `uv lock` fails here, as `uv sync` alone
      // would re-lock on the runner and install what nobody reviewed.
      await execTool(uv!, uvSyncArgv(interpreter, plan.extras, plan.groups), {
        cwd: project.dir,
        env: { ...uvEnv, UV_PROJECT_ENVIRONMENT: venv },
        label: 'uv sync',
      }).catch(staleLock(/needs to be updated/, project.dir, 'uv.lock', 'pyproject.toml', 'uv lock'));
      return;
    case 'poetry': {
      const poetry = await ensurePythonTool('poetry', interpreter, uv ?? (await ensureUv(interpreter).catch(() => undefined)), uvEnv);
      // Poetry installs into the active virtualenv when VIRTUAL_ENV names one: ours.
      await execTool(poetry, poetryInstallArgv(plan.extras, plan.groups), {
        cwd: project.dir,
        env: {
          ...uvEnv,
          VIRTUAL_ENV: venv,
          PATH: [venvBin(venv), process.env.PATH].join(path.delimiter),
          POETRY_VIRTUALENVS_CREATE: 'false',
          POETRY_NO_INTERACTION: '1',
        },
        label: 'poetry install',
      }).catch(staleLock(/changed significantly since poetry\.lock/, project.dir, 'poetry.lock', 'pyproject.toml', 'poetry lock'));
      return;
    }
    case 'pipenv':
      return installFiles([writeTemp('pipenv-requirements.txt', pipenvLines!)]);
  }
}

/**
 * The pinned requirement lines of a Pipfile.lock, after checking the lock still matches its
 * Pipfile: `pipenv requirements` reads the lock as it is, so a Pipfile edited without
 * `pipenv lock` would quietly install the old pins. Runs before the venv exists, so a stale
 * lock leaves nothing half-built.
 */
async function pipenvRequirements(plan: InstallPlan, uv: string | undefined, uvEnv: Record<string, string>): Promise<string> {
  const { project, interpreter } = plan;
  const [lockName, pipfileName] = [shownPath(project.dir, 'Pipfile.lock'), shownPath(project.dir, 'Pipfile')];
  const pipenv = await ensurePythonTool('pipenv', interpreter, uv ?? (await ensureUv(interpreter).catch(() => undefined)), uvEnv);
  const pipenvEnv = {
    ...uvEnv,
    PIPENV_VERBOSITY: '-1',
    PIPENV_PIPFILE: path.join(project.dir, 'Pipfile'),
    PIPENV_IGNORE_VIRTUALENVS: '1',
  };
  // `pipenv verify` compares the lock's recorded Pipfile hash with the Pipfile's.
  const verify = await execTool(pipenv, ['verify'], { cwd: project.dir, env: pipenvEnv, silent: true, allowFailure: true });
  if (verify.exitCode !== 0 && !/out.of.date/i.test(verify.stdout + verify.stderr)) {
    const why = `${verify.stderr}\n${verify.stdout}`.split('\n').find((l) => l.trim()) ?? `exit code ${verify.exitCode}`;
    throw new UserError(`\`pipenv verify\` could not check ${lockName}: ${why.trim()}`);
  }
  if (verify.exitCode !== 0) {
    throw new UserError(staleLockMessage(lockName, pipfileName, 'pipenv lock'));
  }
  const { stdout } = await execTool(pipenv, pipenvRequirementsArgv(plan.groups), {
    cwd: project.dir,
    env: pipenvEnv,
    silent: true,
    label: 'pipenv requirements',
  });
  return stdout;
}

function shownPath(dir: string, name: string): string {
  return path.join(path.relative(process.env.GITHUB_WORKSPACE ?? process.cwd(), dir), name);
}

function staleLockMessage(lock: string, manifest: string, relock: string): string {
  return `${lock} is out of date with ${manifest} (edited after the last \`${relock}\`): run \`${relock}\` and commit ${lock}.`;
}

/** Turns the installer's own "lock is stale" failure into one line; anything else goes on. */
function staleLock(pattern: RegExp, dir: string, lock: string, manifest: string, relock: string): (error: unknown) => never {
  return (error) => {
    if (error instanceof CommandError && pattern.test(error.stderrTail)) {
      throw new UserError(staleLockMessage(shownPath(dir, lock), shownPath(dir, manifest), relock));
    }
    throw error;
  };
}

function writeTemp(name: string, text: string): string {
  const dir = fs.mkdtempSync(path.join(runnerTemp(), 'slipway-setup-django-'));
  const file = path.join(dir, name);
  fs.writeFileSync(file, `${text}\n`, { mode: 0o600 });
  return file;
}
