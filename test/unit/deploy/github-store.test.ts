import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GitHubDeploymentsStore, parseDescription, statusDescription } from '@slipway/toolkit/github-deployments';
import { GitHubApiStub, validate } from '../../stubs/github-api';
import { record } from './releases.test';

const TOKEN = 'ghs_test_token_0123456789';
const stub = new GitHubApiStub(TOKEN);
let saved: string | undefined;

beforeAll(async () => {
  await stub.start();
  saved = process.env.GITHUB_API_URL;
  process.env.GITHUB_API_URL = stub.url;
}, 30_000);
afterAll(async () => {
  process.env.GITHUB_API_URL = saved;
  await stub.stop();
});

describe('GitHubDeploymentsStore against the OpenAPI-checked stand-in', () => {
  it('creates a deployment with the record, statuses with environment_url, and finds it again', async () => {
    const store = new GitHubDeploymentsStore({
      token: TOKEN,
      repository: 'acme/shop',
      logUrl: 'https://github.com/acme/shop/actions/runs/1',
    });
    const r1 = record({ id: '20260101-000000-0123456-001', outcome: 'in_progress', createdAt: '2026-01-01T00:00:00Z' });
    await store.begin(r1);
    await store.finish({ ...r1, outcome: 'success' });
    const r2 = record({ id: '20260102-000000-0123456-002', outcome: 'in_progress', createdAt: '2026-01-02T00:00:00Z', url: 'http://new/' });
    await store.begin(r2);
    await store.finish({ ...r2, outcome: 'success' });

    const create = stub.requests.find((r) => r.method === 'POST' && r.operation === '/repos/{owner}/{repo}/deployments')!;
    expect(create.path).toBe('/repos/acme/shop/deployments');
    expect(create.headers.authorization).toBe(`token ${TOKEN}`);
    expect(create.body).toMatchObject({
      ref: r1.gitSha,
      task: 'deploy',
      environment: 'staging',
      auto_merge: false,
      required_contexts: [],
      production_environment: false,
      payload: { slipway: { id: r1.id, imageDigest: r1.imageDigest, outcome: 'in_progress' } },
    });
    const statuses = stub.requests.filter(
      (r) => r.operation === '/repos/{owner}/{repo}/deployments/{deployment_id}/statuses' && r.method === 'POST',
    );
    expect(statuses.map((s) => (s.body as { state: string }).state)).toEqual(['in_progress', 'success', 'in_progress', 'success']);
    expect(statuses[3]!.body).toMatchObject({
      environment_url: 'http://new/',
      auto_inactive: true,
      log_url: 'https://github.com/acme/shop/actions/runs/1',
    });
    // GitHub marked the first one inactive (auto_inactive, non-production).
    expect(stub.latestStates('staging').map((s) => s.state)).toEqual(['success', 'inactive']);

    const listed = await new GitHubDeploymentsStore({ token: TOKEN, repository: 'acme/shop' }).list('staging');
    expect(listed.map((r) => [r.id, r.outcome, r.url])).toEqual([
      [r2.id, 'success', 'http://new/'],
      [r1.id, 'success', r1.url],
    ]);
    expect(stub.violations).toEqual([]);
  });

  it('marks earlier production deployments inactive itself (auto_inactive skips production)', async () => {
    const store = new GitHubDeploymentsStore({ token: TOKEN, repository: 'acme/shop' });
    for (const [i, outcome] of [
      [1, 'success'],
      [2, 'failure'],
      [3, 'success'],
    ] as const) {
      const r = record({ id: `20260201-00000${i}-0123456-00${i}`, environment: 'production', outcome: 'in_progress' });
      await store.begin(r);
      await store.finish({ ...r, outcome });
    }
    expect(stub.latestStates('production').map((s) => s.state)).toEqual(['success', 'failure', 'inactive']);
    const current = await store.current('production');
    expect(current?.id).toBe('20260201-000003-0123456-003');
    expect(stub.violations).toEqual([]);
  });

  it('reads back what only the end knows (provider release id, URL, rolled-back) from the end status, after GitHub marked it inactive', async () => {
    const store = new GitHubDeploymentsStore({ token: TOKEN, repository: 'acme/shop' });
    const env = 'review-heroku';
    const uuid = '0f4c7a52-1b0e-4a7e-9a55-2f1d3c9e8b10';
    // Heroku names its release only when it is made: the record begins without it.
    const r1 = record({ id: '20260301-000001-0123456-001', environment: env, provider: 'heroku', providerReleaseId: '', url: '' });
    await store.begin({ ...r1, outcome: 'in_progress' });
    await store.finish({ ...r1, providerReleaseId: uuid, url: 'https://shop-review.herokuapp.com/', outcome: 'success' });
    const r2 = record({ id: '20260301-000002-0123456-002', environment: env, provider: 'heroku', providerReleaseId: '', url: '' });
    await store.begin({ ...r2, outcome: 'in_progress' });
    await store.finish({ ...r2, providerReleaseId: 'v-rolled', outcome: 'rolled-back' });
    const r3 = record({ id: '20260301-000003-0123456-003', environment: env, provider: 'heroku', providerReleaseId: '', url: '' });
    await store.begin({ ...r3, outcome: 'in_progress' });
    await store.finish({ ...r3, providerReleaseId: 'a9d3', url: 'https://shop-review.herokuapp.com/', outcome: 'success' });

    const posted = stub.requests
      .filter((r) => r.method === 'POST' && r.path.endsWith('/statuses'))
      .slice(-6)
      .map((r) => r.body as { state: string; description: string; environment_url?: string });
    expect(posted.map((b) => [b.state, b.description])).toEqual([
      ['in_progress', `deploying: ${r1.id} (sha256:aaaaaaaaaaaa)`],
      ['success', `success: ${r1.id} (sha256:aaaaaaaaaaaa); provider release ${uuid}`],
      ['in_progress', `deploying: ${r2.id} (sha256:aaaaaaaaaaaa)`],
      ['failure', `rolled-back: ${r2.id} (sha256:aaaaaaaaaaaa); provider release v-rolled`],
      ['in_progress', `deploying: ${r3.id} (sha256:aaaaaaaaaaaa)`],
      ['success', `success: ${r3.id} (sha256:aaaaaaaaaaaa); provider release a9d3`],
    ]);
    // The payload GitHub keeps is the one begin() sent: without the provider release id.
    const created = stub.deployments
      .filter((d) => d.environment === env)
      .map((d) => d.payload as { slipway: { providerReleaseId: string } });
    expect(created.map((p) => p.slipway.providerReleaseId)).toEqual(['', '', '']);
    // GitHub marked r1 inactive (with an empty environment_url) when r3 succeeded.
    expect(stub.latestStates(env).map((s) => s.state)).toEqual(['success', 'failure', 'inactive']);

    const listed = await new GitHubDeploymentsStore({ token: TOKEN, repository: 'acme/shop' }).list(env);
    expect(listed.map((r) => [r.id, r.outcome, r.providerReleaseId, r.url])).toEqual([
      [r3.id, 'success', 'a9d3', 'https://shop-review.herokuapp.com/'],
      [r2.id, 'rolled-back', 'v-rolled', ''],
      [r1.id, 'success', uuid, 'https://shop-review.herokuapp.com/'],
    ]);
    // Everything begin() knew comes back from the payload as it was.
    expect(listed[2]!.migrations).toEqual(r1.migrations);
    const reads = stub.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/statuses'));
    expect(reads.at(-1)!.query.get('per_page')).toBe('30');
    expect(stub.violations).toEqual([]);
  });

  it('a status description fits in 140 characters and is only read for its own release', () => {
    const long = record({ providerReleaseId: 'x'.repeat(80) });
    expect(statusDescription(long)).toBe(`success: ${long.id}; provider release ${'x'.repeat(80)}`);
    expect(statusDescription(record({ providerReleaseId: 'x'.repeat(130) }))).toBe(`success: ${long.id} (sha256:aaaaaaaaaaaa)`);
    expect(parseDescription(statusDescription(record({ providerReleaseId: 'rev-1' })), long.id)).toEqual({
      outcome: 'success',
      providerReleaseId: 'rev-1',
    });
    expect(parseDescription(statusDescription(record({ providerReleaseId: 'rev-1' })), '20990101-000000-0123456-fff')).toEqual({});
    expect(parseDescription('superseded by a newer release', long.id)).toEqual({});
  });

  it('a bad token is one clear line', async () => {
    const store = new GitHubDeploymentsStore({ token: 'wrong', repository: 'acme/shop' });
    await expect(store.list('staging')).rejects.toThrow(/GitHub refused to list deployments \(401.*deployments: write/);
  });

  it('the stand-in itself rejects what GitHub documents as invalid', () => {
    const schema = { type: 'object', required: ['state'], properties: { state: { type: 'string', enum: ['success'] } } };
    expect(validate({ state: 'done' }, schema)).toEqual(['$.state: "done" not in ["success"]']);
    expect(validate({}, schema)).toEqual(['$.state: required']);
  });
});
