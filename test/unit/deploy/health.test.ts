import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { healthUrl, waitForHealthy } from '@slipway/toolkit/health';

let server: http.Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

async function serve(handler: http.RequestListener): Promise<string> {
  server = http.createServer(handler);
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`;
}

describe('waitForHealthy', () => {
  it('retries with backoff until the expected status', async () => {
    let n = 0;
    const seen: string[] = [];
    const url = await serve((req, res) => {
      seen.push(String(req.headers.host));
      res.writeHead(++n < 3 ? 503 : 200).end('ok');
    });
    const result = await waitForHealthy({ url, expectedStatus: 200, timeoutMs: 5000, intervalMs: 50, headers: { Host: 'shop.example' } });
    expect(result).toMatchObject({ ok: true, attempts: 3, lastStatus: 200 });
    expect(seen).toEqual(['shop.example', 'shop.example', 'shop.example']);
  });

  it('fails within the timeout, saying what it saw last', async () => {
    const url = await serve((_req, res) => res.writeHead(500).end());
    const started = Date.now();
    const result = await waitForHealthy({ url, expectedStatus: 200, timeoutMs: 800, intervalMs: 50 });
    expect(result.ok).toBe(false);
    expect(result.lastProblem).toBe('status 500, expected 200');
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('a hung server does not eat the whole budget per request', async () => {
    const url = await serve(() => undefined);
    const result = await waitForHealthy({ url, expectedStatus: 200, timeoutMs: 1500, intervalMs: 50, requestTimeoutMs: 300 });
    expect(result.ok).toBe(false);
    expect(result.attempts).toBeGreaterThan(1);
    expect(result.lastProblem).toBe('no answer in time');
  });

  it('connection refused', async () => {
    const url = await serve((_q, s) => s.end());
    await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
    const result = await waitForHealthy({ url, expectedStatus: 200, timeoutMs: 300, intervalMs: 50, maxAttempts: 2 });
    expect(result).toMatchObject({ ok: false, attempts: 2, lastProblem: 'connection refused' });
  });

  it('does not follow redirects (a 301 is not a 200)', async () => {
    const url = await serve((_q, s) => s.writeHead(301, { location: '/elsewhere' }).end());
    const result = await waitForHealthy({ url, expectedStatus: 200, timeoutMs: 200, intervalMs: 50 });
    expect(result.lastStatus).toBe(301);
  });

  it.each([
    ['/healthz', 'http://127.0.0.1:1', 'http://127.0.0.1:1/healthz'],
    ['healthz', 'http://127.0.0.1:1', 'http://127.0.0.1:1/healthz'],
    ['https://shop.example/up?x=1', 'http://127.0.0.1:1', 'https://shop.example/up?x=1'],
  ])('healthUrl(%s)', (p, base, expected) => expect(healthUrl(p, base)).toBe(expected));
});
