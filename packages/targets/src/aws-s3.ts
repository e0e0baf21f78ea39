import { request } from './cloud-http';
import { signRequest, type AwsCredentials } from './aws-sigv4';
import { awsEndpoint } from './aws-credentials';

/**
 * S3 PutObject, signed with SigV4 (payload hash signed, as S3 requires). Virtual-hosted style on
 * AWS; path style on a custom endpoint (AWS_ENDPOINT_URL_S3, e.g. moto's server in tests).
 */
export function s3ObjectUrl(env: NodeJS.ProcessEnv, region: string, bucket: string, key: string): string {
  const encodedKey = key.split('/').map(encodeURIComponent).join('/');
  const endpoint = awsEndpoint(env, 'S3', `https://${bucket}.s3.${region}.amazonaws.com`);
  return endpoint.custom ? `${endpoint.url}/${bucket}/${encodedKey}` : `${endpoint.url}/${encodedKey}`;
}

export async function putObject(
  url: string,
  body: Buffer,
  opts: { region: string; credentials: AwsCredentials; contentType: string },
): Promise<{ etag: string }> {
  const target = new URL(url);
  const headers = signRequest(
    { method: 'PUT', url: target, headers: { 'content-type': opts.contentType }, body },
    { service: 's3', region: opts.region, credentials: opts.credentials, signPayload: true },
  );
  delete headers.host;
  const res = await request({ method: 'PUT', url, headers, body, label: `S3 PutObject ${target.pathname}` });
  return { etag: (res.headers.get('etag') ?? '').replace(/"/g, '') };
}
