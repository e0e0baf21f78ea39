/**
 * The rollback action end to end on the same real stack as deploy: the built bundle, the real
 * OpenSSH server on 127.0.0.1 driving the real Docker engine and the HAProxy deploy set up,
 * releases of the example shop deployed by the real deploy action, records in the directory
 * store. Image-only rollbacks run under wrk load and must see zero failed requests.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyWorkspace, Job, type StepResult } from '../harness/job';
import { GitHubApiStub } from '../stubs/github-api';
import { buildDeployImage, cleanupHost, deployServices, sshInputs, startLoad, type LoadResult } from './deploy-support';
import { buildVariant, sh } from './rollback-support';

const APP = 'shoprb';
const PROXY_PORT = 18680;
const APP_PORT = 18600;
const FRONT = `http://127.0.0.1:${PROXY_PORT}/healthz`;
const SHA1 = '1111111111111111111111111111111111111111';
const SHA2 = '2222222222222222222222222222222222222222';

let env: Record<string, string>;
let v1: string;
let v2: string;
let ssh: { key: string; knownHosts: string; port: string };
let remoteDir: string;
let workspace: string;

function common(): Record<string, string> {
  return {
    provider: 'ssh',
    environment: 'staging',
    hosts: `root@127.0.0.1:${ssh.port}`,
    'ssh-private-key': ssh.key,
    'ssh-known-hosts': ssh.knownHosts,
    'app-name': APP,
    'app-port': String(APP_PORT),
    'proxy-port': String(PROXY_PORT),
    'proxy-address': '127.0.0.1',
    'remote-dir': remoteDir,
    'health-timeout': '30s',
    'release-store': 'releases',
    'github-token': '',
  };
}

const deployInputs = (image: string, over: Record<string, string> = {}) => ({
  ...common(),
  image,
  env: 'DJANGO_SECRET_KEY=rollback-itg-secret-0123456789\nDJANGO_SECURE_SSL_REDIRECT=false\nDJANGO_LOG_LEVEL=WARNING',
  ...over,
});

type Rec = {
  id: string;
  outcome: string;
  providerReleaseId: string;
  image: string;
  rollbackOf: string | null;
  details?: Record<string, unknown>;
};

function records(environment = 'staging'): Rec[] {
  const dir = path.join(workspace, 'releases', environment);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Rec);
}

const current = (): { releaseId: string; slot: string; image: string } =>
  JSON.parse(fs.readFileSync(path.join(remoteDir, APP, 'current'), 'utf8')) as ReturnType<typeof current>;

function expectNoFailures(load: LoadResult): void {
  expect(load.requests, load.raw).toBeGreaterThan(100);
  expect({ non2xx: load.non2xx, socketErrors: load.socketErrors }, load.raw).toEqual({ non2xx: 0, socketErrors: 0 });
}

async function rollbackUnderLoad(job: Job, over: Record<string, string> = {}): Promise<{ result: StepResult; load: LoadResult }> {
  const load = startLoad(FRONT);
  const result = await job.run('rollback', { ...common(), ...over });
  return { result, load: await load.stop() };
}

/** Nothing changed: the same release serves and no record was added. */
function expectUnchanged(result: StepResult, before: { current: ReturnType<typeof current>; records: number }, message: RegExp): void {
  expect(result.exitCode).toBe(1);
  expect(result.failure).toMatch(message);
  expect(result.log).not.toMatch(/\n\s+at /); // no stack trace
  expect(current()).toEqual(before.current);
  expect(records()).toHaveLength(before.records);
  expect(fs.existsSync(path.join(remoteDir, APP, 'lock'))).toBe(false);
}

beforeAll(() => {
  env = deployServices();
  Object.assign(process.env, { DOCKER_HOST: env.DOCKER_HOST ?? process.env.DOCKER_HOST });
  const base = buildDeployImage(env);
  v1 = base.ref;
  v2 = buildVariant('v2', base.tag, env).ref;
  ssh = sshInputs(env);
  remoteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-rollback-host-'));
  workspace = emptyWorkspace();
  cleanupHost(APP, path.join(os.tmpdir(), 'none'), env);
});

afterAll(() => {
  if (env) cleanupHost(APP, remoteDir, env);
});

describe('rollback (ssh provider, image only)', () => {
  let a: string;
  let b: string;

  it('with a single release there is no earlier one: refused, nothing changed', async () => {
    const job = new Job({ workspace, env: { GITHUB_SHA: SHA1 } });
    const first = await job.run('deploy', deployInputs(v1, { 'setup-host': 'true' }));
    expect(first.failure, first.log).toBeUndefined();
    a = first.outputs['release-id']!;
    const before = { current: current(), records: records().length };
    const result = await job.run('rollback', common());
    expectUnchanged(
      result,
      before,
      /^rollback failed: No earlier release of `staging` to roll back to: \S+ is the only one that served\.$/,
    );
  });

  it('bad input: unknown id, a record of another environment, another provider, a missing backup, revert — refused, nothing changed', async () => {
    const job = new Job({ workspace, env: { GITHUB_SHA: SHA2 } });
    const second = await job.run('deploy', deployInputs(v2));
    expect(second.failure, second.log).toBeUndefined();
    b = second.outputs['release-id']!;
    // A record of production (same store, another environment).
    const prodId = '20260101-000000-3333333-abc';
    fs.mkdirSync(path.join(workspace, 'releases', 'production'), { recursive: true });
    fs.writeFileSync(
      path.join(workspace, 'releases', 'production', `${prodId}.json`),
      JSON.stringify({ ...records()[0], id: prodId, environment: 'production' }),
    );
    const before = { current: current(), records: records().length };
    const cases: [Record<string, string>, RegExp][] = [
      [
        { to: '20250101-000000-4444444-def' },
        /^rollback failed: Input `to`: no release 20250101-000000-4444444-def in the records of `staging` \(newest: /,
      ],
      [
        { to: prodId },
        /^rollback failed: Input `to`: release 20260101-000000-3333333-abc is a record of environment `production`, not `staging`; nothing was changed\.$/,
      ],
      [
        { provider: 'heroku' },
        /^rollback failed: Input `provider` is heroku, but staging runs release \S+, deployed with ssh: roll back with `provider: ssh`\.$/,
      ],
      [
        { database: 'restore-backup', env: 'DATABASE_URL=postgres://postgres@127.0.0.1:5432/none' },
        /^rollback failed: Input `database: restore-backup`: no backup was recorded by \S+ \(deploy with the migrate action's backup\); nothing was changed\.$/,
      ],
      [{ to: 'not a release!' }, /^rollback failed: Input `to` must be previous, a release id/],
      [
        { revert: 'pull-request', 'github-token': '' },
        /^rollback failed: Input `revert: pull-request` needs `github-token` \(with contents: write and pull-requests: write\)\.$/,
      ],
      [{ revert: 'commit', 'revert-branch': 'main..x' }, /^rollback failed: Input `revert-branch` must be a branch name/],
      [{ database: 'sometimes' }, /^rollback failed: Input `database` must be one of none, migrate-back, restore-backup/],
    ];
    for (const [over, message] of cases) expectUnchanged(await job.run('rollback', { ...common(), ...over }), before, message);
  });

  it('dry-run shows the plan (image now → then) and changes nothing', async () => {
    const before = { current: current(), records: records().length };
    const job = new Job({ workspace });
    const result = await job.run('rollback', { ...common(), 'dry-run': 'true' });
    expect(result.failure, result.log).toBeUndefined();
    expect(result.summary).toContain('rollback plan (dry run): staging');
    expect(result.summary).toContain(b);
    expect(result.summary).toContain(`${a} · 1111111`);
    expect(result.log).toContain('Database: none');
    expect(current()).toEqual(before.current);
    expect(records()).toHaveLength(before.records);
  });

  it('rolls back to the previous release under load: old container, health-gated switch, zero failed requests, records', async () => {
    const job = new Job({ workspace });
    const { result, load } = await rollbackUnderLoad(job);
    expect(result.failure, result.log).toBeUndefined();
    expectNoFailures(load);
    expect(result.log).toContain('image already present');
    expect(current()).toMatchObject({ releaseId: a });
    expect(sh('docker', ['inspect', '--format', '{{.State.Running}}', `${APP}-${b}`])).toBe('false');
    expect(result.outputs).toMatchObject({ 'rolled-back-release-id': b, 'target-release-id': a, url: `http://127.0.0.1:${PROXY_PORT}/` });
    const recs = records();
    const rb = recs.find((r) => r.id === result.outputs['release-id'])!;
    expect(rb).toMatchObject({ outcome: 'success', rollbackOf: b, providerReleaseId: a, image: v1 });
    expect(recs.find((r) => r.id === b)).toMatchObject({ outcome: 'success', details: { rolledBackBy: rb.id, inactive: true } });
    expect(result.summary).toContain(`rollback: staging back on ${a}`);
  });

  it('rolls back the rollback (to: previous = the release it undid), under load', async () => {
    const job = new Job({ workspace });
    const { result, load } = await rollbackUnderLoad(job);
    expect(result.failure, result.log).toBeUndefined();
    expectNoFailures(load);
    expect(current()).toMatchObject({ releaseId: b });
    expect(records().find((r) => r.id === result.outputs['release-id'])).toMatchObject({
      rollbackOf: records().find((r) => r.rollbackOf === b)!.id,
      image: v2,
      outcome: 'success',
    });
    expect(result.outputs['target-release-id']).toBe(b);
  });

  it('to a git sha and to an image reference', async () => {
    const job = new Job({ workspace });
    const bySha = await job.run('rollback', { ...common(), to: SHA1.slice(0, 7) });
    expect(bySha.failure, bySha.log).toBeUndefined();
    expect(current()).toMatchObject({ releaseId: a });
    const byImage = await job.run('rollback', { ...common(), to: v2 });
    expect(byImage.failure, byImage.log).toBeUndefined();
    expect(current()).toMatchObject({ releaseId: b });
  });

  it('GitHub Deployments: the rollback is a new deployment with rollbackOf, the replaced one goes inactive', async () => {
    const token = 'ghs_rollback_itg_token_98765';
    const gh = new GitHubApiStub(token);
    await gh.start();
    try {
      const store = { environment: 'review', 'release-store': 'github', 'github-token': token };
      const job = new Job({ workspace: emptyWorkspace(), env: { GITHUB_API_URL: gh.url } });
      const one = await job.run('deploy', deployInputs(v1, store), { env: { GITHUB_SHA: SHA1 } });
      expect(one.failure, one.log).toBeUndefined();
      const two = await job.run('deploy', deployInputs(v2, store), { env: { GITHUB_SHA: SHA2 } });
      expect(two.failure, two.log).toBeUndefined();
      const result = await job.run('rollback', { ...common(), ...store });
      expect(result.failure, result.log).toBeUndefined();
      expect(current()).toMatchObject({ releaseId: one.outputs['release-id'] });
      expect(gh.violations).toEqual([]);
      const last = gh.deployments.at(-1)!;
      expect(last.ref).toBe(SHA1);
      expect((last.payload as { slipway: Record<string, unknown> }).slipway).toMatchObject({
        id: result.outputs['release-id'],
        rollbackOf: two.outputs['release-id'],
        providerReleaseId: one.outputs['release-id'],
        image: v1,
      });
      const states = gh.latestStates('review');
      expect(states.map((s) => s.state)).toEqual(['success', 'inactive', 'inactive']);
    } finally {
      await gh.stop();
    }
  });
});
