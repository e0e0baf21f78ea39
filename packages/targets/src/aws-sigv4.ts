import { createHash, createHmac } from 'node:crypto';

/**
 * AWS Signature Version 4 (header form), written out so the bundle needs no AWS SDK. Checked
 * against AWS's published signing test suite (test/unit/targets/aws-sigv4.test.ts).
 */

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface SignableRequest {
  method: string;
  url: URL;
  /** Headers to send and sign (any case); host and x-amz-date are added. */
  headers: Record<string, string>;
  body: string | Buffer;
}

export interface SigningParams {
  service: string;
  region: string;
  credentials: AwsCredentials;
  now?: Date;
  /** Adds x-amz-content-sha256 (required by S3). */
  signPayload?: boolean;
}

export const ALGORITHM = 'AWS4-HMAC-SHA256';

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ is %XX. */
export function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** 20150830T123600Z */
export function amzDate(now: Date): string {
  return now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

/** Path segments encoded once for S3, twice for every other service (as AWS specifies). */
export function canonicalUri(url: URL, service: string): string {
  const segments = url.pathname.split('/').map((s) => uriEncode(safeDecode(s)));
  const once = segments.join('/') || '/';
  return service === 's3' ? once : once.split('/').map(uriEncode).join('/');
}

export function canonicalQuery(url: URL): string {
  const pairs = [...url.searchParams].map(([k, v]) => [uriEncode(k), uriEncode(v)] as const);
  pairs.sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/** Lower-cased names, values trimmed with inner runs of spaces collapsed, sorted by name. */
export function canonicalHeaders(headers: Record<string, string>): { text: string; signed: string } {
  const entries = Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v.trim().replace(/\s+/g, ' ')] as const);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    text: entries.map(([k, v]) => `${k}:${v}\n`).join(''),
    signed: entries.map(([k]) => k).join(';'),
  };
}

export function canonicalRequest(method: string, url: URL, headers: Record<string, string>, payloadHash: string, service: string): string {
  const { text, signed } = canonicalHeaders(headers);
  return [method.toUpperCase(), canonicalUri(url, service), canonicalQuery(url), text, signed, payloadHash].join('\n');
}

export function credentialScope(date: string, region: string, service: string): string {
  return `${date.slice(0, 8)}/${region}/${service}/aws4_request`;
}

export function stringToSign(date: string, scope: string, canonical: string): string {
  return [ALGORITHM, date, scope, sha256Hex(canonical)].join('\n');
}

export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date.slice(0, 8)), region), service), 'aws4_request');
}

/** The headers to send: the caller's, plus host, x-amz-date, the token and Authorization. */
export function signRequest(request: SignableRequest, params: SigningParams): Record<string, string> {
  const date = amzDate(params.now ?? new Date());
  const payloadHash = sha256Hex(request.body);
  const headers: Record<string, string> = { ...request.headers, host: request.url.host, 'x-amz-date': date };
  if (params.signPayload) headers['x-amz-content-sha256'] = payloadHash;
  if (params.credentials.sessionToken) headers['x-amz-security-token'] = params.credentials.sessionToken;
  const canonical = canonicalRequest(request.method, request.url, headers, payloadHash, params.service);
  const scope = credentialScope(date, params.region, params.service);
  const toSign = stringToSign(date, scope, canonical);
  const signature = createHmac('sha256', signingKey(params.credentials.secretAccessKey, date, params.region, params.service))
    .update(toSign)
    .digest('hex');
  const { signed } = canonicalHeaders(headers);
  headers.authorization = `${ALGORITHM} Credential=${params.credentials.accessKeyId}/${scope}, SignedHeaders=${signed}, Signature=${signature}`;
  return headers;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
