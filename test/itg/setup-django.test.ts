import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copyProject, Job } from '../harness/job';
import { TEST_CACHE } from '../harness/python-env';

// One tool cache for these tests (as a self-hosted runner keeps it): uv, poetry and pipenv are
// fetched from PyPI once.
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
const ENV = { UV_PYTHON_DOWNLOADS: 'never' };

function newJob(workspace: string): Job {
  fs.mkdirSync(TOOL_CACHE, { recursive: true });
  return track(new Job({ workspace, env: ENV, toolCache: TOOL_CACHE }));
}

function py(job: Job, code: string): string {
  const python = path.join(job.env.VIRTUAL_ENV!, 'bin', 'python');
  return execFileSync(python, ['-c', code], { cwd: job.workspace, env: { ...process.env, ...job.env } })
    .toString()
    .trim();
}

describe('setup-django on the example app (requirements.txt)', () => {
  it('resolves Python from .python-version, installs with uv, and a later step sees the venv', async () => {
    const ws = project('example');
    // A fresh tool cache: uv is fetched as a wheel from the index (the host's CA bundle passed on
    // as a runner behind a TLS-inspecting proxy would have it).
    const ca = process.env.NODE_EXTRA_CA_CERTS;
    const job = track(new Job({ workspace: ws, env: { ...ENV, ...(ca ? { NODE_EXTRA_CA_CERTS: ca } : {}) } }));
    const step = await job.run('setup-django', { cache: 'false' });
    expect(step.log).toMatch(/Fetched uv-0\.13\.9-py3-none-\S+\.whl \(sha256 [0-9a-f]{12}…\)/);
    expect(fs.existsSync(path.join(job.toolCache, 'slipway', 'uv', '0.13.9', 'bin', 'uv'))).toBe(true);
    expect(step.failure).toBeUndefined();
    expect(step.exitCode).toBe(0);
    const venv = path.join(ws, '.venv');
    expect(step.outputs['python-version']).toMatch(/^3\.12\.\d+$/);
    expect(step.outputs['django-version']).toMatch(/^5\.2\.\d+$/);
    expect(step.outputs).toMatchObject({
      'python-path': path.join(venv, 'bin', 'python'),
      'venv-path': venv,
      'settings-module': 'shop.settings',
      'manage-py': path.join(ws, 'manage.py'),
      'project-dir': ws,
      'package-manager': 'uv',
      'cache-hit': 'false',
    });
    expect(step.outputs['cache-key']).toMatch(/^slipway-venv-v1-linux-x64-py3\.12\.\d+-requirements-uv-[0-9a-f]{32}$/);
    // What a later step of the job gets: the venv first on PATH, VIRTUAL_ENV, the settings.
    expect(job.path).toContain(path.join(venv, 'bin'));
    expect(job.env).toMatchObject({ VIRTUAL_ENV: venv, DJANGO_SETTINGS_MODULE: 'shop.settings' });
    expect(job.env.SECRET_KEY).toMatch(/^[\w-]{40,}$/);
    expect(step.masks).toContain(job.env.SECRET_KEY);
    expect(step.shownLog).not.toContain(job.env.SECRET_KEY);
    expect(py(job, 'import django, sys; print(django.get_version(), sys.prefix)')).toBe(`${step.outputs['django-version']} ${venv}`);
    expect(py(job, 'import gunicorn, whitenoise, psycopg, pymysql; print("ok")')).toBe('ok');
    const state = JSON.parse(fs.readFileSync(job.env.SLIPWAY_STATE_FILE!, 'utf8')) as { setupDjango: Record<string, string> };
    expect(state.setupDjango).toEqual({
      pythonPath: path.join(venv, 'bin', 'python'),
      pythonVersion: step.outputs['python-version'],
      venvPath: venv,
      projectDir: ws,
      managePy: path.join(ws, 'manage.py'),
      settingsModule: 'shop.settings',
      djangoVersion: step.outputs['django-version'],
      packageManager: 'uv',
    });
    expect(step.summary).toContain('Installing dependencies');
    expect(step.summary).toContain('Resolving Python');
  });

  it('inputs over project files: python-version, working-directory, requirements', async () => {
    const ws = project('test/fixtures/subfolder');
    const job = newJob(ws);
    const step = await job.run('setup-django', {
      cache: 'false',
      'python-version': '3.12',
      'working-directory': 'backend',
      requirements: 'requirements.txt',
    });
    expect(step.failure).toBeUndefined();
    expect(step.outputs['python-version']).toMatch(/^3\.12\./);
    expect(step.outputs['manage-py']).toBe(path.join(ws, 'backend', 'manage.py'));
    expect(py(job, 'import sys; print("%d.%d" % sys.version_info[:2])')).toBe('3.12');
  });
});
