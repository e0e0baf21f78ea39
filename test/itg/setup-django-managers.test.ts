import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copyProject, Job } from '../harness/job';
import { TEST_CACHE } from '../harness/python-env';

const TOOL_CACHE = path.join(TEST_CACHE, 'setup-django-toolcache');

// Scratch checkouts and job folders hold venvs (tens of MB each): removed after the file.
const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});
function project(source: string): string {
  const dir = copyProject(source);
  scratch.push(dir);
  return dir;
}
function track(job: Job): Job {
  scratch.push(path.dirname(job.home));
  return job;
}

async function setup(
  fixture: string,
  inputs: Record<string, string> = {},
): Promise<{ job: Job; outputs: Record<string, string>; log: string }> {
  fs.mkdirSync(TOOL_CACHE, { recursive: true });
  const job = track(new Job({ workspace: project(fixture), env: { UV_PYTHON_DOWNLOADS: 'never' }, toolCache: TOOL_CACHE }));
  const step = await job.run('setup-django', { cache: 'false', ...inputs });
  expect(step.failure).toBeUndefined();
  expect(step.exitCode).toBe(0);
  return { job, outputs: step.outputs, log: step.log };
}

/** Runs the project's own tests with the venv a later step would get (PATH from the job). */
function manageTest(job: Job, outputs: Record<string, string>): string {
  const env = { ...process.env, ...job.env, PATH: [...[...job.path].reverse(), process.env.PATH].join(path.delimiter) };
  const result = spawnSync('python', ['manage.py', 'test'], { cwd: outputs['project-dir'], env, encoding: 'utf8' });
  expect(result.status, result.stderr).toBe(0);
  return result.stdout + result.stderr;
}

function installed(outputs: Record<string, string>): string[] {
  const out = execFileSync(outputs['python-path']!, [
    '-c',
    'import importlib.metadata as m; print("\\n".join(sorted(d.metadata["Name"].lower() for d in m.distributions())))',
  ]);
  return out.toString().trim().split('\n');
}

describe('setup-django with each package manager', () => {
  it('uv.lock: uv sync into our venv, extras and groups', async () => {
    const { job, outputs, log } = await setup('test/fixtures/uv-project', { extras: 'prod', groups: 'dev' });
    expect(outputs['package-manager']).toBe('uv');
    expect(outputs['python-version']).toMatch(/^3\.12\./);
    expect(log).toMatch(/uv sync --locked --python \S+ --extra prod --group dev/);
    expect(installed(outputs)).toEqual(expect.arrayContaining(['django', 'gunicorn', 'tblib']));
    manageTest(job, outputs);
  });

  it('poetry.lock: poetry install --no-root into our venv, with a group', async () => {
    const { job, outputs, log } = await setup('test/fixtures/poetry-project', { groups: 'dev' });
    expect(outputs['package-manager']).toBe('poetry');
    // requires-python >=3.11: the newest matching interpreter on this machine.
    expect(outputs['python-version']).toMatch(/^3\.1[1-9]\./);
    expect(log).toContain('install --no-root --no-interaction --with dev');
    expect(installed(outputs)).toEqual(expect.arrayContaining(['django', 'tblib']));
    expect(fs.existsSync(path.join(job.workspace, '.venv', 'pyvenv.cfg'))).toBe(true);
    manageTest(job, outputs);
  });

  it('Pipfile.lock: pipenv requirements, installed with pip; python_version from the Pipfile', async () => {
    const { job, outputs } = await setup('test/fixtures/pipenv-project', { installer: 'pip', groups: 'dev' });
    expect(outputs['package-manager']).toBe('pipenv');
    expect(outputs['python-version']).toMatch(/^3\.11\./);
    const names = installed(outputs);
    expect(names).toEqual(expect.arrayContaining(['django', 'tblib', 'pip']));
    manageTest(job, outputs);
  });

  it('pyproject.toml only: PEP 621 dependencies with uv', async () => {
    const { job, outputs } = await setup('test/fixtures/pyproject-only');
    expect(outputs['package-manager']).toBe('uv');
    expect(installed(outputs)).toContain('django');
    // Only the dependencies: the project itself is not installed (its code is in the workspace).
    expect(installed(outputs)).not.toContain('slipway-pyproject-fixture');
    manageTest(job, outputs);
  });

  it('subfolder: manage.py in backend/, requirements.txt and runtime.txt at the root, pip installer', async () => {
    const { job, outputs } = await setup('test/fixtures/subfolder', { installer: 'pip' });
    expect(outputs['project-dir']).toBe(path.join(job.workspace, 'backend'));
    expect(outputs['python-version']).toBe('3.11.7');
    expect(outputs['venv-path']).toBe(path.join(job.workspace, '.venv'));
    expect(outputs['package-manager']).toBe('pip');
    expect(manageTest(job, outputs)).toMatch(/Ran 3 tests[\s\S]*OK/);
  });
});
