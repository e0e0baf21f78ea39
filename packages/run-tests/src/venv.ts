import * as fs from 'node:fs';
import * as path from 'node:path';
import * as core from '@actions/core';
import { execTool } from '@slipway/toolkit/exec';
import { which } from '@slipway/toolkit/package-manager';
import { DJANGO_RUNNER_MODULE, DJANGO_RUNNER_SOURCE } from './python/django-runner';
import { PYTEST_PLUGIN_MODULE, PYTEST_PLUGIN_SOURCE } from './python/pytest-plugin';

/** Writes Slipway's Django runner class and pytest plugin into `dir` (to go on PYTHONPATH). */
export function writeSupportModules(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${DJANGO_RUNNER_MODULE}.py`), DJANGO_RUNNER_SOURCE);
  fs.writeFileSync(path.join(dir, `${PYTEST_PLUGIN_MODULE}.py`), PYTEST_PLUGIN_SOURCE);
}

/** Which of these distributions (as pip names them) are installed in the venv. */
export async function installed(python: string, dists: string[], env: Record<string, string>): Promise<Set<string>> {
  const script = [
    'import importlib.metadata as md, sys',
    'for d in sys.argv[1:]:',
    '    try:',
    '        md.distribution(d); print(d)',
    '    except md.PackageNotFoundError:',
    '        pass',
  ].join('\n');
  const { stdout } = await execTool(python, ['-c', script, ...dists], { env, silent: true, quiet: true });
  return new Set(
    stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean),
  );
}

/**
 * Installs packages the requested features need (pytest-xdist, pytest-cov, coverage, tblib,
 * ruff) into the project's venv, with pip when the venv has it, else uv (venvs uv made have no
 * pip). Logged, so a user sees what was added and can pin it in their own requirements.
 */
export async function installIntoVenv(python: string, packages: string[], env: Record<string, string>): Promise<void> {
  if (!packages.length) return;
  core.info(`Installing into the project's environment: ${packages.join(' ')}`);
  let hasPip = (await installed(python, ['pip'], env)).has('pip');
  if (!hasPip && !which('uv')) {
    // A venv made by uv has no pip, and uv is not always on PATH (setup-django may have
    // restored the venv from its cache without fetching uv): bootstrap pip from the stdlib.
    await execTool(python, ['-m', 'ensurepip', '--default-pip'], { env, silent: true, label: 'Bootstrapping pip' });
    hasPip = true;
  }
  if (hasPip) {
    await execTool(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', ...packages], {
      env,
      label: 'Installing test tools',
    });
  } else {
    await execTool('uv', ['pip', 'install', '--python', python, ...packages], { env, label: 'Installing test tools' });
  }
}
