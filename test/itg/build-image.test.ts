/**
 * build-image against a real Docker engine (classic builder) and a real registry on loopback:
 * the example app from the generated Dockerfile, pushed, removed, pulled back by digest and run.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyProject, Job } from '../harness/job';
import { TEST_CACHE } from '../harness/python-env';
import { ensureServices } from '../harness/services';

// The classic builder's secret endpoint is kept in the tool cache: share it so the dependency
// layer stays cached across tests and runs, as on a runner.
const toolCache = `${TEST_CACHE}/build-image-toolcache`;
const LONG = { timeoutMs: 1_500_000 };

let env: Record<string, string> = {};
const cleanup: (() => void)[] = [];

function dockerCli(args: string[], allowFailure = false): string {
  const r = spawnSync('docker', args, { env: { ...process.env, ...env }, encoding: 'utf8' });
  if (r.status !== 0 && !allowFailure) throw new Error(`docker ${args.join(' ')}: ${r.stderr}`);
  return `${r.stdout}`.trim();
}

async function registryTags(registry: string, repo: string): Promise<string[]> {
  const res = await fetch(`http://${registry}/v2/${repo}/tags/list`);
  if (res.status === 404) return [];
  const body = (await res.json()) as { tags?: string[] | null };
  return body.tags ?? [];
}

beforeAll(() => {
  // SLIPWAY_TEST_SERVICES_UP=1: the services already run (started by scripts/test-env by hand).
  env = process.env.SLIPWAY_TEST_SERVICES_UP
    ? { DOCKER_HOST: 'unix:///var/run/docker.sock', DOCKER_BUILDKIT: '0', SLIPWAY_TEST_REGISTRY: '127.0.0.1:5000' }
    : ensureServices(['docker', 'base-image', 'registry']);
});

afterAll(() => {
  for (const fn of cleanup.reverse()) fn();
});

const SMOKE_ENV = 'DJANGO_SECURE_SSL_REDIRECT=false\nDATABASE_URL=sqlite:////tmp/smoke.sqlite3';

describe('build-image on the example app', () => {
  it('generates a Dockerfile, builds, smoke-tests, pushes; the digest pulls back and serves /healthz', { timeout: 1_800_000 }, async () => {
    const registry = env.SLIPWAY_TEST_REGISTRY ?? '127.0.0.1:5000';
    const workspace = copyProject('example');
    const name = `${registry}/slipway-itg/shop`;
    const job = new Job({ workspace, env, toolCache });
    const step = await job.run(
      'build-image',
      {
        image: name,
        tags: 'itg-example',
        push: 'true',
        'python-version': '3.11',
        'smoke-test-env': SMOKE_ENV,
      },
      LONG,
    );
    if (step.exitCode !== 0) console.log(step.log.slice(-5000));
    expect(step.exitCode).toBe(0);
    cleanup.push(() => dockerCli(['rmi', '--force', ...step.outputs.tags!.split('\n')], true));

    // The generated files are in the workspace for the team to commit.
    const dockerfile = fs.readFileSync(path.join(workspace, 'Dockerfile'), 'utf8');
    expect(step.outputs.dockerfile).toBe('Dockerfile');
    expect(dockerfile).toMatch(/^FROM python:\$\{PYTHON_VERSION\}-slim AS builder$/m);
    expect(dockerfile).toContain('ARG PYTHON_VERSION=3.11');
    expect(dockerfile).toMatch(/COPY requirements.txt \.\/\nRUN --mount=type=secret,id=index-env/);
    expect(dockerfile).toContain('CMD ["gunicorn","shop.wsgi:application"');
    expect(fs.readFileSync(path.join(workspace, '.dockerignore'), 'utf8')).toMatch(/^\.git$/m);

    // Outputs: immutable reference, digest, tags (automatic + custom), id.
    expect(step.outputs.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(step.outputs.image).toBe(`${name}@${step.outputs.digest}`);
    expect(step.outputs.tags!.split('\n').sort()).toEqual(
      [`${name}:itg-example`, `${name}:latest`, `${name}:main`, `${name}:sha-0123456`].sort(),
    );
    expect(step.outputs['image-id']).toMatch(/^sha256:/);
    expect(step.summary).toContain(step.outputs.digest);
    expect(step.summary).toMatch(/Layers reused/);
    const state = JSON.parse(fs.readFileSync(step.exportedEnv.SLIPWAY_STATE_FILE!, 'utf8')) as { buildImage: { digest: string } };
    expect(state.buildImage.digest).toBe(step.outputs.digest);
    expect(await registryTags(registry, 'slipway-itg/shop')).toEqual(
      expect.arrayContaining(['itg-example', 'main', 'latest', 'sha-0123456']),
    );

    // The image: non-root, OCI labels, healthcheck, no .git / secrets / index settings.
    const [inspect] = JSON.parse(dockerCli(['image', 'inspect', step.outputs['image-id']!])) as {
      Config: { User: string; Labels: Record<string, string>; Healthcheck?: { Test: string[] }; Env: string[] };
    }[];
    if (!inspect) throw new Error('no image');
    expect(inspect.Config.User).toBe('app');
    expect(inspect.Config.Labels['org.opencontainers.image.revision']).toBe('0123456789abcdef0123456789abcdef01234567');
    expect(inspect.Config.Labels['org.opencontainers.image.source']).toBe('https://github.com/acme/shop');
    expect(inspect.Config.Healthcheck?.Test[0]).toBe('CMD');
    expect(inspect.Config.Env.join('\n')).not.toMatch(/SECRET_KEY|PIP_CERT|INDEX_URL/);
    const history = dockerCli(['history', '--no-trunc', '--format', '{{.CreatedBy}}', step.outputs['image-id']!]);
    expect(history).not.toMatch(/index-env|slipway-build|BEGIN CERTIFICATE/);
    const listing = dockerCli([
      'run',
      '--rm',
      '--entrypoint',
      'sh',
      step.outputs['image-id']!,
      '-c',
      'ls -a /app; ls /run/secrets 2>&1; true',
    ]);
    expect(listing).not.toMatch(/^\.git$/m);
    expect(listing).toContain('staticfiles');
    expect(listing).toMatch(/No such file or directory/);
    // The venv holds the dependencies only: no pip/setuptools, no translation sources; the
    // compiled catalogs still translate, and the base image's pip lists the venv (PIP_PYTHON).
    const venv = dockerCli([
      'run',
      '--rm',
      '--entrypoint',
      'sh',
      step.outputs['image-id']!,
      '-c',
      [
        'ls /opt/venv/lib/python3*/site-packages /opt/venv/bin',
        'echo "po: $(find /opt/venv -name "*.po" | wc -l) mo: $(find /opt/venv -name "*.mo" | wc -l)"',
        `python -c "import django; from django.conf import settings; settings.configure(USE_I18N=True); django.setup(); from django.utils import translation; translation.activate('fr'); print('fr:', translation.gettext('Yes'))"`,
        'pip list --format=freeze 2>/dev/null',
      ].join('; '),
    ]);
    expect(venv).toMatch(/^django$/m);
    expect(venv).not.toMatch(/^(pip|pip3|setuptools|pkg_resources|_distutils_hack)$/m);
    expect(venv).toMatch(/^po: 0 mo: [1-9]\d*$/m);
    expect(venv).toMatch(/^fr: Oui$/m);
    expect(venv).toMatch(/^Django==5\.2\.\d+$/m);
    expect(venv).not.toMatch(/^pip==/m);

    // Pull back by digest into an engine that no longer has it, run it, GET /healthz.
    dockerCli(['rmi', '--force', step.outputs['image-id']!]);
    expect(spawnSync('docker', ['image', 'inspect', step.outputs.image!], { env: { ...process.env, ...env } }).status).not.toBe(0);
    dockerCli(['pull', step.outputs.image!]);
    const port = 18000 + Math.floor(Math.random() * 1000);
    const container = `slipway-itg-shop-${port}`;
    cleanup.push(() => dockerCli(['rm', '--force', container], true));
    dockerCli([
      'run',
      '--detach',
      '--name',
      container,
      '--network',
      'host',
      '--env',
      `PORT=${port}`,
      '--env',
      'DJANGO_SECRET_KEY=itg-only-key',
      '--env',
      'DJANGO_SECURE_SSL_REDIRECT=false',
      '--env',
      'DATABASE_URL=sqlite:////tmp/db.sqlite3',
      step.outputs.image!,
    ]);
    let body = '';
    for (let i = 0; i < 60 && !body; i++) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        if (res.ok) body = await res.text();
      } catch {
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    expect(JSON.parse(body)).toEqual({ status: 'ok', database: 'ok' });
    const post = await job.post();
    expect(post[0]!.exitCode).toBe(0);
  });
});
