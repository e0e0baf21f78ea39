/**
 * Real Python environments for integration tests: pyenv interpreters and virtualenvs with a
 * project's requirements, built once per content hash and reused across tests and runs
 * (a test of run-tests or migrate should not pay for an install that setup-django's own
 * tests already prove).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Job } from './job';

const PYENV_ROOT = process.env.PYENV_ROOT ?? path.join(os.homedir(), '.pyenv');
export const TEST_CACHE = process.env.SLIPWAY_TEST_CACHE ?? '/var/tmp/slipway-test-cache';

/** The pyenv interpreter for `minor` (e.g. '3.12'). */
export function pyenvPython(minor = '3.12'): string {
  const versions = fs.existsSync(path.join(PYENV_ROOT, 'versions')) ? fs.readdirSync(path.join(PYENV_ROOT, 'versions')) : [];
  const match = versions.filter((v) => v === minor || v.startsWith(`${minor}.`)).sort();
  const version = match.at(-1);
  if (!version) throw new Error(`No pyenv Python ${minor} under ${PYENV_ROOT}/versions (have: ${versions.join(', ')})`);
  return path.join(PYENV_ROOT, 'versions', version, 'bin', 'python');
}

/** A virtualenv with these requirements files installed, cached by their content. */
export function preparedVenv(requirements: string[], python = pyenvPython('3.12')): string {
  const hash = createHash('sha256').update(python);
  for (const file of requirements) hash.update(fs.readFileSync(file));
  const venv = path.join(TEST_CACHE, 'venvs', hash.digest('hex').slice(0, 16));
  if (fs.existsSync(path.join(venv, '.complete'))) return venv;
  const lock = `${venv}.lock`;
  fs.mkdirSync(path.dirname(venv), { recursive: true });
  for (let i = 0; ; i++) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      if (fs.existsSync(path.join(venv, '.complete'))) return venv;
      if (i > 600) throw new Error(`timed out waiting for ${lock}`);
      execFileSync('sleep', ['1']);
    }
  }
  try {
    fs.rmSync(venv, { recursive: true, force: true });
    execFileSync(python, ['-m', 'venv', venv], { stdio: 'inherit' });
    const pip = path.join(venv, 'bin', 'pip');
    const args = ['install', '-q', '--disable-pip-version-check'];
    for (const file of requirements) args.push('-r', file);
    execFileSync(pip, args, { stdio: 'inherit', env: { ...process.env, PIP_CACHE_DIR: path.join(TEST_CACHE, 'pip') } });
    fs.writeFileSync(path.join(venv, '.complete'), '');
  } finally {
    fs.rmdirSync(lock);
  }
  return venv;
}

/**
 * Puts a job in the state setup-django leaves behind (venv on PATH, VIRTUAL_ENV,
 * DJANGO_SETTINGS_MODULE, the shared state file), for tests of the actions that follow it.
 * The chain tests run the real setup-django step instead.
 */
export function seedSetupDjango(
  job: Job,
  opts: { venv: string; projectDir: string; settingsModule: string; djangoVersion?: string },
): void {
  const python = path.join(opts.venv, 'bin', 'python');
  const pythonVersion = execFileSync(python, ['-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])']).toString().trim();
  const stateFile = path.join(job.runnerTemp, 'slipway', 'state.json');
  fs.mkdirSync(path.dirname(stateFile), { recursive: true });
  fs.writeFileSync(
    stateFile,
    JSON.stringify({
      version: 1,
      setupDjango: {
        pythonPath: python,
        pythonVersion,
        venvPath: opts.venv,
        projectDir: opts.projectDir,
        managePy: path.join(opts.projectDir, 'manage.py'),
        settingsModule: opts.settingsModule,
        djangoVersion: opts.djangoVersion ?? '',
        packageManager: 'pip',
      },
    }),
  );
  job.path.push(path.join(opts.venv, 'bin'));
  Object.assign(job.env, {
    VIRTUAL_ENV: opts.venv,
    DJANGO_SETTINGS_MODULE: opts.settingsModule,
    SLIPWAY_STATE_FILE: stateFile,
  });
}
