/**
 * build-image's logins to Amazon ECR, Google Artifact Registry and DigitalOcean Container
 * Registry, end to end: the committed bundle pushes a tiny image to a real registry (Debian's
 * docker-registry) serving those registries' own host names over TLS with a throwaway CA that
 * dockerd verifies (test/itg/tls-registry.ts), and htpasswd users as each cloud names them.
 *  - ECR without a password: the real AWS CLI v1 (awscli from PyPI) runs `aws ecr
 *    get-login-password` against an ECR stand-in (test/stand-ins/ecr.ts) that checks the SigV4
 *    signature and the operation against botocore's service model and mints the password;
 *    refused (AccessDeniedException): one line naming ECR and the fix, nothing pushed.
 *  - GAR with an access token (what google-github-actions/auth gives): user oauth2accesstoken.
 *    Without a password the action runs `gcloud auth print-access-token`: the real Cloud SDK
 *    where the machine has one (google-cloud-cli is not in Debian, PyPI or npm: test-env cannot
 *    install it, the case is skipped without it) with a service-account key as
 *    google-github-actions/auth leaves it (CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE), its token
 *    host pointed at the OAuth stand-in that verifies the RS256 JWT-bearer assertion; and with
 *    no gcloud on PATH, one line.
 *  - DOCR: the API token as user name and password, written to the docker config, never on argv.
 * Each pushed manifest is fetched back by digest with the cloud's credentials; the post step
 * logs out (the docker config no longer holds the auth). /proc/*\/cmdline is sampled during
 * every step: no password or token on any command line.
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, Job, type StepResult } from '../harness/job';
import { preparedVenv } from '../harness/python-env';
import { ensureServices } from '../harness/services';
import { withArgvSampler, type ArgvSampler } from '../security/argv-sampler';
import { EcrStub } from '../stand-ins/ecr';
import { CloudRunStub } from '../stubs/cloud-run-api';
import { TlsRegistry } from './tls-registry';

const ECR = '123456789012.dkr.ecr.us-east-1.amazonaws.com';
const GAR = 'us-docker.pkg.dev';
const DOCR = 'registry.digitalocean.com';
const RUN = randomBytes(4).toString('hex');
const ECR_PASSWORD = `eyJwYXlsb2FkIjoi${randomBytes(24).toString('hex')}`;
const GAR_TOKEN = `ya29.a0Af${randomBytes(24).toString('hex')}`;
const DO_TOKEN = `dop_v1_${randomBytes(32).toString('hex')}`;
const AWS_KEY_ID = 'AKIAIOSFODNN7CLOGINS';
const AWS_SECRET = `itg/${randomBytes(18).toString('base64')}`;
const MANIFEST_TYPES = 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json';

let env: Record<string, string> = {};
let registry: TlsRegistry;
let ecr: EcrStub;
let awsBin = '';
let google: CloudRunStub;
const SA_EMAIL = 'ci-push@acme-prod.iam.gserviceaccount.com';
const saKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const HAS_GCLOUD = spawnSync('sh', ['-c', 'command -v gcloud'], { encoding: 'utf8' }).status === 0;
const cleanup: (() => void | Promise<void>)[] = [];

function dockerCli(args: string[]): void {
  spawnSync('docker', args, { env: { ...process.env, ...env }, stdio: 'ignore' });
}

beforeAll(async () => {
  env = process.env.SLIPWAY_TEST_SERVICES_UP
    ? { DOCKER_HOST: 'unix:///var/run/docker.sock', DOCKER_BUILDKIT: '0' }
    : ensureServices(['docker', 'base-image']);
  delete env.PATH; // the job's PATH is the host's plus what steps add (the AWS CLI here)
  const venv = preparedVenv([path.join(REPO_ROOT, 'test/stubs/awscli-requirements.txt')]);
  awsBin = path.join(venv, 'bin');
  const model = fs
    .readdirSync(path.join(venv, 'lib'))
    .map((py) => path.join(venv, 'lib', py, 'site-packages/awscli/botocore/data/ecr/2015-09-21/service-2.json'))
    .find((p) => fs.existsSync(p));
  if (!model) throw new Error(`no ECR service model in ${venv}`);
  ecr = new EcrStub({
    accessKeyId: AWS_KEY_ID,
    secretAccessKey: AWS_SECRET,
    region: 'us-east-1',
    account: '123456789012',
    password: ECR_PASSWORD,
    serviceModelPath: model,
  });
  await ecr.start();
  cleanup.push(() => ecr.stop());
  // Google's OAuth token endpoint (the Cloud Run stand-in's): it hands out the registry's token.
  google = new CloudRunStub({
    project: 'acme-prod',
    region: 'us-central1',
    service: 'unused',
    initialRevision: 'unused-1',
    initialImage: 'unused',
    serviceAccountEmail: SA_EMAIL,
    serviceAccountPublicKey: saKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    mintToken: () => GAR_TOKEN,
  });
  await google.start();
  cleanup.push(() => google.stop());
  registry = new TlsRegistry({
    hosts: [ECR, GAR, DOCR],
    users: { AWS: ECR_PASSWORD, oauth2accesstoken: GAR_TOKEN, [DO_TOKEN]: DO_TOKEN },
  });
  cleanup.push(() => registry.stop());
  await registry.start();
}, 300_000);

afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

/** A project of one Dockerfile on the local base image: builds in a second. */
function tinyProject(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-ws-logins-'));
  fs.writeFileSync(path.join(dir, 'Dockerfile'), `FROM python:3.11-slim\nLABEL itg.run="${RUN}"\nCMD ["python", "-c", "print('ok')"]\n`);
  return dir;
}

interface Case {
  job: Job;
  step: StepResult;
  sampler: ArgvSampler;
  image: string;
}

async function buildAndPush(
  image: string,
  inputs: Record<string, string>,
  stepEnv: Record<string, string> = {},
  awsCli = false,
): Promise<Case> {
  const job = new Job({ workspace: tinyProject(), env });
  if (awsCli) job.path.push(awsBin);
  const { result: step, sampler } = await withArgvSampler(() =>
    job.run('build-image', { image, tags: 'itg', push: 'true', 'smoke-test': 'false', ...inputs }, { env: stepEnv, timeoutMs: 120_000 }),
  );
  cleanup.push(() => dockerCli(['rmi', '--force', `${image}:itg`, `${image}:main`, `${image}:latest`, `${image}:sha-0123456`]));
  if (step.exitCode !== 0) console.log(step.log.slice(-4000));
  return { job, step, sampler, image };
}

function dockerAuths(job: Job): Record<string, { auth?: string }> {
  const file = path.join(job.home, '.docker', 'config.json');
  if (!fs.existsSync(file)) return {};
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { auths?: Record<string, { auth?: string }> }).auths ?? {};
}

/** The pushed manifest, fetched by digest with the cloud's credentials; anonymous is refused. */
async function expectPushed(c: Case, host: string, user: string, password: string): Promise<void> {
  expect(c.step.exitCode).toBe(0);
  const digest = c.step.outputs.digest!;
  expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/);
  expect(c.step.outputs.image).toBe(`${c.image}@${digest}`);
  const name = c.image.slice(host.length + 1);
  const res = await registry.get(host, `/v2/${name}/manifests/${digest}`, user, password, MANIFEST_TYPES);
  expect(res.status).toBe(200);
  expect(res.headers['docker-content-digest']).toBe(digest);
  expect(JSON.parse(res.body)).toMatchObject({ schemaVersion: 2 });
  expect((await registry.get(host, `/v2/${name}/manifests/${digest}`, user, 'wrong', MANIFEST_TYPES)).status).toBe(401);
}

/** The first secret masked; none on any command line of the machine while the step ran, none in the shown log. */
function expectNeverShown(c: Case, ...secrets: string[]): void {
  expect(c.sampler.samples).toBeGreaterThan(5);
  expect(c.step.masks).toContain(secrets[0]);
  for (const secret of secrets) {
    for (const line of c.sampler.seen) expect(line.includes(secret), `on argv: ${line.slice(0, 200)}`).toBe(false);
    expect(c.step.shownLog).not.toContain(secret);
  }
}

async function expectLoggedOut(c: Case, host: string): Promise<void> {
  expect(Object.keys(dockerAuths(c.job))).toContain(host);
  const { result: post, sampler } = await withArgvSampler(() => c.job.post());
  expect(post[0]!.exitCode).toBe(0);
  expect(post[0]!.log).toContain(`Logged out of ${host}`);
  expect(Object.keys(dockerAuths(c.job))).not.toContain(host);
  for (const line of sampler.seen) expect(line).not.toMatch(new RegExp(`${ECR_PASSWORD}|${GAR_TOKEN}|${DO_TOKEN}`));
}

describe('build-image logs in to cloud registries and pushes', () => {
  it('Amazon ECR: the AWS CLI gets the password from ECR (SigV4 checked), docker login takes it on stdin', async () => {
    const image = `${ECR}/slipway-itg/logins-${RUN}`;
    const before = ecr.requests.length;
    const c = await buildAndPush(
      image,
      {},
      {
        AWS_ACCESS_KEY_ID: AWS_KEY_ID,
        AWS_SECRET_ACCESS_KEY: AWS_SECRET,
        AWS_ENDPOINT_URL_ECR: ecr.server.url,
        AWS_EC2_METADATA_DISABLED: 'true',
      },
      true,
    );
    // One GetAuthorizationToken, signed for us-east-1/ecr with the job's key, as the model says.
    const calls = ecr.requests.slice(before);
    expect(ecr.signatureFailures).toEqual([]);
    expect(calls).toHaveLength(1);
    const call = calls[0]!;
    expect(call.headers['x-amz-target']).toBe('AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken');
    expect(call.headers['content-type']).toBe('application/x-amz-json-1.1');
    expect(call.headers.authorization).toMatch(
      new RegExp(
        `^AWS4-HMAC-SHA256 Credential=${AWS_KEY_ID}/\\d{8}/us-east-1/ecr/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=`,
      ),
    );
    expect(call.headers['user-agent']).toMatch(/^aws-cli\/1\./);
    expect(call.json).toEqual({});
    await expectPushed(c, ECR, 'AWS', ECR_PASSWORD);
    expect(c.step.log).toContain(`Logged in to ${ECR} as AWS`);
    // The real CLI ran, and docker login read the password from stdin.
    const argv = [...c.sampler.seen];
    expect(argv.some((l) => /\/aws ecr get-login-password --region us-east-1$/.test(l))).toBe(true);
    expect(argv.some((l) => l.endsWith(`docker login --username AWS --password-stdin ${ECR}`))).toBe(true);
    expectNeverShown(c, ECR_PASSWORD, AWS_SECRET);
    expect(c.step.log).not.toContain(AWS_SECRET);
    await expectLoggedOut(c, ECR);
  });

  it('Amazon ECR refuses (AccessDeniedException): one line naming ECR and the fix, no token, nothing pushed', async () => {
    const image = `${ECR}/slipway-itg/denied-${RUN}`;
    ecr.deny = true;
    let c: Case;
    try {
      c = await buildAndPush(
        image,
        {},
        {
          AWS_ACCESS_KEY_ID: AWS_KEY_ID,
          AWS_SECRET_ACCESS_KEY: AWS_SECRET,
          AWS_ENDPOINT_URL: ecr.server.url,
          AWS_EC2_METADATA_DISABLED: 'true',
        },
        true,
      );
    } finally {
      ecr.deny = false;
    }
    expect(c.step.exitCode).toBe(1);
    expect(ecr.signatureFailures).toEqual([]);
    const failure = c.step.failure ?? '';
    expect(failure).not.toContain('\n');
    expect(failure).toMatch(
      /^build-image failed: Could not get a password for Amazon ECR: `aws ecr get-login-password --region us-east-1` exited with code \d+: .*AccessDeniedException.*ecr:GetAuthorizationToken/,
    );
    expect(failure).toContain('aws-actions/configure-aws-credentials');
    expect(failure).toContain('`registry-password`');
    expect(c.step.log).not.toContain(ECR_PASSWORD);
    expect(c.step.log).not.toContain(AWS_SECRET);
    expect(c.step.log).not.toMatch(/Building|Pushing/);
    const tags = await registry.get(ECR, `/v2/slipway-itg/denied-${RUN}/tags/list`, 'AWS', ECR_PASSWORD);
    expect(tags.status).toBe(404);
    expect(dockerAuths(c.job)).toEqual({});
    const post = await c.job.post();
    expect(post[0]!.exitCode).toBe(0);
  });

  it('Google Artifact Registry: an access token as registry-password logs in as oauth2accesstoken', async () => {
    const image = `${GAR}/acme-prod/shop/logins-${RUN}`;
    const c = await buildAndPush(image, { 'registry-password': GAR_TOKEN });
    await expectPushed(c, GAR, 'oauth2accesstoken', GAR_TOKEN);
    expect(c.step.log).toContain(`Logged in to ${GAR} as oauth2accesstoken`);
    expect([...c.sampler.seen].some((l) => l.endsWith(`docker login --username oauth2accesstoken --password-stdin ${GAR}`))).toBe(true);
    expectNeverShown(c, GAR_TOKEN);
    await expectLoggedOut(c, GAR);
  });

  it.skipIf(!HAS_GCLOUD)(
    'Google Artifact Registry without a password: the real gcloud prints a token from a service-account key',
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-gcloud-'));
      cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
      const keyFile = path.join(dir, 'key.json');
      fs.writeFileSync(
        keyFile,
        JSON.stringify({
          type: 'service_account',
          project_id: 'acme-prod',
          private_key_id: randomBytes(20).toString('hex'),
          private_key: saKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
          client_email: SA_EMAIL,
          client_id: '104030201',
          token_uri: `${google.server.url}/token`,
        }),
        { mode: 0o600 },
      );
      const before = google.requests.length;
      const image = `${GAR}/acme-prod/shop/gcloud-${RUN}`;
      const c = await buildAndPush(
        image,
        {},
        {
          CLOUDSDK_CONFIG: path.join(dir, 'gcloud'),
          CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE: keyFile,
          GOOGLE_APPLICATION_CREDENTIALS: keyFile,
          CLOUDSDK_CORE_PROJECT: 'acme-prod',
          CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
          CLOUDSDK_AUTH_TOKEN_HOST: `${google.server.url}/token`,
        },
      );
      // jwt-bearer grants whose RS256 assertions the stand-in verified: gcloud's ID token, then the
      // access token for cloud-platform, which is what the registry accepts.
      const grants = google.requests.slice(before).filter((r) => r.path === '/token');
      const claims = grants.map((g) => {
        const form = new URLSearchParams(g.body.toString());
        expect(form.get('grant_type')).toBe('urn:ietf:params:oauth:grant-type:jwt-bearer');
        return JSON.parse(Buffer.from(form.get('assertion')!.split('.')[1]!, 'base64url').toString()) as { iss: string; scope?: string };
      });
      expect(claims.filter((c) => c.scope?.split(' ').includes('https://www.googleapis.com/auth/cloud-platform'))).toHaveLength(1);
      expect(claims.every((c) => c.iss === SA_EMAIL)).toBe(true);
      expect(google.issuedTokens.has(GAR_TOKEN)).toBe(true);
      await expectPushed(c, GAR, 'oauth2accesstoken', GAR_TOKEN);
      expect(c.step.log).toContain(`Logged in to ${GAR} as oauth2accesstoken`);
      const argv = [...c.sampler.seen];
      expect(argv.some((l) => /gcloud(\.py)? auth print-access-token$/.test(l))).toBe(true);
      expect(argv.some((l) => l.endsWith(`docker login --username oauth2accesstoken --password-stdin ${GAR}`))).toBe(true);
      expectNeverShown(c, GAR_TOKEN);
      await expectLoggedOut(c, GAR);
    },
  );

  it('Google Artifact Registry without a password and no gcloud on PATH: one line naming gcloud and the fix', async () => {
    // A runner without the Cloud SDK: PATH holds docker only (this machine has gcloud in /usr/bin).
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-bin-'));
    fs.symlinkSync(spawnSync('sh', ['-c', 'command -v docker'], { encoding: 'utf8' }).stdout.trim(), path.join(bin, 'docker'));
    cleanup.push(() => fs.rmSync(bin, { recursive: true, force: true }));
    const job = new Job({ workspace: tinyProject(), env });
    const step = await job.run(
      'build-image',
      { image: `${GAR}/acme-prod/shop/nogcloud-${RUN}`, push: 'true', 'smoke-test': 'false' },
      { env: { PATH: bin } },
    );
    expect(step.exitCode).toBe(1);
    expect(step.failure).toBe(
      'build-image failed: Could not get a password for Google Artifact Registry: `gcloud auth print-access-token` could not run (gcloud is not on PATH); authenticate gcloud first (google-github-actions/auth and setup-gcloud), or pass an access token as `registry-password`.',
    );
  });

  it('DigitalOcean: the API token as user name and password, never on argv, masked; post logs out', async () => {
    const image = `${DOCR}/acme/logins-${RUN}`;
    const c = await buildAndPush(image, { 'registry-password': DO_TOKEN });
    await expectPushed(c, DOCR, DO_TOKEN, DO_TOKEN);
    expect(c.step.log).toContain(`Logged in to ${DOCR} as ***`);
    expect(Buffer.from(dockerAuths(c.job)[DOCR]!.auth!, 'base64').toString()).toBe(`${DO_TOKEN}:${DO_TOKEN}`);
    expect(fs.statSync(path.join(c.job.home, '.docker', 'config.json')).mode & 0o777).toBe(0o600);
    expect([...c.sampler.seen].some((l) => l.includes(`docker push ${image}:itg`))).toBe(true);
    expectNeverShown(c, DO_TOKEN, Buffer.from(`${DO_TOKEN}:${DO_TOKEN}`).toString('base64'));
    await expectLoggedOut(c, DOCR);
  });

  it('DigitalOcean refuses the token: one line before the build, the token nowhere, nothing pushed, post removes the auth', async () => {
    const wrong = `dop_v1_${randomBytes(32).toString('hex')}`;
    const image = `${DOCR}/acme/refused-${RUN}`;
    const c = await buildAndPush(image, { 'registry-password': wrong });
    expect(c.step.exitCode).toBe(1);
    expect(c.step.failure).toBe(
      `build-image failed: Login to ${DOCR} as *** failed: Error response from daemon: login attempt to https://${DOCR}/v2/ failed with status: 401 Unauthorized`,
    );
    expect(c.step.log).not.toMatch(/Building|Pushing/);
    expect(c.step.log.split(wrong).length - 1).toBe(c.step.log.split(`::add-mask::${wrong}`).length - 1);
    expectNeverShown(c, wrong);
    expect((await registry.get(DOCR, `/v2/acme/refused-${RUN}/tags/list`, DO_TOKEN, DO_TOKEN)).status).toBe(404);
    await expectLoggedOut(c, DOCR);
  });
});
