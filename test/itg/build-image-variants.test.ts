/**
 * build-image on the fixture variants, each from its generated Dockerfile: uv (gunicorn from an
 * extra), a project in a subfolder, poetry and pipenv. Each is smoke-tested, pushed, removed,
 * pulled back by digest and run.
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
  return r.stdout.trim();
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

/**
 * The fixtures' only views read tables that no migration created in the image: give the scratch
 * copy a health view, as a project would have (the fixture itself is not touched).
 */
function addHealthz(urlsPy: string): void {
  fs.appendFileSync(
    urlsPy,
    '\nfrom django.http import HttpResponse  # noqa: E402\n\nurlpatterns.append(path("healthz", lambda request: HttpResponse("ok")))\n',
  );
}

const VARIANTS = (process.env.SLIPWAY_BUILD_IMAGE_VARIANTS ?? 'uv-project,subfolder,poetry-project,pipenv-project').split(',');

describe.each(VARIANTS)('build-image on %s', (fixture) => {
  it('generates, builds, smoke-tests, pushes; pulls back by digest and serves', { timeout: 1_800_000 }, async () => {
    const registry = env.SLIPWAY_TEST_REGISTRY ?? '127.0.0.1:5000';
    const workspace = copyProject(`test/fixtures/${fixture}`);
    const projectDir = fixture === 'subfolder' ? path.join(workspace, 'backend') : workspace;
    addHealthz(path.join(projectDir, 'mysite', 'urls.py'));
    const name = `${registry}/slipway-itg/${fixture}`;
    const job = new Job({ workspace, env, toolCache });
    const step = await job.run('build-image', { image: name, tags: 'itg', push: 'true', 'python-version': '3.11' }, LONG);
    if (step.exitCode !== 0) console.log(step.log.slice(-4000));
    expect(step.exitCode).toBe(0);
    cleanup.push(() => dockerCli(['rmi', '--force', ...(step.outputs.tags ?? '').split('\n').filter(Boolean)], true));

    const dockerfile = fs.readFileSync(path.join(workspace, 'Dockerfile'), 'utf8');
    const expected: Record<string, RegExp> = {
      'uv-project': /COPY pyproject.toml uv.lock \.\/[\s\S]*uv sync --frozen --no-dev --no-install-project --no-editable --extra prod/,
      subfolder:
        /COPY requirements.txt \.\/[\s\S]*WORKDIR \/app\/backend\n[\s\S]*COPY \. \/app\/\n(#[^\n]*\n)*RUN out=\$\([^\n]* python manage.py collectstatic /,
      'poetry-project': /COPY pyproject.toml poetry.lock \.\/[\s\S]*poetry export --only main/,
      'pipenv-project': /COPY Pipfile Pipfile.lock \.\/[\s\S]*pipenv requirements/,
    };
    expect(dockerfile).toMatch(expected[fixture]!);
    expect(dockerfile).toContain('CMD ["gunicorn","mysite.wsgi:application"');
    if (fixture === 'poetry-project' || fixture === 'pipenv-project') {
      expect(step.annotations.some((a) => a.level === 'warning' && a.message.includes('gunicorn is not among'))).toBe(true);
    }
    expect(step.outputs.image).toBe(`${name}@${step.outputs.digest}`);

    // Pull back by digest into an engine without it, and serve.
    dockerCli(['rmi', '--force', step.outputs['image-id']!]);
    dockerCli(['pull', step.outputs.image!]);
    const port = 19000 + Math.floor(Math.random() * 1000);
    const container = `slipway-itg-${fixture}-${port}`;
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
      'DJANGO_SECRET_KEY=itg',
      step.outputs.image!,
    ]);
    let status = 0;
    for (let i = 0; i < 60 && status !== 200; i++) {
      try {
        status = (await fetch(`http://127.0.0.1:${port}/healthz`)).status;
      } catch {
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    expect(status).toBe(200);
    expect(dockerCli(['exec', container, 'id', '-un'])).toBe('app');
    await job.post();
  });
});
