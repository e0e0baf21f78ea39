import * as http from 'node:http';
import * as https from 'node:https';
/**
 * Health checks: GET a URL until it answers the expected status, with retries, exponential
 * backoff (capped) and an overall timeout. Each attempt has its own timeout so a hung server
 * cannot eat the whole budget.
 */

export interface HealthSpec {
  /** Full URL to check. */
  url: string;
  expectedStatus: number;
  /** The whole check, all attempts included. */
  timeoutMs: number;
  /** Delay before the second attempt; doubles up to `maxIntervalMs`. */
  intervalMs?: number;
  maxIntervalMs?: number;
  /** Per attempt. */
  requestTimeoutMs?: number;
  /** Stop after this many attempts even if time is left. */
  maxAttempts?: number;
  /** Sent with every request, e.g. Host for name-based routing. */
  headers?: Record<string, string>;
}

export interface HealthResult {
  ok: boolean;
  attempts: number;
  elapsedMs: number;
  /** The last status seen, if any request got an answer. */
  lastStatus?: number;
  /** The last error or unexpected status, in words. */
  lastProblem?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitForHealthy(spec: HealthSpec, onAttempt?: (n: number, problem: string) => void): Promise<HealthResult> {
  const started = Date.now();
  const deadline = started + spec.timeoutMs;
  let interval = spec.intervalMs ?? 250;
  const maxInterval = spec.maxIntervalMs ?? 2000;
  const maxAttempts = spec.maxAttempts ?? Number.POSITIVE_INFINITY;
  let attempts = 0;
  let lastStatus: number | undefined;
  let lastProblem: string | undefined;
  for (;;) {
    attempts++;
    const left = deadline - Date.now();
    const perRequest = Math.max(100, Math.min(spec.requestTimeoutMs ?? 5000, left));
    try {
      lastStatus = await get(spec.url, perRequest, spec.headers);
      if (lastStatus === spec.expectedStatus) {
        return { ok: true, attempts, elapsedMs: Date.now() - started, lastStatus };
      }
      lastProblem = `status ${lastStatus}, expected ${spec.expectedStatus}`;
    } catch (error) {
      lastProblem = describeError(error);
    }
    onAttempt?.(attempts, lastProblem);
    if (attempts >= maxAttempts || Date.now() + interval >= deadline) {
      return { ok: false, attempts, elapsedMs: Date.now() - started, lastStatus, lastProblem };
    }
    await sleep(interval);
    interval = Math.min(interval * 2, maxInterval);
  }
}

/**
 * One GET with node's http client (fetch may not set Host), body drained, redirects not
 * followed: a 301 to a login page is not healthy.
 */
function get(url: string, timeoutMs: number, headers?: Record<string, string>): Promise<number> {
  const client = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.get(url, { headers, timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
  });
}

function describeError(error: unknown): string {
  const code = (error as { code?: string }).code;
  if (code === 'ETIMEDOUT') return 'no answer in time';
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ECONNRESET') return 'connection reset';
  if (code) return code;
  return error instanceof Error ? error.message : String(error);
}

/** `/healthz` or a full URL, against a base URL. */
export function healthUrl(pathOrUrl: string, base: string): string {
  if (/^https?:\/\//i.test(pathOrUrl)) return pathOrUrl;
  return new URL(pathOrUrl.startsWith('/') ? pathOrUrl : `/${pathOrUrl}`, base).toString();
}
