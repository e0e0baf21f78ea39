/**
 * The rollback ACTION (the built bundle, run as the runner runs it) with cloud providers, against
 * the stand-ins the deploy tests use. Cloud Run: two releases deployed by the real deploy action,
 * then rolled back (traffic sent back to the old revision, no new revision) and forward again.
 * Heroku: releases made on the Platform API stand-in and recorded in the directory store as
 * deploy records them (a Heroku deploy needs an image pushed to its registry: covered by
 * deploy-cloud-heroku), then rolled back with the Platform API's rollback (POST /releases).
 */
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newReleaseId, type ReleaseRecord } from '../../packages/toolkit/src/releases';
import { Job, type StepResult } from '../harness/job';
import { CloudRunStub } from '../stubs/cloud-run-api';
import { HerokuStub } from '../stubs/heroku-api';

const SA = 'deployer@acme-shop.iam.gserviceaccount.com';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const IMAGE = (c: string) => `europe-docker.pkg.dev/acme-shop/shop/web@sha256:${c.repeat(64)}`;
const HEROKU_KEY = 'HRKU-rollback0123456789abcdef0123456789ab';

let tmp: string;

const ok = (r: StepResult) => expect(r.exitCode, r.failure ?? r.log.slice(-3000)).toBe(0);
const readRecord = (workspace: string, env: string, id: string) =>
  JSON.parse(fs.readFileSync(path.join(workspace, 'releases', env, `${id}.json`), 'utf8')) as ReleaseRecord & {
    details?: Record<string, unknown>;
  };

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-rollback-cloud-'));
});

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('rollback action with provider cloud-run', () => {
  let run: CloudRunStub;
  let job: Job;
  let workspace: string;
  const inputs = (extra: Record<string, string> = {}): Record<string, string> => ({
    provider: 'cloud-run',
    environment: 'production',
    'app-name': 'shop',
    'gcp-project': 'acme-shop',
    'gcp-region': 'europe-west1',
    'cloud-run-service': 'shop',
    'health-timeout': '20s',
    'release-store': 'releases',
    ...extra,
  });
  const patches = () => run.requests.filter((r) => r.method === 'PATCH');
  let a: string;
  let b: string;
  let revA: string;
  let revB: string;

  beforeAll(async () => {
    workspace = path.join(tmp, 'cloud-run-ws');
    fs.mkdirSync(workspace);
    run = new CloudRunStub({
      project: 'acme-shop',
      region: 'europe-west1',
      service: 'shop',
      initialRevision: 'shop-00001-abc',
      initialImage: IMAGE('0'),
      serviceAccountPublicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      serviceAccountEmail: SA,
      operationPolls: 2,
    });
    const runUrl = await run.start();
    const key = path.join(tmp, 'gha-creds.json');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    fs.writeFileSync(
      key,
      JSON.stringify({
        type: 'service_account',
        project_id: 'acme-shop',
        private_key: pem,
        client_email: SA,
        token_uri: `${runUrl}/token`,
      }),
      { mode: 0o600 },
    );
    job = new Job({ workspace, env: { GOOGLE_APPLICATION_CREDENTIALS: key, CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN: runUrl } });
    for (const [image, sha] of [
      [IMAGE('a'), '1'.repeat(40)],
      [IMAGE('b'), '2'.repeat(40)],
    ] as const) {
      const r = await job.run(
        'deploy',
        { ...inputs(), image, env: 'DJANGO_SECRET_KEY=rollback-cloud-secret' },
        { env: { GITHUB_SHA: sha } },
      );
      ok(r);
      if (image === IMAGE('a')) a = r.outputs['release-id']!;
      else b = r.outputs['release-id']!;
    }
    revA = readRecord(workspace, 'production', a).providerReleaseId;
    revB = readRecord(workspace, 'production', b).providerReleaseId;
  });

  afterAll(async () => {
    await run?.stop();
  });

  it('dry-run shows the plan and sends no change to Cloud Run', async () => {
    const before = patches().length;
    const result = await job.run('rollback', inputs({ 'dry-run': 'true' }));
    ok(result);
    expect(result.log).toContain(`Back to: ${a} · 1111111 · europe-docker.pkg.dev/acme-shop/shop/web@sha256:aaaaaaaaaaaa…`);
    expect(result.log).toContain('Database: none');
    expect(patches().length).toBe(before);
    expect(run.servingRevision()).toBe(revB);
  });

  it('sends all traffic back to the old revision (no new revision), checks health, records the rollback', async () => {
    const revisionsBefore = [...run.revisions.keys()];
    const from = run.requests.length;
    const result = await job.run('rollback', inputs());
    ok(result);
    const sent = run.requests.slice(from);
    const patch = sent.filter((r) => r.method === 'PATCH');
    expect(patch).toHaveLength(1);
    expect(patch[0]!.path).toBe('/v2/projects/acme-shop/locations/europe-west1/services/shop');
    expect(patch[0]!.headers['content-type']).toBe('application/json');
    expect(patch[0]!.headers.authorization).toMatch(/^Bearer \S+$/);
    expect(run.issuedTokens.has(patch[0]!.headers.authorization!.slice('Bearer '.length))).toBe(true);
    const body = patch[0]!.json as { traffic: unknown[]; template: { revision?: string; containers: { image: string }[] } };
    expect(body.traffic).toEqual([{ type: 'TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION', revision: revA, percent: 100 }]);
    // The template is the service's as it stands: the old revision serves again, none is created.
    expect(body.template.containers[0]!.image).toBe(IMAGE('b'));
    expect([...run.revisions.keys()]).toEqual(revisionsBefore);
    // The long-running operation was polled until done.
    expect(sent.filter((r) => r.method === 'GET' && r.path.includes('/operations/')).length).toBeGreaterThanOrEqual(2);
    expect(run.servingRevision()).toBe(revA);
    expect(result.outputs).toMatchObject({ 'rolled-back-release-id': b, 'target-release-id': a, url: await run.web.url('shop') });
    const rb = readRecord(workspace, 'production', result.outputs['release-id']!);
    expect(rb).toMatchObject({
      provider: 'cloud-run',
      providerReleaseId: revA,
      image: IMAGE('a'),
      gitSha: '1'.repeat(40),
      outcome: 'success',
      rollbackOf: b,
      details: { revision: revA, service: 'shop', rollback: { to: a, database: 'none' } },
    });
    expect(readRecord(workspace, 'production', b)).toMatchObject({ details: { inactive: true, rolledBackBy: rb.id } });
    expect(result.summary).toContain(`rollback: production back on ${a}`);
  });

  it('previous after a rollback is the release it undid: traffic goes forward to that revision', async () => {
    const from = run.requests.length;
    const result = await job.run('rollback', inputs());
    ok(result);
    expect(result.outputs['target-release-id']).toBe(b);
    const patch = run.requests.slice(from).filter((r) => r.method === 'PATCH');
    expect((patch[0]!.json as { traffic: unknown[] }).traffic).toEqual([
      { type: 'TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION', revision: revB, percent: 100 },
    ]);
    expect(run.servingRevision()).toBe(revB);
  });
});

describe('rollback action with provider heroku', () => {
  let heroku: HerokuStub;
  let job: Job;
  let workspace: string;
  const IMG = (c: string) => `sha256:${c.repeat(64)}`;
  const inputs = (extra: Record<string, string> = {}): Record<string, string> => ({
    provider: 'heroku',
    environment: 'production',
    'heroku-app': 'acme-shop',
    'health-timeout': '20s',
    'release-store': 'releases',
    ...extra,
  });

  /** A formation update as deploy makes it (PATCH /formation with docker_image): a new Heroku release. */
  async function herokuRelease(image: string): Promise<string> {
    const res = await fetch(`${heroku.server.url}/apps/acme-shop/formation`, {
      method: 'PATCH',
      headers: {
        Authorization: `Bearer ${HEROKU_KEY}`,
        Accept: 'application/vnd.heroku+json; version=3.docker-releases',
        'Content-Type': 'application/json',
      },
      body: JSON.stringify({ updates: [{ type: 'web', docker_image: image }] }),
    });
    expect(res.status).toBe(200);
    return heroku.releases.at(-1)!.id;
  }

  /** The record deploy writes after a successful heroku release. */
  function record(n: number, image: string, providerReleaseId: string): ReleaseRecord {
    const sha = String(n).repeat(40);
    const r: ReleaseRecord = {
      id: newReleaseId(sha, new Date(Date.UTC(2026, 10, 22, 6, n))),
      environment: 'production',
      provider: 'heroku',
      providerReleaseId,
      gitSha: sha,
      gitRef: 'refs/heads/main',
      image: `registry.example/shop@${image}`,
      imageDigest: image,
      url: heroku.webUrl,
      migrations: null,
      backup: null,
      actor: 'octocat',
      createdAt: new Date(Date.UTC(2026, 10, 22, 6, n)).toISOString(),
      outcome: 'success',
      rollbackOf: null,
    };
    fs.mkdirSync(path.join(workspace, 'releases', 'production'), { recursive: true });
    fs.writeFileSync(path.join(workspace, 'releases', 'production', `${r.id}.json`), JSON.stringify(r, null, 2));
    return r;
  }

  beforeAll(async () => {
    workspace = path.join(tmp, 'heroku-ws');
    fs.mkdirSync(workspace);
    heroku = new HerokuStub({ app: 'acme-shop', apiKey: HEROKU_KEY });
    const url = await heroku.start();
    job = new Job({ workspace, env: { HEROKU_API_KEY: HEROKU_KEY, SLIPWAY_HEROKU_API_URL: url } });
  });

  afterAll(async () => {
    await heroku?.stop();
  });

  it('rolls back with the Platform API (POST /releases with the old release), health-checked and recorded', async () => {
    const a = record(1, IMG('a'), await herokuRelease(IMG('a')));
    const b = record(2, IMG('b'), await herokuRelease(IMG('b')));
    const versionA = heroku.releases.find((r) => r.id === a.providerReleaseId)!.version;
    const from = heroku.requests.length;
    const result = await job.run('rollback', inputs());
    ok(result);
    const sent = heroku.requests.slice(from);
    const posts = sent.filter((r) => r.method === 'POST');
    expect(posts.map((r) => r.path)).toEqual(['/apps/acme-shop/releases']);
    expect(posts[0]!.json).toEqual({ release: a.providerReleaseId });
    for (const r of sent) {
      expect(r.headers.authorization).toBe(`Bearer ${HEROKU_KEY}`);
      expect(r.headers.accept).toMatch(/^application\/vnd\.heroku\+json; version=3/);
    }
    const now = heroku.current;
    expect(now).toMatchObject({ description: `Rollback to v${versionA}`, image: IMG('a'), status: 'succeeded' });
    const rb = readRecord(workspace, 'production', result.outputs['release-id']!);
    expect(rb).toMatchObject({
      provider: 'heroku',
      providerReleaseId: now.id,
      outcome: 'success',
      rollbackOf: b.id,
      gitSha: a.gitSha,
      details: { app: 'acme-shop', version: now.version, rollbackOf: versionA },
    });
    expect(result.outputs.url).toBe(heroku.webUrl);
    expect(result.masks).toContain(HEROKU_KEY);
    expect(result.shownLog).not.toContain(HEROKU_KEY);
  });

  it('a failed health check after the Heroku rollback fails the step and records the failure', async () => {
    await heroku.stop();
    heroku = new HerokuStub({ app: 'acme-shop', apiKey: HEROKU_KEY, unhealthyImages: [IMG('c')] });
    const url = await heroku.start();
    job = new Job({ workspace: path.join(tmp, 'heroku-ws-2'), env: { HEROKU_API_KEY: HEROKU_KEY, SLIPWAY_HEROKU_API_URL: url } });
    workspace = job.workspace;
    fs.mkdirSync(workspace);
    const c = record(3, IMG('c'), await herokuRelease(IMG('c')));
    const d = record(4, IMG('d'), await herokuRelease(IMG('d')));
    const result = await job.run('rollback', inputs({ 'health-timeout': '3s' }));
    expect(result.exitCode).toBe(1);
    // Heroku made the rollback release before the check: it serves, unhealthy; the message says so.
    expect(result.failure).toMatch(
      /^rollback failed: Health check of Heroku release v\d+ failed after \d+ attempt\(s\) in [\d.]+ s \(expected 200; last: [^)]*500[^)]*\)\. heroku already serves it: the rollback is recorded as failed and not undone; roll back to another release or fix forward\.$/,
    );
    expect(heroku.current.image).toBe(IMG('c'));
    expect(result.summary).toContain('(unhealthy)');
    const rb = readRecord(workspace, 'production', result.outputs['release-id']!);
    expect(rb).toMatchObject({ outcome: 'failure', rollbackOf: d.id, gitSha: c.gitSha });
    expect(result.summary).toContain('rollback: FAILED for production');
  });
});
