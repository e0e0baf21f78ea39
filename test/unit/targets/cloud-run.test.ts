import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CloudRunProvider,
  parseSecrets,
  readCloudRunSettings,
  revisionName,
  type CloudRunSettings,
} from '../../../packages/targets/src/cloud-run';
import { googleAccessToken } from '../../../packages/targets/src/gcp-auth';
import { CloudRunStub } from '../../stubs/cloud-run-api';
import { deployContext, withInputs } from './cloud-helpers';

const SA = 'deployer@acme-shop.iam.gserviceaccount.com';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PRIVATE_PEM = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const PUBLIC_PEM = publicKey.export({ type: 'spki', format: 'pem' }).toString();
const OIDC = 'eyJhbGciOiJSUzI1NiJ9.github-oidc-token.sig';
const AUDIENCE = '//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/github/providers/acme';
const GOOD = 'europe-docker.pkg.dev/acme-shop/shop/web@sha256:' + 'a'.repeat(64);
const BAD = 'europe-docker.pkg.dev/acme-shop/shop/web@sha256:' + 'b'.repeat(64);

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-gcp-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function stubOptions() {
  return {
    project: 'acme-shop',
    region: 'europe-west1',
    service: 'shop',
    initialRevision: 'shop-00001-abc',
    initialImage: 'europe-docker.pkg.dev/acme-shop/shop/web@sha256:' + '0'.repeat(64),
    serviceAccountPublicKey: PUBLIC_PEM,
    serviceAccountEmail: SA,
    oidcToken: OIDC,
    oidcRequestToken: 'gh-request-token-123',
    stsAudience: AUDIENCE,
    unhealthyImages: [BAD],
  };
}

function serviceAccountFile(stub: CloudRunStub): string {
  const file = path.join(tmp, `sa-${Math.random()}.json`);
  const key = {
    type: 'service_account',
    project_id: 'acme-shop',
    private_key_id: 'k1',
    private_key: PRIVATE_PEM,
    client_email: SA,
    token_uri: `${stub.server.url}/token`,
  };
  fs.writeFileSync(file, JSON.stringify(key), { mode: 0o600 });
  return file;
}

describe('Google credentials from google-github-actions/auth files', () => {
  let stub: CloudRunStub;
  beforeEach(async () => {
    stub = new CloudRunStub(stubOptions());
    await stub.start();
  });
  afterEach(() => stub.stop());

  it('service account key: an RS256 JWT the token endpoint verifies with the public key', async () => {
    const token = await googleAccessToken({ GOOGLE_APPLICATION_CREDENTIALS: serviceAccountFile(stub) });
    expect(stub.issuedTokens.has(token.accessToken)).toBe(true);
    expect(token).toMatchObject({ source: `service account ${SA}`, projectId: 'acme-shop' });
    const [req] = stub.server.find('POST', '/token');
    expect(req!.headers['content-type']).toBe('application/x-www-form-urlencoded');
    const form = new URLSearchParams(req!.body.toString());
    expect(form.get('grant_type')).toBe('urn:ietf:params:oauth:grant-type:jwt-bearer');
    const claims = JSON.parse(Buffer.from(form.get('assertion')!.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    expect(claims).toMatchObject({ iss: SA, aud: `${stub.server.url}/token`, scope: 'https://www.googleapis.com/auth/cloud-platform' });
  });

  it('a key signed by another private key is refused by the token endpoint', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const file = path.join(tmp, 'other.json');
    fs.writeFileSync(
      file,
      JSON.stringify({ type: 'service_account', private_key: other, client_email: SA, token_uri: `${stub.server.url}/token` }),
    );
    await expect(googleAccessToken({ GOOGLE_GHA_CREDS_PATH: file })).rejects.toThrow(
      `Google OAuth token for ${SA}: HTTP 400 — Invalid JWT Signature.`,
    );
  });

  it('external_account: OIDC subject token → STS exchange → service account impersonation', async () => {
    const file = path.join(tmp, 'wif.json');
    fs.writeFileSync(
      file,
      JSON.stringify({
        type: 'external_account',
        audience: AUDIENCE,
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        token_url: `${stub.server.url}/v1/token`,
        service_account_impersonation_url: `${stub.server.url}/v1/projects/-/serviceAccounts/${SA}:generateAccessToken`,
        credential_source: {
          url: `${stub.server.url}/oidc?audience=${encodeURIComponent(AUDIENCE)}`,
          headers: { Authorization: 'Bearer gh-request-token-123' },
          format: { type: 'json', subject_token_field_name: 'value' },
        },
      }),
    );
    const token = await googleAccessToken({ GOOGLE_GHA_CREDS_PATH: file });
    expect(token.source).toBe(`workload identity pool github as ${SA}`);
    expect(stub.issuedTokens.has(token.accessToken)).toBe(true);
    const [sts] = stub.server.find('POST', '/v1/token');
    expect(new URLSearchParams(sts!.body.toString()).get('subject_token')).toBe(OIDC);
    const [imp] = stub.server.find('POST', /generateAccessToken$/);
    expect(imp!.json).toEqual({ scope: ['https://www.googleapis.com/auth/cloud-platform'], lifetime: '3600s' });
    expect(stub.stsTokens.has(imp!.headers.authorization!.slice('Bearer '.length))).toBe(true);
  });

  it('no credentials: one line naming what to set', async () => {
    await expect(googleAccessToken({})).rejects.toThrow(
      'provider cloud-run needs Google credentials: run google-github-actions/auth before this step (it sets GOOGLE_APPLICATION_CREDENTIALS), or set input `gcp-access-token`.',
    );
  });
});

describe('cloud-run provider against the Admin API v2 stand-in', () => {
  let stub: CloudRunStub;
  let settings: CloudRunSettings;
  let saved: string | undefined;
  beforeEach(async () => {
    stub = new CloudRunStub(stubOptions());
    await stub.start();
    saved = process.env.GOOGLE_APPLICATION_CREDENTIALS;
    process.env.GOOGLE_APPLICATION_CREDENTIALS = serviceAccountFile(stub);
    settings = {
      project: 'acme-shop',
      region: 'europe-west1',
      service: 'shop',
      noTraffic: false,
      revisionTag: '',
      secrets: parseSecrets(['DATABASE_URL=shop-db-url:3']),
      tokenInput: '',
      apiBase: stub.server.url,
      timeoutMs: 20_000,
    };
  });
  afterEach(async () => {
    if (saved === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    else process.env.GOOGLE_APPLICATION_CREDENTIALS = saved;
    await stub.stop();
  });

  const patches = () => stub.server.find('PATCH', `/v2/${stub.serviceName}`);

  it('creates a tagged revision with no traffic, checks it, then moves 100% to it', async () => {
    const ctx = deployContext({ image: GOOD });
    const result = await new CloudRunProvider(settings).deploy(ctx);
    const revision = revisionName('shop', ctx.releaseId);
    expect(result.providerReleaseId).toBe(revision);
    expect(result.url).toBe(await stub.web.url('shop'));
    const [stage, live] = patches();
    expect(stage!.headers.authorization).toMatch(/^Bearer ya29\./);
    expect(stage!.headers['content-type']).toBe('application/json');
    const body = stage!.json as { template: { revision: string; containers: { image: string; env: unknown[] }[] }; traffic: unknown[] };
    expect(body.template.revision).toBe(revision);
    expect(body.template.containers[0]!.image).toBe(GOOD);
    expect(body.template.containers[0]!.env).toEqual([
      { name: 'DJANGO_SETTINGS_MODULE', value: 'shop.settings' },
      { name: 'SECRET_KEY', value: 's3cr3t-value' },
      { name: 'DATABASE_URL', valueSource: { secretKeyRef: { secret: 'shop-db-url', version: '3' } } },
    ]);
    expect(body.traffic).toEqual([
      { type: 'TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION', revision: 'shop-00001-abc', percent: 100 },
      { type: 'TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION', revision, percent: 0, tag: 'slipway-a1f' },
    ]);
    expect((live!.json as { traffic: unknown[] }).traffic).toEqual([
      { type: 'TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION', revision, percent: 100 },
    ]);
    // the tag URL was checked before any traffic moved; operations were polled until done
    expect(stub.web.requests('slipway-a1f---shop').map((r) => r.path)).toEqual(['/healthz']);
    expect(stub.server.find('GET', /\/operations\//).length).toBeGreaterThanOrEqual(2);
    expect(stub.servingRevision()).toBe(revision);
  });

  it('a revision failing its check never serves; its tag is removed', async () => {
    const error = (await new CloudRunProvider(settings)
      .deploy(deployContext({ image: BAD, health: { path: '/healthz', expectedStatus: 200, timeoutMs: 1200 } }))
      .catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(/^Health check of Cloud Run revision shop-20261122-023400-abc1234-a1f failed/);
    expect(stub.servingRevision()).toBe('shop-00001-abc');
    expect(stub.service.traffic).toEqual([{ type: 'TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION', revision: 'shop-00001-abc', percent: 100 }]);
  });

  it('no-traffic + revision-tag: the tagged revision is left for promotion; the old one serves', async () => {
    const result = await new CloudRunProvider({ ...settings, noTraffic: true, revisionTag: 'candidate' }).deploy(
      deployContext({ image: GOOD }),
    );
    expect(result.url).toBe(await stub.web.url('candidate---shop'));
    expect(patches()).toHaveLength(1);
    expect(stub.servingRevision()).toBe('shop-00001-abc');
  });

  it('activate(): 100% back to the recorded revision, tags cleared', async () => {
    const provider = new CloudRunProvider({ ...settings, revisionTag: 'live' });
    const first = await provider.deploy(deployContext({ image: GOOD }));
    expect(stub.service.traffic).toEqual([
      { type: 'TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION', revision: first.providerReleaseId, percent: 100, tag: 'live' },
    ]);
    const result = await provider.activate({ providerReleaseId: 'shop-00001-abc' } as never, {
      environment: 'production',
      appName: 'shop',
      health: { path: '/healthz', expectedStatus: 200, timeoutMs: 3000 },
      log: () => undefined,
    });
    expect(result.providerReleaseId).toBe('shop-00001-abc');
    expect((patches().at(-1)!.json as { traffic: unknown[] }).traffic).toEqual([
      { type: 'TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION', revision: 'shop-00001-abc', percent: 100 },
    ]);
    expect(stub.service.traffic.some((t) => t.tag)).toBe(false);
    expect(await provider.currentRelease()).toBe('shop-00001-abc');
  });
});

describe('cloud-run settings', () => {
  let restore: () => void = () => undefined;
  afterEach(() => restore());

  it.each([
    [{}, 'Input `gcp-project` is required with provider cloud-run (or let google-github-actions/auth set GOOGLE_CLOUD_PROJECT).'],
    [{ 'gcp-project': 'acme-shop' }, 'Input `gcp-region` is required with provider cloud-run (e.g. europe-west1).'],
    [
      { 'gcp-project': 'acme-shop', 'gcp-region': 'europe-west1' },
      'Input `cloud-run-service` is required with provider cloud-run (the service name).',
    ],
    [
      { 'gcp-project': 'acme-shop', 'gcp-region': 'europe-west1', 'cloud-run-service': 'shop', 'no-traffic': 'true' },
      'Input `no-traffic: true` needs `revision-tag` (the URL to reach the new revision by).',
    ],
    [
      { 'gcp-project': 'acme-shop', 'gcp-region': 'europe-west1', 'cloud-run-service': 'shop', secrets: '/etc/secret=s:1' },
      'mounting secrets as files is not supported',
    ],
  ])('%j → %s', (inputs, message) => {
    restore = withInputs(inputs);
    expect(() => readCloudRunSettings({})).toThrow(message);
  });

  it.each([
    ['A=name', { env: 'A', secret: 'name', version: 'latest' }],
    ['A=name:7', { env: 'A', secret: 'name', version: '7' }],
    ['A=projects/p/secrets/name/versions/2', { env: 'A', secret: 'projects/p/secrets/name', version: '2' }],
  ])('secret %s', (line, ref) => {
    expect(parseSecrets([line])).toEqual([ref]);
  });
});
