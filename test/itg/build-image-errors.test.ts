/**
 * build-image's bad inputs and failing stages against the real engine and registries: each
 * fails with a clear message, and nothing reaches the registry (checked through its HTTP API).
 * Login and logout against the htpasswd registry on 127.0.0.1:5001.
 */
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyWorkspace, Job } from '../harness/job';
import { TEST_CACHE } from '../harness/python-env';
import { ensureServices } from '../harness/services';

// The classic builder's secret endpoint is kept in the tool cache: share it so the dependency
// layer stays cached across tests and runs, as on a runner.
const toolCache = `${TEST_CACHE}/build-image-toolcache`;
const LONG = { timeoutMs: 1_500_000 };

let env: Record<string, string> = {};
let registry = '';
let authRegistry = '';
let user = '';
let password = '';
const images: string[] = [];

beforeAll(() => {
  // SLIPWAY_TEST_SERVICES_UP=1: the services already run (started by scripts/test-env by hand).
  env = process.env.SLIPWAY_TEST_SERVICES_UP
    ? {
        DOCKER_HOST: 'unix:///var/run/docker.sock',
        DOCKER_BUILDKIT: '0',
        SLIPWAY_TEST_REGISTRY: '127.0.0.1:5000',
        SLIPWAY_TEST_AUTH_REGISTRY: '127.0.0.1:5001',
        SLIPWAY_TEST_REGISTRY_USER: 'slipway',
        SLIPWAY_TEST_REGISTRY_PASSWORD_FILE: '/var/lib/slipway-test/registry-password',
      }
    : ensureServices(['docker', 'base-image', 'registry']);
  registry = env.SLIPWAY_TEST_REGISTRY!;
  authRegistry = env.SLIPWAY_TEST_AUTH_REGISTRY!;
  user = env.SLIPWAY_TEST_REGISTRY_USER!;
  password = fs.readFileSync(env.SLIPWAY_TEST_REGISTRY_PASSWORD_FILE!, 'utf8').trim();
});

afterAll(() => {
  if (images.length) spawnSync('docker', ['rmi', '--force', ...images], { env: { ...process.env, ...env } });
});

/** Tags of a repository through the registry's HTTP API ([] when it has none). */
async function registryTags(host: string, repo: string, auth?: string): Promise<string[]> {
  const headers: Record<string, string> = auth ? { authorization: `Basic ${Buffer.from(auth).toString('base64')}` } : {};
  const res = await fetch(`http://${host}/v2/${repo}/tags/list`, { headers });
  if (res.status === 404) return [];
  expect(res.status).toBe(200);
  return ((await res.json()) as { tags?: string[] | null }).tags ?? [];
}

/** A tiny project: a fake manage.py and a server, on the shared base image. */
function tinyProject(opts: { check?: number; status?: number; run?: string }): string {
  const ws = emptyWorkspace();
  fs.writeFileSync(path.join(ws, 'manage.py'), `import sys\nprint("check", sys.argv[1:])\nsys.exit(${opts.check ?? 0})\n`);
  fs.writeFileSync(
    path.join(ws, 'server.py'),
    [
      'import http.server, os',
      'class H(http.server.BaseHTTPRequestHandler):',
      '    def do_GET(self):',
      `        self.send_response(${opts.status ?? 200}); self.end_headers(); self.wfile.write(b"x")`,
      'http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()',
      '',
    ].join('\n'),
  );
  fs.writeFileSync(
    path.join(ws, 'Dockerfile'),
    [
      'FROM python:3.11-slim',
      'COPY manage.py server.py /app/',
      ...(opts.run ? [`RUN ${opts.run}`] : []),
      'WORKDIR /app',
      'CMD ["python", "server.py"]',
      '',
    ].join('\n'),
  );
  return ws;
}

/** The raw log without the mask commands (the one place a secret may appear). */
const unmasked = (log: string): string =>
  log
    .split('\n')
    .filter((l) => !l.startsWith('::add-mask::'))
    .join('\n');

const repo = (what: string): string => `slipway-itg-errors/${what}-${randomBytes(3).toString('hex')}`;

describe('build-image bad input', () => {
  it('a dockerfile that does not exist', async () => {
    const job = new Job({ toolCache, workspace: tinyProject({}), env });
    const step = await job.run('build-image', { image: `${registry}/x/y`, dockerfile: 'docker/Prod.Dockerfile', push: 'true' }, LONG);
    expect(step.exitCode).toBe(1);
    expect(step.failure).toMatch(/^build-image failed: Input `dockerfile` \(docker\/Prod\.Dockerfile\) does not exist/);
  });

  it.each([
    [{ tags: 'ok,-bad' }, 'Input `tags` has an invalid tag "-bad"'],
    [
      { image: '127.0.0.1:5000/Shop:1.0' },
      'Input `image` "127.0.0.1:5000/Shop:1.0" is not a valid image name: give the name without a tag',
    ],
    [{ 'health-path': 'healthz' }, 'Input `health-path` must be a URL path starting with /'],
    [{ 'build-args': 'DB_PASSWORD=hunter2' }, 'Input `build-args` has DB_PASSWORD, which looks like a secret'],
    [{ 'smoke-test': 'yes' }, 'Input `smoke-test` must be true or false'],
  ])('%j', async (inputs, message) => {
    const job = new Job({ toolCache, workspace: tinyProject({}), env });
    const step = await job.run('build-image', { image: `${registry}/x/y`, ...inputs }, LONG);
    expect(step.exitCode).toBe(1);
    expect(step.failure).toContain(message);
    expect(step.shownLog).not.toContain('hunter2');
  });
});

describe('build-image Dockerfile the classic builder cannot run', () => {
  it('a RUN --mount=type=cache is refused before the build, naming BuildKit', async () => {
    const ws = tinyProject({});
    const dockerfile = path.join(ws, 'Dockerfile');
    fs.writeFileSync(
      dockerfile,
      fs.readFileSync(dockerfile, 'utf8').replace('WORKDIR /app', 'RUN --mount=type=cache,target=/root/.cache true\nWORKDIR /app'),
    );
    const job = new Job({ toolCache, workspace: ws, env });
    const step = await job.run('build-image', { image: `${registry}/${repo('mount')}`, push: 'false' }, LONG);
    expect(step.exitCode).toBe(1);
    expect(step.failure).toBe(
      'build-image failed: The Dockerfile uses RUN --mount=type=cache, which needs BuildKit (docker buildx); this engine has only the classic builder.',
    );
    expect(step.log).not.toMatch(/^Step 1\//m);
  });
});

describe('build-image registry login', () => {
  it('a wrong password fails before the build, without the password in the message', async () => {
    const name = repo('login');
    const wrong = `wrong-${randomBytes(8).toString('hex')}`;
    const job = new Job({ toolCache, workspace: tinyProject({}), env });
    const step = await job.run(
      'build-image',
      {
        image: `${authRegistry}/${name}`,
        push: 'true',
        'registry-username': user,
        'registry-password': wrong,
      },
      LONG,
    );
    expect(step.exitCode).toBe(1);
    expect(step.failure).toMatch(new RegExp(`^build-image failed: Login to ${authRegistry.replace(/\./g, '\\.')} as ${user} failed: `));
    expect(step.masks).toContain(wrong);
    expect(unmasked(step.log)).not.toContain(wrong);
    expect(step.log).not.toMatch(/^Step 1\//m);
    expect(await registryTags(authRegistry, name, `${user}:${password}`)).toEqual([]);
  });

  it('logs in with the password on stdin, pushes, and logs out in post', async () => {
    const name = repo('auth');
    const job = new Job({ toolCache, workspace: tinyProject({}), env });
    const step = await job.run(
      'build-image',
      {
        image: `${authRegistry}/${name}`,
        tags: 'v1',
        push: 'true',
        'smoke-test': 'false',
        'registry-username': user,
        'registry-password': password,
      },
      LONG,
    );
    if (step.exitCode !== 0) console.log(step.log.slice(-3000));
    expect(step.exitCode).toBe(0);
    images.push(...step.outputs.tags!.split('\n'));
    expect(step.masks).toContain(password);
    expect(step.log).toContain('--password-stdin');
    expect(unmasked(step.log)).not.toContain(password);
    expect(await registryTags(authRegistry, name, `${user}:${password}`)).toEqual(expect.arrayContaining(['v1', 'main', 'latest']));
    const config = path.join(job.home, '.docker', 'config.json');
    expect((JSON.parse(fs.readFileSync(config, 'utf8')) as { auths?: Record<string, unknown> }).auths).toHaveProperty(authRegistry);
    const [post] = await job.post();
    expect(post!.exitCode).toBe(0);
    expect((JSON.parse(fs.readFileSync(config, 'utf8')) as { auths?: Record<string, unknown> }).auths ?? {}).not.toHaveProperty(
      authRegistry,
    );
  });
});

describe('build-image failing stages push nothing', () => {
  it('a failing build shows the instruction, its line and the last output', async () => {
    const name = repo('build');
    const job = new Job({ toolCache, workspace: tinyProject({ run: 'echo preparing && echo "no such thing" >&2 && exit 3' }), env });
    // The failed step's container is removed (the classic builder keeps it unless --force-rm).
    const failedSteps = (): number =>
      spawnSync('docker', ['ps', '-a', '--no-trunc', '--format', '{{.Command}}'], { encoding: 'utf8', env: { ...process.env, ...env } })
        .stdout.split('\n')
        .filter((c) => c.includes('no such thing')).length;
    const before = failedSteps();
    const step = await job.run('build-image', { image: `${registry}/${name}`, push: 'true' }, LONG);
    expect(failedSteps()).toBe(before);
    expect(step.exitCode).toBe(1);
    expect(step.failure).toContain('Build failed at step 3/');
    expect(step.failure).toContain('(Dockerfile:3) RUN echo preparing');
    expect(step.failure).toContain('no such thing');
    expect(step.failure).not.toContain('DEPRECATED');
    expect(step.annotations.find((a) => a.file === 'Dockerfile')?.line).toBe(3);
    expect(await registryTags(registry, name)).toEqual([]);
  });

  it('manage.py check --deploy failing stops before the push', async () => {
    const name = repo('check');
    const job = new Job({ toolCache, workspace: tinyProject({ check: 2 }), env });
    const step = await job.run('build-image', { image: `${registry}/${name}`, push: 'true' }, LONG);
    images.push(`${registry}/${name}:main`, `${registry}/${name}:latest`, `${registry}/${name}:sha-0123456`);
    expect(step.exitCode).toBe(1);
    expect(step.failure).toMatch(/^build-image failed: Smoke test failed: `manage.py check --deploy` exited with code 2/);
    expect(await registryTags(registry, name)).toEqual([]);
  });

  it('a health path answering 500 stops before the push', async () => {
    const name = repo('health');
    const job = new Job({ toolCache, workspace: tinyProject({ status: 500 }), env });
    const step = await job.run('build-image', { image: `${registry}/${name}`, push: 'true', 'smoke-test-timeout': '4s' }, LONG);
    images.push(`${registry}/${name}:main`, `${registry}/${name}:latest`, `${registry}/${name}:sha-0123456`);
    expect(step.exitCode).toBe(1);
    expect(step.failure).toMatch(/Smoke test failed: GET \/healthz did not answer 2xx within 4 s \(last: HTTP 500\)/);
    expect(await registryTags(registry, name)).toEqual([]);
    // The smoke container is gone.
    const left = spawnSync('docker', ['ps', '-aq', '--filter', 'label=org.slipway.smoke-test'], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    });
    expect(left.stdout.trim()).toBe('');
  });
});
