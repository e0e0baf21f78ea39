/**
 * The deploy ACTION (the built bundle, run as the runner runs it) with a cloud provider: cloud-run
 * against its Google stand-in (OAuth token from a service-account key file, Cloud Run Admin API v2),
 * release records in a directory, and Sentry's release endpoints stand-in receiving the release,
 * its commits, the deploy and the finalize. Plus the refusals that must come before anything runs.
 */
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Job, type StepResult } from '../harness/job';
import { CloudRunStub } from '../stubs/cloud-run-api';
import { SentryStub } from '../stubs/sentry-api';

const SA = 'deployer@acme-shop.iam.gserviceaccount.com';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const SENTRY_TOKEN = 'sntrys_0123456789abcdef0123456789abcdef';
const IMAGE = (c: string) => `europe-docker.pkg.dev/acme-shop/shop/web@sha256:${c.repeat(64)}`;
const SHA1 = '1'.repeat(40);
const SHA2 = '2'.repeat(40);

let tmp: string;
let workspace: string;
let run: CloudRunStub;
let sentry: SentryStub;
let sentryUrl: string;
let job: Job;

const ok = (r: StepResult) => expect(r.exitCode, r.failure ?? r.log.slice(-2000)).toBe(0);

function cloudRunInputs(extra: Record<string, string> = {}): Record<string, string> {
  return {
    provider: 'cloud-run',
    environment: 'production',
    'app-name': 'shop',
    'gcp-project': 'acme-shop',
    'gcp-region': 'europe-west1',
    'cloud-run-service': 'shop',
    env: 'DJANGO_SETTINGS_MODULE=shop.settings\nDJANGO_SECRET_KEY=s3cr3t-value-for-the-test',
    secrets: 'DATABASE_URL=shop-db-url:3',
    'health-timeout': '20s',
    'release-store': 'releases',
    'sentry-auth-token': SENTRY_TOKEN,
    'sentry-org': 'acme',
    'sentry-project': 'shop',
    'sentry-url': sentryUrl,
    ...extra,
  };
}

function record(id: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(workspace, 'releases', 'production', `${id}.json`), 'utf8')) as Record<string, unknown>;
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-deploy-cloud-'));
  workspace = path.join(tmp, 'ws');
  fs.mkdirSync(workspace);
  run = new CloudRunStub({
    project: 'acme-shop',
    region: 'europe-west1',
    service: 'shop',
    initialRevision: 'shop-00001-abc',
    initialImage: IMAGE('0'),
    serviceAccountPublicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    serviceAccountEmail: SA,
    operationPolls: 1,
  });
  const runUrl = await run.start();
  sentry = new SentryStub({ token: SENTRY_TOKEN, org: 'acme', projects: ['shop'], repositories: ['acme/shop'] });
  sentryUrl = await sentry.start();
  // What google-github-actions/auth leaves: a credentials file (here a service-account key whose
  // token_uri is the stand-in's OAuth endpoint).
  const key = path.join(tmp, 'gha-creds.json');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  fs.writeFileSync(
    key,
    JSON.stringify({ type: 'service_account', project_id: 'acme-shop', private_key: pem, client_email: SA, token_uri: `${runUrl}/token` }),
    { mode: 0o600 },
  );
  job = new Job({ workspace, env: { GOOGLE_APPLICATION_CREDENTIALS: key, CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN: runUrl } });
});

afterAll(async () => {
  await run?.stop();
  await sentry?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('deploy action with provider cloud-run and Sentry', () => {
  let first: string;

  it('deploys a revision, records it, and publishes the Sentry release (create, commits, deploy, finalize)', async () => {
    const result = await job.run('deploy', cloudRunInputs({ image: IMAGE('a') }), { env: { GITHUB_SHA: SHA1 } });
    ok(result);
    first = result.outputs['release-id']!;
    const revision = run.servingRevision()!;
    expect(revision).toMatch(/^shop-/);
    expect(run.revisions.get(revision)?.image).toBe(IMAGE('a'));
    // The revision carries env values and the Secret Manager reference, never the secret's value.
    expect(run.revisions.get(revision)?.env).toEqual(
      expect.arrayContaining([
        { name: 'DJANGO_SETTINGS_MODULE', value: 'shop.settings' },
        { name: 'DATABASE_URL', valueSource: { secretKeyRef: { secret: 'shop-db-url', version: '3' } } },
      ]),
    );
    expect(result.outputs.url).toBe(await run.web.url('shop'));
    expect(result.outputs['previous-release-id']).toBe('');
    expect(record(first)).toMatchObject({
      provider: 'cloud-run',
      providerReleaseId: revision,
      outcome: 'success',
      gitSha: SHA1,
      image: IMAGE('a'),
      url: result.outputs.url,
    });

    const base = '/api/0/organizations/acme/releases/';
    const reqs = sentry.requests;
    expect(reqs.map((r) => `${r.method} ${r.path}`)).toEqual([
      `POST ${base}`,
      `PUT ${base}${SHA1}/`,
      `POST ${base}${SHA1}/deploys/`,
      `PUT ${base}${SHA1}/`,
    ]);
    for (const r of reqs) {
      expect(r.headers.authorization).toBe(`Bearer ${SENTRY_TOKEN}`);
      expect(r.headers['content-type']).toBe('application/json');
    }
    expect(reqs[0]!.json).toEqual({ version: SHA1, projects: ['shop'] });
    expect(reqs[1]!.json).toEqual({ refs: [{ repository: 'acme/shop', commit: SHA1 }] });
    expect(reqs[2]!.json).toMatchObject({ environment: 'production', name: first, url: result.outputs.url });
    expect(Date.parse((reqs[2]!.json as { dateFinished: string }).dateFinished)).not.toBeNaN();
    expect(Object.keys(reqs[3]!.json as object)).toEqual(['dateReleased']);
    expect(sentry.releases.get(SHA1)?.projects).toEqual(['shop']);
    expect(Date.parse(sentry.releases.get(SHA1)?.dateReleased ?? '')).not.toBeNaN();
    expect(sentry.releases.get(SHA1)!.deploys).toHaveLength(1);

    expect(result.masks).toContain(SENTRY_TOKEN);
    expect(result.shownLog).not.toContain(SENTRY_TOKEN);
    expect(result.shownLog).not.toContain('s3cr3t-value-for-the-test');
    expect(result.shownLog).toContain(`Sentry: release ${SHA1} created, deploy to production recorded, finalized.`);
    expect(result.summary).toContain(`release ${SHA1}, deploy to production (shop)`);
    expect(result.annotations.filter((a) => a.level !== 'notice')).toEqual([]);
  });

  it('a second deploy names the previous release and sends Sentry the commit range from it', async () => {
    sentry.requests.length = 0;
    const result = await job.run('deploy', cloudRunInputs({ image: IMAGE('b') }), { env: { GITHUB_SHA: SHA2 } });
    ok(result);
    expect(result.outputs['previous-release-id']).toBe(first);
    expect(run.revisions.get(run.servingRevision()!)?.image).toBe(IMAGE('b'));
    const refs = sentry.requests.find((r) => r.method === 'PUT' && (r.json as { refs?: unknown }).refs);
    expect(refs?.json).toEqual({ refs: [{ repository: 'acme/shop', commit: SHA2, previousCommit: SHA1 }] });
    expect(sentry.releases.get(SHA2)?.deploys[0]).toMatchObject({ environment: 'production', name: result.outputs['release-id'] });
  });

  it('a Sentry failure is a warning: the deploy succeeded, is recorded and serves', async () => {
    sentry.requests.length = 0;
    const result = await job.run('deploy', cloudRunInputs({ image: IMAGE('c'), 'sentry-project': 'not-in-sentry' }), {
      env: { GITHUB_SHA: '3'.repeat(40) },
    });
    ok(result);
    expect(record(result.outputs['release-id']!)).toMatchObject({ outcome: 'success' });
    expect(run.revisions.get(run.servingRevision()!)?.image).toBe(IMAGE('c'));
    const warnings = result.annotations.filter((a) => a.level === 'warning').map((a) => a.message);
    expect(warnings).toEqual([
      expect.stringMatching(/^Sentry: create release 3{40}: HTTP 400 — .*; the deploy itself succeeded and is recorded\.$/),
    ]);
    expect(sentry.requests).toHaveLength(1);
    expect(result.summary).toContain('failed (see warning)');
  });
});

describe('deploy action refusals before anything runs', () => {
  const untouched = async (inputs: Record<string, string>, message: string) => {
    const runBefore = run.requests.length;
    const sentryBefore = sentry.requests.length;
    const recordsBefore = fs.readdirSync(path.join(workspace, 'releases', 'production')).length;
    const result = await job.run('deploy', inputs, { env: { GITHUB_SHA: '4'.repeat(40) } });
    expect(result.exitCode).not.toBe(0);
    expect(result.failure).toBe(`deploy failed: ${message}`); // the entry prefixes the action name
    expect(result.shownLog).not.toMatch(/\n\s+at /); // no stack trace
    expect(run.requests.length).toBe(runBefore);
    expect(sentry.requests.length).toBe(sentryBefore);
    expect(fs.readdirSync(path.join(workspace, 'releases', 'production')).length).toBe(recordsBefore);
  };

  it('provider heroku without an API key: one line naming the input and the variable', async () => {
    await untouched(
      { provider: 'heroku', environment: 'production', image: IMAGE('d'), 'heroku-app': 'acme-shop', 'release-store': 'releases' },
      'provider heroku needs an API key: set input `heroku-api-key` or HEROKU_API_KEY (from a secret).',
    );
  });

  it('a Sentry token without an organization is refused up front', async () => {
    await untouched(
      cloudRunInputs({ image: IMAGE('d'), 'sentry-org': '' }),
      'Input `sentry-org` is required with `sentry-auth-token` (the organization slug, or set SENTRY_ORG).',
    );
  });
});
