/**
 * SigV4 checked from scratch, as an AWS service checks a request: scope, freshness, signed
 * headers, recomputed signature. Written apart from the provider's signer
 * (packages/targets/src/aws-sigv4.ts) so a shared mistake cannot pass; used by the AWS
 * stand-ins (Elastic Beanstalk, ECR). Returns the problem in AWS's words, or undefined.
 */
import { createHash, createHmac } from 'node:crypto';
import type { RecordedRequest } from './cloud-stub-server';

export interface SigV4Expectation {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  region: string;
  /** The signing name, e.g. elasticbeanstalk, ecr. */
  service: string;
}

export function verifySigV4(req: RecordedRequest, expect: SigV4Expectation): string | undefined {
  const auth = req.headers.authorization ?? '';
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
  if (!m) return 'Authorization header is not a SigV4 header';
  const [, key, day, region, service, signedHeaders, signature] = m as unknown as string[];
  if (key !== expect.accessKeyId) return `The security token included in the request is invalid (access key ${key})`;
  if (region !== expect.region || service !== expect.service) return `Credential should be scoped to ${expect.region}/${expect.service}`;
  const date = String(req.headers['x-amz-date'] ?? '');
  if (!/^\d{8}T\d{6}Z$/.test(date) || date.slice(0, 8) !== day) return 'X-Amz-Date missing or not matching the credential scope';
  const when = Date.parse(
    `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`,
  );
  if (Math.abs(Date.now() - when) > 5 * 60_000) return 'Signature expired';
  const names = signedHeaders!.split(';');
  if (!names.includes('host') || !names.includes('x-amz-date')) return 'host and x-amz-date must be signed';
  if (expect.sessionToken) {
    if (req.headers['x-amz-security-token'] !== expect.sessionToken || !names.includes('x-amz-security-token')) {
      return 'The security token included in the request is invalid';
    }
  }
  const canonicalHeaders = names
    .map(
      (n) =>
        `${n}:${String(req.headers[n] ?? '')
          .trim()
          .replace(/\s+/g, ' ')}\n`,
    )
    .join('');
  const query = [...req.query]
    .map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`)
    .sort()
    .join('&');
  const uri =
    req.path
      .split('/')
      .map((s) => rfc3986(rfc3986(decodeURIComponent(s))))
      .join('/') || '/';
  const canonical = [req.method, uri, query, canonicalHeaders, signedHeaders, createHash('sha256').update(req.body).digest('hex')].join(
    '\n',
  );
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = `AWS4-HMAC-SHA256\n${date}\n${scope}\n${createHash('sha256').update(canonical).digest('hex')}`;
  let k: Buffer | string = `AWS4${expect.secretAccessKey}`;
  for (const part of [day, region, service, 'aws4_request']) k = createHmac('sha256', k).update(part).digest();
  const expected = createHmac('sha256', k).update(toSign).digest('hex');
  return expected === signature ? undefined : 'The request signature we calculated does not match the signature you provided';
}

export function rfc3986(v: string): string {
  return encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
