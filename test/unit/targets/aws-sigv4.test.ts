import { describe, expect, it } from 'vitest';
import { canonicalRequest, sha256Hex, signRequest } from '../../../packages/targets/src/aws-sigv4';

// Vectors from AWS's SigV4 signing test suite (awslabs/aws-c-auth tests/aws-signing-test-suite/v4,
// the suite published at docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html):
// credentials AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, us-east-1, service "service",
// 2015-08-30T12:36:00Z. Each row is one case's header-signed-request.txt.
const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const now = new Date('2015-08-30T12:36:00Z');
const scope = 'Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request';

const suite: {
  name: string;
  method: string;
  target: string;
  headers: Record<string, string>;
  body?: string;
  token?: string;
  signPayload?: boolean;
  signedHeaders: string;
  signature: string;
}[] = [
  {
    name: 'get-vanilla-query-order-key-case',
    method: 'GET',
    target: '/?Param2=value2&Param1=value1',
    headers: {},
    signedHeaders: 'host;x-amz-date',
    signature: 'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500',
  },
  {
    name: 'get-header-value-trim',
    method: 'GET',
    target: '/',
    headers: { 'My-Header1': ' value1', 'My-Header2': ' "a   b   c"' },
    signedHeaders: 'host;my-header1;my-header2;x-amz-date',
    signature: 'acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736',
  },
  {
    name: 'post-header-key-sort',
    method: 'POST',
    target: '/',
    headers: { 'My-Header1': 'value1' },
    signedHeaders: 'host;my-header1;x-amz-date',
    signature: 'c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c',
  },
  {
    name: 'get-vanilla-with-session-token',
    method: 'GET',
    target: '/',
    headers: {},
    token: '6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267',
    signedHeaders: 'host;x-amz-date;x-amz-security-token',
    signature: '07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8',
  },
  {
    name: 'post-x-www-form-urlencoded (payload signed)',
    method: 'POST',
    target: '/',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': '13' },
    body: 'Param1=value1',
    signPayload: true,
    signedHeaders: 'content-length;content-type;host;x-amz-content-sha256;x-amz-date',
    signature: 'd3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b',
  },
];

describe('signRequest against the AWS SigV4 test suite', () => {
  it.each(suite)('$name', (c) => {
    const headers = signRequest(
      { method: c.method, url: new URL(`https://example.amazonaws.com${c.target}`), headers: c.headers, body: c.body ?? '' },
      {
        service: 'service',
        region: 'us-east-1',
        now,
        signPayload: c.signPayload,
        credentials: c.token ? { ...credentials, sessionToken: c.token } : credentials,
      },
    );
    expect(headers.authorization).toBe(`AWS4-HMAC-SHA256 ${scope}, SignedHeaders=${c.signedHeaders}, Signature=${c.signature}`);
    expect(headers['x-amz-date']).toBe('20150830T123600Z');
    if (c.token) expect(headers['x-amz-security-token']).toBe(c.token);
  });

  it('hashes the form body as the suite does', () => {
    expect(sha256Hex('Param1=value1')).toBe('9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e');
  });

  it('builds the canonical request of get-vanilla-query-order-key-case byte for byte', () => {
    const url = new URL('https://example.amazonaws.com/?Param2=value2&Param1=value1');
    const text = canonicalRequest('GET', url, { host: url.host, 'x-amz-date': '20150830T123600Z' }, sha256Hex(''), 'service');
    expect(text).toBe(
      [
        'GET',
        '/',
        'Param1=value1&Param2=value2',
        'host:example.amazonaws.com',
        'x-amz-date:20150830T123600Z',
        '',
        'host;x-amz-date',
        'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      ].join('\n'),
    );
  });

  it('encodes S3 keys once and other services twice', () => {
    const url = new URL('https://b.s3.amazonaws.com/releases/app v1.zip');
    expect(canonicalRequest('PUT', url, {}, 'x', 's3').split('\n')[1]).toBe('/releases/app%20v1.zip');
    expect(canonicalRequest('PUT', url, {}, 'x', 'service').split('\n')[1]).toBe('/releases/app%2520v1.zip');
  });
});
