import { afterEach, describe, expect, it } from 'vitest';
import { awsEndpoint, awsFromEnv } from '../../../packages/targets/src/aws-credentials';
import { dockerrun, readEbSettings } from '../../../packages/targets/src/aws-eb';
import { s3ObjectUrl } from '../../../packages/targets/src/aws-s3';
import { withInputs } from './cloud-helpers';

const CREDS = { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret/key+value', AWS_REGION: 'eu-west-1' };
const EB = { 'eb-application': 'shop', 'eb-environment': 'shop-prod', 'eb-s3-bucket': 'shop-bundles' };

describe('aws-eb settings', () => {
  let restore: () => void = () => undefined;
  afterEach(() => restore());

  it.each([
    [{}, CREDS, 'Input `eb-application` is required with provider aws-eb (the Elastic Beanstalk application).'],
    [{ ...EB, 'eb-environment': 'x' }, CREDS, 'Input `eb-environment`: `x` is not an environment name (4-40 letters, digits, dashes).'],
    [{ ...EB, 'eb-s3-bucket': 'Shop_Bundles' }, CREDS, 'Input `eb-s3-bucket`: `Shop_Bundles` is not an S3 bucket name.'],
    [
      EB,
      {},
      'provider aws-eb needs AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (e.g. with aws-actions/configure-aws-credentials before this step).',
    ],
    [
      EB,
      { AWS_ACCESS_KEY_ID: 'AKIA', AWS_SECRET_ACCESS_KEY: 's' },
      'provider aws-eb needs a region: set input `aws-region` or AWS_REGION.',
    ],
    [{ ...EB, 'aws-region': 'Ireland' }, CREDS, 'Input `aws-region`: `Ireland` is not an AWS region (e.g. eu-west-1).'],
    [{ ...EB, 'eb-container-port': '0' }, CREDS, 'eb-container-port'],
  ])('%j with %j → %s', (inputs, env, message) => {
    restore = withInputs(inputs);
    expect(() => readEbSettings(env)).toThrow(message);
  });

  it('reads the standard AWS environment, session token included; endpoints overridable', () => {
    restore = withInputs(EB);
    const s = readEbSettings({ ...CREDS, AWS_SESSION_TOKEN: 'tok', AWS_ENDPOINT_URL_ELASTIC_BEANSTALK: 'http://127.0.0.1:9/' });
    expect(s.aws).toEqual({
      region: 'eu-west-1',
      credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret/key+value', sessionToken: 'tok' },
    });
    expect(s.endpoint).toBe('http://127.0.0.1:9');
    expect(s.containerPort).toBe(8000);
    expect(readEbSettings({ ...CREDS, AWS_REGION: '', AWS_DEFAULT_REGION: 'us-east-2' }).endpoint).toBe(
      'https://elasticbeanstalk.us-east-2.amazonaws.com',
    );
  });

  it('S3 URLs: virtual-hosted on AWS, path style on a custom endpoint, keys encoded', () => {
    expect(s3ObjectUrl({}, 'eu-west-1', 'b', 'slipway/a b.zip')).toBe('https://b.s3.eu-west-1.amazonaws.com/slipway/a%20b.zip');
    expect(s3ObjectUrl({ AWS_ENDPOINT_URL: 'http://127.0.0.1:5000' }, 'eu-west-1', 'b', 'k.zip')).toBe('http://127.0.0.1:5000/b/k.zip');
    expect(awsEndpoint({ AWS_ENDPOINT_URL_S3: 'http://s3/', AWS_ENDPOINT_URL: 'http://all' }, 'S3', 'x')).toEqual({
      url: 'http://s3',
      custom: true,
    });
  });

  it('masks the secret and the session token', () => {
    const writes: string[] = [];
    const original = process.stdout.write.bind(process.stdout);
    process.stdout.write = (chunk: string) => (writes.push(String(chunk)), true);
    try {
      awsFromEnv({ ...CREDS, AWS_SESSION_TOKEN: 'session-token-value' }, '');
    } finally {
      process.stdout.write = original;
    }
    expect(writes.join('')).toContain('::add-mask::secret/key+value');
    expect(writes.join('')).toContain('::add-mask::session-token-value');
  });

  it('Dockerrun.aws.json v1 names the image and the container port', () => {
    expect(JSON.parse(dockerrun('ecr/shop@sha256:abc', 8000))).toEqual({
      AWSEBDockerrunVersion: '1',
      Image: { Name: 'ecr/shop@sha256:abc', Update: 'true' },
      Ports: [{ ContainerPort: 8000 }],
    });
  });
});
