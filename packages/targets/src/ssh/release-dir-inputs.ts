import * as fs from 'node:fs';
import * as path from 'node:path';
import { findManagePy, settingsModuleFromManagePy } from '@slipway/toolkit/django';
import { UserError } from '@slipway/toolkit/errors';
import { getArgs, getList, getRaw, getString } from '@slipway/toolkit/inputs';
import { detectProject, pyprojectRequirements } from '@slipway/toolkit/package-manager';
import {
  checkGunicornArgs,
  checkRemotePython,
  checkSharedDir,
  checkWsgiApp,
  parseRestartCommands,
  type Dependencies,
  type GunicornSpec,
} from './release-dir-plan';

/** `ssh-runtime: release-dir`'s own inputs, and what it learns from the checked-out project. */
export interface ReleaseDirInputs {
  /** The git work tree the release is archived from. */
  repoRoot: string;
  /** manage.py's folder relative to repoRoot, '' for the root. */
  projectDir: string;
  python: string;
  gunicorn: GunicornSpec;
  sharedDirs: string[];
  /** Run on each host once the release serves (argv each, no shell). */
  restartCommands: string[][];
  dependencies: Dependencies;
}

/** The nearest folder from `start` up holding `.git` (a folder, or a file for worktrees). */
export function gitRoot(start: string): string {
  for (let dir = path.resolve(start); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, '.git'))) return dir;
    if (path.dirname(dir) === dir) {
      throw new UserError(
        `\`ssh-runtime: release-dir\` deploys the checked-out commit, but ${start} is not in a git work tree: run actions/checkout first.`,
      );
    }
  }
}

/**
 * The production requirements of a project folder: requirements.txt, else requirements/
 * production, prod or base (never the dev/test files setup-django adds).
 */
export function productionRequirements(dir: string): string | undefined {
  return ['requirements.txt', 'requirements/production.txt', 'requirements/prod.txt', 'requirements/base.txt']
    .map((f) => path.join(dir, f))
    .find((f) => fs.existsSync(f));
}

export function dependenciesOf(projectAbs: string, root: string): Dependencies {
  const dirs: string[] = [];
  for (let d = projectAbs; ; d = path.dirname(d)) {
    dirs.push(d);
    if (d === root || path.dirname(d) === d) break;
  }
  const project = detectProject(dirs, 'auto', [], root);
  const rel = (f: string): string => path.relative(root, f).split(path.sep).join('/');
  switch (project.kind) {
    case 'requirements': {
      const file = productionRequirements(project.dir);
      if (!file) {
        throw new UserError(
          `\`ssh-runtime: release-dir\` installs requirements.txt (or requirements/production.txt, prod.txt, base.txt); ${rel(project.dir) || '.'} has only ${project.requirements.map(rel).join(', ')}.`,
        );
      }
      return { kind: 'requirements', files: [rel(file)] };
    }
    case 'uv':
      return { kind: 'uv', dir: rel(project.dir) };
    case 'pyproject': {
      const file = path.join(project.dir, 'pyproject.toml');
      return { kind: 'pyproject', requirements: pyprojectRequirements(fs.readFileSync(file, 'utf8'), [], [], rel(file)) };
    }
    case 'poetry':
    case 'pipenv':
      throw new UserError(
        `\`ssh-runtime: release-dir\` installs requirements.txt, uv.lock (uv on the host) or pyproject.toml dependencies, not ${project.kind}: ` +
          `export a requirements.txt (${project.kind === 'poetry' ? 'poetry export' : 'pipenv requirements'}) and commit it.`,
      );
  }
}

export function getReleaseDirInputs(workspace = process.env.GITHUB_WORKSPACE ?? process.cwd()): ReleaseDirInputs {
  const python = checkRemotePython(getString('remote-python') || 'python3');
  const gunicornArgs = checkGunicornArgs(getArgs('gunicorn-args'));
  const sharedDirs = getList('shared-dirs').map(checkSharedDir);
  const restartCommands = parseRestartCommands(getRaw('restart-commands'));
  const repoRoot = gitRoot(workspace);
  const managePy = findManagePy(workspace, getString('working-directory') || undefined);
  const projectAbs = path.dirname(managePy);
  const projectDir = path.relative(repoRoot, projectAbs).split(path.sep).join('/');
  if (projectDir.startsWith('..')) throw new UserError(`\`working-directory\` (${projectAbs}) is outside the git work tree ${repoRoot}.`);
  const settingsModule = settingsModuleFromManagePy(fs.readFileSync(managePy, 'utf8'));
  let wsgiApp = getString('wsgi-app');
  if (wsgiApp) checkWsgiApp(wsgiApp);
  else {
    const pkg = settingsModule?.split('.')[0];
    if (!pkg || !fs.existsSync(path.join(projectAbs, pkg, 'wsgi.py'))) {
      throw new UserError(
        `Cannot tell the project's WSGI module (no ${pkg ? `${pkg}/wsgi.py` : 'DJANGO_SETTINGS_MODULE default in manage.py'}): set \`wsgi-app\` (e.g. config.wsgi).`,
      );
    }
    wsgiApp = `${pkg}.wsgi`;
  }
  return {
    repoRoot,
    projectDir,
    python,
    gunicorn: { wsgiApp, args: gunicornArgs, settingsModule },
    sharedDirs,
    restartCommands,
    dependencies: dependenciesOf(projectAbs, repoRoot),
  };
}
