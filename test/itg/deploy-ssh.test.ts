/**
 * The deploy action's ssh provider end to end: the built bundle, run as the runner runs it,
 * against the real OpenSSH server on 127.0.0.1:2222 driving the real Docker engine and the real
 * HAProxy the action sets up, serving the example app's image under gunicorn. wrk runs against
 * the HAProxy frontend during every deploy that has something serving and must see zero
 * failed requests (non-2xx or socket errors).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyWorkspace, Job } from '../harness/job';
import { GitHubApiStub } from '../stubs/github-api';
import { buildDeployImage, cleanupHost, deployServices, sshInputs, startLoad, type LoadResult } from './deploy-support';

const APP = 'shopitg';
const PROXY_PORT = 18480;
const APP_PORT = 18400;
const SECRET = 'dj-secret-Zq8-not-for-logs-5521';
const FRONT = `http://127.0.0.1:${PROXY_PORT}/healthz`;

let env: Record<string, string>;
let image: { ref: string; tag: string; repo: string };
let ssh: { key: string; knownHosts: string; port: string };
let remoteDir: string;
let workspace: string;
/** A real ed25519 public key that is not the server's. */
let otherHostKey: string;

function docker(args: string[]): string {
  return execFileSync('docker', args, { env: { ...process.env, ...(env.DOCKER_HOST ? { DOCKER_HOST: env.DOCKER_HOST } : {}) } })
    .toString()
    .trim();
}

function inputs(over: Record<string, string> = {}): Record<string, string> {
  return {
    provider: 'ssh',
    environment: 'staging',
    image: image.ref,
    hosts: `root@127.0.0.1:${ssh.port}`,
    'ssh-private-key': ssh.key,
    'ssh-known-hosts': ssh.knownHosts,
    'app-name': APP,
    'app-port': String(APP_PORT),
    'proxy-port': String(PROXY_PORT),
    'proxy-address': '127.0.0.1',
    'remote-dir': remoteDir,
    env: `DJANGO_SECRET_KEY=${SECRET}\nDJANGO_SECURE_SSL_REDIRECT=false\nDJANGO_LOG_LEVEL=WARNING`,
    'health-timeout': '30s',
    'release-store': 'releases',
    'github-token': '',
    ...over,
  };
}

function records(): { id: string; outcome: string; providerReleaseId: string; imageDigest: string; url: string }[] {
  const dir = path.join(workspace, 'releases', 'staging');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as ReturnType<typeof records>[number]);
}

const current = (): { releaseId: string; slot: string; container: string } =>
  JSON.parse(fs.readFileSync(path.join(remoteDir, APP, 'current'), 'utf8')) as ReturnType<typeof current>;

function expectNoFailures(load: LoadResult): void {
  expect(load.requests, load.raw).toBeGreaterThan(200);
  expect({ non2xx: load.non2xx, socketErrors: load.socketErrors }, load.raw).toEqual({ non2xx: 0, socketErrors: 0 });
}

async function deployUnderLoad(job: Job, over: Record<string, string> = {}) {
  const load = startLoad(FRONT);
  const result = await job.run('deploy', inputs(over));
  return { result, load: await load.stop() };
}

beforeAll(() => {
  env = deployServices();
  Object.assign(process.env, { DOCKER_HOST: env.DOCKER_HOST ?? process.env.DOCKER_HOST });
  image = buildDeployImage(env);
  ssh = sshInputs(env);
  remoteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-deploy-host-'));
  workspace = emptyWorkspace();
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-otherkey-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(keyDir, 'k')]);
  otherHostKey = fs.readFileSync(path.join(keyDir, 'k.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
  fs.rmSync(keyDir, { recursive: true, force: true });
  cleanupHost(APP, path.join(os.tmpdir(), 'none'), env);
});

afterAll(() => {
  if (env) cleanupHost(APP, remoteDir, env);
});

describe('deploy (ssh provider)', () => {
  it('sets up the host, pulls by digest, then switches releases under load without a failed request', async () => {
    // Only the local build tag keeps the layers: the host has to pull the digest from the registry.
    docker(['image', 'rm', image.ref]);
    const job = new Job({ workspace });
    const first = await job.run('deploy', inputs({ 'setup-host': 'true' }));
    expect(first.failure, first.log).toBeUndefined();
    expect(first.log).toContain('pulled');
    expect(first.outputs['previous-release-id']).toBe('');
    expect(first.outputs.url).toBe(`http://127.0.0.1:${PROXY_PORT}/`);
    expect(current()).toMatchObject({ releaseId: first.outputs['release-id'], slot: 'blue' });

    const { result: second, load } = await deployUnderLoad(job);
    expect(second.failure, second.log).toBeUndefined();
    expectNoFailures(load);
    expect(second.outputs['previous-release-id']).toBe(first.outputs['release-id']);
    expect(second.log).toContain('image already present');
    expect(current()).toMatchObject({ releaseId: second.outputs['release-id'], slot: 'green' });
    // The old container is kept (stopped) for rollback; the new one runs with PORT of its slot.
    expect(docker(['inspect', '--format', '{{.State.Running}}', `${APP}-${first.outputs['release-id']}`])).toBe('false');
    expect(docker(['inspect', '--format', '{{.State.Running}}', `${APP}-${second.outputs['release-id']}`])).toBe('true');
    // The env file is 0600 on the host and the secret is in no log line.
    const envFile = path.join(remoteDir, APP, 'env', `${second.outputs['release-id']}.env`);
    expect(fs.statSync(envFile).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(envFile, 'utf8')).toContain(`DJANGO_SECRET_KEY=${SECRET}`);
    for (const step of [first, second]) expect(step.shownLog).not.toContain(SECRET);
    expect(second.summary).toContain(second.outputs['release-id']);
    // The lock is released; the records say what happened.
    expect(fs.existsSync(path.join(remoteDir, APP, 'lock'))).toBe(false);
    const recs = records();
    expect(recs.map((r) => r.outcome)).toEqual(['success', 'success']);
    expect(recs[1]).toMatchObject({
      id: second.outputs['release-id'],
      providerReleaseId: second.outputs['release-id'],
      imageDigest: image.ref.split('@')[1],
      url: `http://127.0.0.1:${PROXY_PORT}/`,
    });
  });

  it('a health check that never passes: the new container is removed, the old one keeps serving', async () => {
    const before = current();
    const job = new Job({ workspace });
    const { result, load } = await deployUnderLoad(job, {
      env: `DJANGO_SECRET_KEY=${SECRET}\nDJANGO_SECURE_SSL_REDIRECT=false\nDATABASE_URL=postgres://nobody@127.0.0.1:1/none`,
      'health-timeout': '6s',
    });
    expect(result.exitCode).not.toBe(0);
    expect(result.failure).toMatch(
      /^deploy failed: Health check of shopitg-\S+ on root@127\.0\.0\.1:\d+ failed after \d+ attempt\(s\).*status 503, expected 200.*previous release keeps serving/,
    );
    expectNoFailures(load);
    expect(current()).toEqual(before);
    expect(docker(['ps', '-aq', '--filter', `name=${APP}-${result.outputs['release-id']}`])).toBe('');
    expect(fs.existsSync(path.join(remoteDir, APP, 'lock'))).toBe(false);
    expect(records().at(-1)).toMatchObject({ id: result.outputs['release-id'], outcome: 'failure' });
  });

  it('records in GitHub Deployments (stand-in) and prunes to keep-releases, under load', async () => {
    const stub = new GitHubApiStub('ghs_itg_token_123456');
    await stub.start();
    try {
      const job = new Job({ workspace, env: { GITHUB_API_URL: stub.url } });
      const { result, load } = await deployUnderLoad(job, {
        'release-store': 'github',
        'github-token': 'ghs_itg_token_123456',
        'keep-releases': '2',
      });
      expect(result.failure, result.log).toBeUndefined();
      expectNoFailures(load);
      expect(stub.violations).toEqual([]);
      const create = stub.requests.find((r) => r.method === 'POST' && r.path === '/repos/acme/shop/deployments')!;
      expect(create.headers.authorization).toBe('token ghs_itg_token_123456');
      expect(create.body).toMatchObject({
        ref: '0123456789abcdef0123456789abcdef01234567',
        environment: 'staging',
        required_contexts: [],
        payload: { slipway: { id: result.outputs['release-id'], provider: 'ssh', imageDigest: image.ref.split('@')[1], actor: 'octocat' } },
      });
      const states = stub.requests
        .filter((r) => r.method === 'POST' && r.path.endsWith('/statuses'))
        .map((r) => r.body as { state: string; environment_url?: string });
      expect(states.map((s) => s.state)).toEqual(['in_progress', 'success']);
      expect(states[1]!.environment_url).toBe(`http://127.0.0.1:${PROXY_PORT}/`);
      // keep-releases 2: the serving release and one before it.
      const kept = docker(['ps', '-a', '--filter', `label=slipway.app=${APP}`, '--format', '{{.Names}}'])
        .split('\n')
        .filter(Boolean);
      expect(kept).toHaveLength(2);
      expect(kept).toContain(`${APP}-${result.outputs['release-id']}`);
    } finally {
      await stub.stop();
    }
  });

  it('refuses a second deploy while the lock is held, changing nothing (connected through a jump host)', async () => {
    const before = current();
    fs.mkdirSync(path.join(remoteDir, APP, 'lock'));
    fs.writeFileSync(path.join(remoteDir, APP, 'lock', 'owner'), 'someone run 42\n');
    try {
      const job = new Job({ workspace });
      // The jump host is the same sshd: the connection goes ssh -W through it, pinned by the same known_hosts.
      const { result, load } = await deployUnderLoad(job, { 'ssh-jump-host': `root@127.0.0.1:${ssh.port}` });
      expect(result.failure).toMatch(/Another deploy holds the lock on root@127\.0\.0\.1:\d+ \(someone run 42\); nothing was changed/);
      expectNoFailures(load);
      expect(current()).toEqual(before);
      expect(fs.existsSync(path.join(remoteDir, APP, 'lock', 'owner'))).toBe(true);
    } finally {
      fs.rmSync(path.join(remoteDir, APP, 'lock'), { recursive: true, force: true });
    }
  });

  it.each([
    [
      'a host key that does not match',
      () => ({ 'ssh-known-hosts': `[127.0.0.1]:${ssh.port} ${otherHostKey}` }),
      /host key does not match `ssh-known-hosts` \(refused\)/,
    ],
    ['an unreachable host', () => ({ hosts: 'root@127.0.0.1:1' }), /Cannot connect to root@127\.0\.0\.1:1: connection refused/],
    [
      'an image the registry does not have',
      () => ({ image: `${image.repo}@sha256:${'0'.repeat(64)}`, 'image-transfer': 'pull' }),
      /could not pull/,
    ],
  ])('%s fails clearly and the previous release keeps serving', async (_name, over, message) => {
    const before = current();
    const job = new Job({ workspace });
    const { result, load } = await deployUnderLoad(job, over());
    expect(result.exitCode).not.toBe(0);
    expect(result.failure).toMatch(message);
    expectNoFailures(load);
    expect(current()).toEqual(before);
    expect(fs.existsSync(path.join(remoteDir, APP, 'lock'))).toBe(false);
  });

  it('a host without the proxy set up is a clear error naming setup-host', async () => {
    const job = new Job({ workspace });
    const result = await job.run('deploy', inputs({ 'app-name': 'shopitg-nosetup' }));
    expect(result.failure).toMatch(/HAProxy is not set up on root@127\.0\.0\.1:\d+ .*deploy once with `setup-host: true`/);
    expect(fs.existsSync(path.join(remoteDir, 'shopitg-nosetup', 'lock'))).toBe(false);
  });

  it('bad input fails before touching anything', async () => {
    const job = new Job({ workspace });
    const tagOnly = await job.run('deploy', inputs({ image: 'ghcr.io/acme/shop:latest' }));
    expect(tagOnly.failure).toBe(
      "deploy failed: Input `image` has no digest (ghcr.io/acme/shop:latest): deploy name@sha256:… (build-image's output), or set `require-digest: false`.",
    );
    const unknown = await job.run('deploy', inputs({ provider: 'kubernetes' }));
    expect(unknown.failure).toBe('deploy failed: Input `provider` must be one of ssh, heroku, aws-eb, cloud-run; got "kubernetes".');
    const noKey = await job.run('deploy', inputs({ 'ssh-private-key': '' }));
    expect(noKey.failure).toMatch(/Input `ssh-private-key` is required for provider ssh/);
  });
});
