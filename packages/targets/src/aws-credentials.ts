import { UserError } from '@slipway/toolkit/errors';
import { maskSecret } from '@slipway/toolkit/secrets';
import type { AwsCredentials } from './aws-sigv4';

/**
 * Credentials from the standard AWS environment, as aws-actions/configure-aws-credentials leaves
 * it (static keys or OIDC-assumed role: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN, AWS_REGION / AWS_DEFAULT_REGION). Masked as soon as they are read.
 */
export interface AwsEnvironment {
  credentials: AwsCredentials;
  region: string;
}

export function awsFromEnv(env: NodeJS.ProcessEnv, regionInput: string): AwsEnvironment {
  const accessKeyId = env.AWS_ACCESS_KEY_ID?.trim() ?? '';
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY?.trim() ?? '';
  const sessionToken = env.AWS_SESSION_TOKEN?.trim() || undefined;
  if (!accessKeyId || !secretAccessKey) {
    throw new UserError(
      'provider aws-eb needs AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (e.g. with aws-actions/configure-aws-credentials before this step).',
    );
  }
  maskSecret(secretAccessKey);
  maskSecret(sessionToken);
  const region = regionInput || env.AWS_REGION?.trim() || env.AWS_DEFAULT_REGION?.trim() || '';
  if (!region) throw new UserError('provider aws-eb needs a region: set input `aws-region` or AWS_REGION.');
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) {
    throw new UserError(`Input \`aws-region\`: \`${region}\` is not an AWS region (e.g. eu-west-1).`);
  }
  return { credentials: { accessKeyId, secretAccessKey, sessionToken }, region };
}

/**
 * A service's endpoint: AWS_ENDPOINT_URL_<SERVICE> or AWS_ENDPOINT_URL (the SDKs' standard
 * overrides, used for local stand-ins), else the public regional endpoint.
 */
export function awsEndpoint(env: NodeJS.ProcessEnv, envSuffix: string, publicUrl: string): { url: string; custom: boolean } {
  const custom = env[`AWS_ENDPOINT_URL_${envSuffix}`]?.trim() || env.AWS_ENDPOINT_URL?.trim();
  return custom ? { url: custom.replace(/\/+$/, ''), custom: true } : { url: publicUrl, custom: false };
}
