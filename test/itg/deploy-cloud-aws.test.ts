/**
 * The aws-eb provider against real S3 (moto's server) and the Elastic Beanstalk stand-in, which
 * verifies every SigV4 signature with the known secret and every parameter against the service
 * model botocore ships. The provider runs in-process; the deploy action's bundle test lives with
 * the deploy action.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ElasticBeanstalkProvider, type EbSettings } from '../../packages/targets/src/aws-eb';
import { signRequest } from '../../packages/targets/src/aws-sigv4';
import { REPO_ROOT } from '../harness/job';
import { preparedVenv } from '../harness/python-env';
import { ElasticBeanstalkStub, startMoto } from '../stubs/aws-eb';
import { deployContext } from '../unit/targets/cloud-helpers';

const ACCESS = 'ASIAEXAMPLESLIPWAY01';
const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYSLIPWAYKEY';
const TOKEN = 'IQoJb3JpZ2luX2VjEXAMPLEsessiontoken//slipway==';
const GOOD = '123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop@sha256:' + 'a'.repeat(64);
const BROKEN = '123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop@sha256:' + 'b'.repeat(64);
const SICK = '123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop@sha256:' + 'c'.repeat(64);

let venv: string;
let moto: { url: string; stop: () => Promise<void> };
let model: string;

beforeAll(async () => {
  venv = preparedVenv([path.join(REPO_ROOT, 'test/stubs/aws-requirements.txt')]);
  const site = execFileSync(path.join(venv, 'bin/python'), ['-c', 'import botocore, os; print(os.path.dirname(botocore.__file__))'])
    .toString()
    .trim();
  model = path.join(site, 'data/elasticbeanstalk/2010-12-01/service-2.json.gz');
  moto = await startMoto(venv);
  // CreateBucket, signed like any S3 call (moto routes by the credential scope's service).
  const body = '<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>';
  const url = new URL(`${moto.url}/shop-bundles`);
  const headers = signRequest(
    { method: 'PUT', url, headers: { 'content-type': 'application/xml' }, body },
    { service: 's3', region: 'eu-west-1', credentials: { accessKeyId: ACCESS, secretAccessKey: SECRET }, signPayload: true },
  );
  delete headers.host;
  const bucket = await fetch(url, { method: 'PUT', headers, body });
  expect(bucket.status).toBe(200);
});
afterAll(async () => {
  await moto?.stop();
});

describe('aws-eb provider', () => {
  let stub: ElasticBeanstalkStub;
  let settings: EbSettings;
  const savedEndpoint = process.env.AWS_ENDPOINT_URL_S3;

  beforeEach(async () => {
    stub = new ElasticBeanstalkStub({
      accessKeyId: ACCESS,
      secretAccessKey: SECRET,
      sessionToken: TOKEN,
      region: 'eu-west-1',
      application: 'shop',
      environment: 'shop-prod',
      initialVersion: 'v-initial',
      serviceModelPath: model,
      s3Url: moto.url,
      failingImages: [BROKEN],
      unhealthyImages: [SICK],
      updatePolls: 2,
    });
    await stub.start();
    process.env.AWS_ENDPOINT_URL_S3 = moto.url;
    settings = {
      aws: { region: 'eu-west-1', credentials: { accessKeyId: ACCESS, secretAccessKey: SECRET, sessionToken: TOKEN } },
      application: 'shop',
      environment: 'shop-prod',
      bucket: 'shop-bundles',
      keyPrefix: 'slipway/shop/shop-prod',
      containerPort: 8000,
      endpoint: stub.server.url,
      timeoutMs: 60_000,
    };
  });
  afterEach(async () => {
    if (savedEndpoint === undefined) delete process.env.AWS_ENDPOINT_URL_S3;
    else process.env.AWS_ENDPOINT_URL_S3 = savedEndpoint;
    await stub.stop();
  });

  it('uploads a Dockerrun bundle to S3, creates the version, updates the environment, waits for Ready/Green', async () => {
    const ctx = deployContext({ image: GOOD, releaseId: '20261122-030000-abc1234-001' });
    const result = await new ElasticBeanstalkProvider(settings).deploy(ctx);
    expect(result.providerReleaseId).toBe('20261122-030000-abc1234-001');
    expect(result.url).toBe(`${stub.server.url}/`);
    expect(stub.signatureFailures).toEqual([]);

    const calls = stub.calls();
    expect(calls.map((c) => c.action)).toEqual(
      expect.arrayContaining(['DescribeEnvironments', 'CreateApplicationVersion', 'UpdateEnvironment']),
    );
    for (const c of calls) {
      expect(c.req.headers.authorization).toMatch(
        /^AWS4-HMAC-SHA256 Credential=ASIAEXAMPLESLIPWAY01\/\d{8}\/eu-west-1\/elasticbeanstalk\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$/,
      );
      expect(c.req.headers['x-amz-security-token']).toBe(TOKEN);
      expect(c.params.get('Version')).toBe('2010-12-01');
    }
    const create = calls.find((c) => c.action === 'CreateApplicationVersion')!.params;
    expect(Object.fromEntries(create)).toMatchObject({
      ApplicationName: 'shop',
      VersionLabel: '20261122-030000-abc1234-001',
      'SourceBundle.S3Bucket': 'shop-bundles',
      'SourceBundle.S3Key': 'slipway/shop/shop-prod/20261122-030000-abc1234-001.zip',
    });
    const update = Object.fromEntries(calls.find((c) => c.action === 'UpdateEnvironment')!.params);
    expect(update).toMatchObject({
      EnvironmentName: 'shop-prod',
      VersionLabel: '20261122-030000-abc1234-001',
      'OptionSettings.member.1.Namespace': 'aws:elasticbeanstalk:application:environment',
      'OptionSettings.member.1.OptionName': 'DJANGO_SETTINGS_MODULE',
      'OptionSettings.member.1.Value': 'shop.settings',
      'OptionSettings.member.2.OptionName': 'SECRET_KEY',
    });
    expect(stub.env).toMatchObject({
      Status: 'Ready',
      Health: 'Green',
      VersionLabel: '20261122-030000-abc1234-001',
      Config: { SECRET_KEY: 's3cr3t-value' },
    });

    // The bundle in S3, read back and opened by Python's zipfile (an independent reader).
    const objectUrl = new URL(`${moto.url}/shop-bundles/slipway/shop/shop-prod/20261122-030000-abc1234-001.zip`);
    const getHeaders = signRequest(
      { method: 'GET', url: objectUrl, headers: {}, body: '' },
      { service: 's3', region: 'eu-west-1', credentials: settings.aws.credentials, signPayload: true },
    );
    delete getHeaders.host;
    const object = await fetch(objectUrl, { headers: getHeaders });
    expect(object.status).toBe(200);
    const zipPath = path.join(os.tmpdir(), `slipway-eb-${process.pid}.zip`);
    fs.writeFileSync(zipPath, Buffer.from(await object.arrayBuffer()));
    const listing = execFileSync(path.join(venv, 'bin/python'), [
      '-c',
      'import json,sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(json.dumps({n: json.loads(z.read(n)) for n in z.namelist()}))',
      zipPath,
    ]).toString();
    fs.rmSync(zipPath);
    expect(JSON.parse(listing)).toEqual({
      'Dockerrun.aws.json': { AWSEBDockerrunVersion: '1', Image: { Name: GOOD, Update: 'true' }, Ports: [{ ContainerPort: 8000 }] },
    });
  });

  it('a deployment EB reports as failed prints its events and puts the previous version back', async () => {
    const ctx = deployContext({ image: BROKEN, releaseId: '20261122-030100-abc1234-002' });
    const error = (await new ElasticBeanstalkProvider(settings).deploy(ctx).catch((e: unknown) => e)) as Error & { rolledBack?: boolean };
    expect(error.message).toBe(`Elastic Beanstalk deploy of 20261122-030100-abc1234-002 failed: Failed to deploy application.`);
    expect(error.rolledBack).toBe(true);
    const log = ctx.lines.join('\n');
    expect(log).toContain(`Failed to pull Docker image ${BROKEN}: manifest unknown.`);
    expect(log).toContain('Version v-initial serves again.');
    const updates = stub.calls().filter((c) => c.action === 'UpdateEnvironment');
    expect(updates.map((u) => u.params.get('VersionLabel'))).toEqual(['20261122-030100-abc1234-002', 'v-initial']);
    expect(stub.calls().some((c) => c.action === 'DescribeEvents')).toBe(true);
    expect(stub.env).toMatchObject({ VersionLabel: 'v-initial', Health: 'Green' });
  });

  it('a failed health check rolls back to the previous version; activate() redeploys a recorded one', async () => {
    const provider = new ElasticBeanstalkProvider(settings);
    const ok = await provider.deploy(deployContext({ image: GOOD, releaseId: '20261122-030200-abc1234-003' }));
    const error = (await provider
      .deploy(
        deployContext({
          image: SICK,
          releaseId: '20261122-030300-abc1234-004',
          health: { path: '/healthz', expectedStatus: 200, timeoutMs: 1500 },
        }),
      )
      .catch((e: unknown) => e)) as Error & { rolledBack?: boolean };
    expect(error.message).toMatch(/^Health check of Elastic Beanstalk version 20261122-030300-abc1234-004 failed/);
    expect(error.rolledBack).toBe(true);
    expect(await provider.currentRelease()).toBe(ok.providerReleaseId);

    const result = await provider.activate({ providerReleaseId: 'v-initial' } as never, {
      environment: 'production',
      appName: 'shop',
      health: { path: '/healthz', expectedStatus: 200, timeoutMs: 3000 },
      log: () => undefined,
    });
    expect(result.providerReleaseId).toBe('v-initial');
    expect(
      stub
        .calls()
        .filter((c) => c.action === 'UpdateEnvironment')
        .at(-1)!
        .params.get('VersionLabel'),
    ).toBe('v-initial');
    expect(
      stub
        .calls()
        .filter((c) => c.action === 'UpdateEnvironment')
        .at(-1)!
        .params.has('OptionSettings.member.1.OptionName'),
    ).toBe(false);
    expect(stub.signatureFailures).toEqual([]);
  });

  it('a wrong secret is refused by the signature check, and the error does not carry it', async () => {
    const wrong = {
      ...settings,
      aws: { ...settings.aws, credentials: { ...settings.aws.credentials, secretAccessKey: 'not-the-secret-key-0000' } },
    };
    const error = (await new ElasticBeanstalkProvider(wrong).validate().catch((e: unknown) => e)) as Error;
    expect(error.message).toBe(
      'Elastic Beanstalk DescribeEnvironments: HTTP 403 — The request signature we calculated does not match the signature you provided',
    );
    expect(stub.signatureFailures).toHaveLength(1);
  });
});
