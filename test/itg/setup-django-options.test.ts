import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
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
// uv's download cache shared by these tests (jobs get a fresh HOME each).
const ENV = { UV_PYTHON_DOWNLOADS: 'never', UV_CACHE_DIR: path.join(TEST_CACHE, 'setup-django-uv-cache') };

function newJob(workspace: string): Job {
  fs.mkdirSync(TOOL_CACHE, { recursive: true });
  return track(new Job({ workspace, env: ENV, toolCache: TOOL_CACHE }));
}

describe('setup-django options', () => {
  it('env-file: exported, secrets masked (secret-keys and names), SECRET_KEY from the file kept', async () => {
    const ws = project('example');
    fs.writeFileSync(
      path.join(ws, 'ci.env'),
      [
        'DJANGO_DEBUG=true',
        'DATABASE_URL=postgres://shop:pg-pass-123@127.0.0.1:5432/slipway_setup_django',
        'STRIPE_API_TOKEN="tok_live_abcdef"',
        'PLAIN_ID=visible-value',
        'LICENSE_CODE=lic-9f8e7d',
        'SECRET_KEY=from-the-env-file-0123456789',
      ].join('\n'),
    );
    const job = newJob(ws);
    const step = await job.run('setup-django', { cache: 'false', 'env-file': 'ci.env', 'secret-keys': 'LICENSE_CODE', check: 'true' });
    expect(step.failure).toBeUndefined();
    expect(job.env).toMatchObject({
      DJANGO_DEBUG: 'true',
      PLAIN_ID: 'visible-value',
      LICENSE_CODE: 'lic-9f8e7d',
      SECRET_KEY: 'from-the-env-file-0123456789',
      DATABASE_URL: 'postgres://shop:pg-pass-123@127.0.0.1:5432/slipway_setup_django',
    });
    for (const secret of ['pg-pass-123', 'tok_live_abcdef', 'lic-9f8e7d', 'from-the-env-file-0123456789'])
      expect(step.masks).toContain(secret);
    expect(step.masks).not.toContain('visible-value');
    // Django read the env-file's settings (postgres engine from DATABASE_URL) during inspection.
    expect(step.log).toMatch(/\[command\]\S+python \S+manage\.py check/);
    expect(step.log).toContain('System check identified no issues');
  });

  it('check: deploy turns each warning into an annotation; check errors fail the step naming the first', async () => {
    const ws = project('example');
    fs.writeFileSync(path.join(ws, 'ci.env'), 'DJANGO_SECURE_HSTS_SECONDS=0\nDJANGO_SECURE_SSL_REDIRECT=false\n');
    const job = newJob(ws);
    const step = await job.run('setup-django', { cache: 'false', 'env-file': 'ci.env', check: 'deploy' });
    expect(step.failure).toBeUndefined();
    const warnings = step.annotations.filter((a) => a.level === 'warning');
    const titles = warnings.map((a) => a.title);
    expect(warnings[0]).toMatchObject({ file: 'shop/settings.py' });
    expect(titles).toEqual(expect.arrayContaining(['manage.py check security.W004', 'manage.py check security.W008']));
    // The throwaway SECRET_KEY is long and random enough for Django's own deploy check.
    expect(titles).not.toContain('manage.py check security.W009');

    const broken = newJob(project('test/fixtures/setup-django-check-error'));
    const failed = await broken.run('setup-django', { cache: 'false', check: 'true' });
    expect(failed.exitCode).toBe(1);
    expect(failed.failure).toMatch(/^setup-django failed: `manage\.py check` found 1 error\(s\); first: fields\.E130 /);
    expect(failed.annotations).toContainEqual(
      expect.objectContaining({ level: 'error', title: 'manage.py check fields.E130', file: 'broken/models.py', line: 5 }),
    );
    expect(broken.env.VIRTUAL_ENV).toBeUndefined();
    expect(broken.path).toEqual([]);
  });

  it('wait-for: real PostgreSQL, MariaDB and Redis by protocol, and an HTTP server that comes up late', async () => {
    const server = http.createServer((_req, res) => res.writeHead(503).end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    // 503 until 3 s in: the step must keep waiting, then pass.
    const ready = setTimeout(() => server.removeAllListeners('request').on('request', (_q, res) => res.writeHead(200).end('ok')), 3000);
    try {
      const job = newJob(project('example'));
      const step = await job.run('setup-django', {
        cache: 'false',
        'wait-for': `postgres://postgres@127.0.0.1:5432/postgres\nmysql://root@127.0.0.1:3306\nredis://127.0.0.1:6379\nhttp://127.0.0.1:${port}/healthz`,
        'wait-timeout': '60s',
      });
      expect(step.failure).toBeUndefined();
      expect(step.summary).toContain('Waiting for services');
    } finally {
      clearTimeout(ready);
      server.close();
    }
  });

  it('settings that fail to import: Django’s own first error line, nothing left active', async () => {
    const ws = project('example');
    fs.writeFileSync(path.join(ws, 'ci.env'), 'DJANGO_DEBUG=maybe\n');
    const job = newJob(ws);
    const step = await job.run('setup-django', { cache: 'false', 'env-file': 'ci.env' });
    expect(step.exitCode).toBe(1);
    expect(step.failure).toBe(
      "setup-django failed: Settings module `shop.settings` failed to load: django.core.exceptions.ImproperlyConfigured: DJANGO_DEBUG='maybe' is not a boolean; use one of: true, false, 1, 0, yes, no.",
    );
    expect(job.env).toEqual({});
    expect(job.path).toEqual([]);
    expect(fs.existsSync(path.join(ws, '.venv'))).toBe(false);
    expect(step.outputs).toEqual({});
  });

  it('a venv from the run is usable by the project tests (example app, python on PATH)', async () => {
    const job = newJob(project('example'));
    const step = await job.run('setup-django', { cache: 'false' });
    expect(step.failure).toBeUndefined();
    const env = { ...process.env, ...job.env, PATH: [...[...job.path].reverse(), process.env.PATH].join(path.delimiter) };
    const out = execFileSync('python', ['-c', 'import sys; print(sys.prefix)'], { env }).toString().trim();
    expect(out).toBe(job.env.VIRTUAL_ENV);
  });
});
