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
      const response = await fetch(spec.url, {
        headers: spec.headers,
        redirect: 'manual',
        signal: AbortSignal.timeout(perRequest),
      });
      await response.arrayBuffer().catch(() => undefined);
      lastStatus = response.status;
      if (response.status === spec.expectedStatus) {
        return { ok: true, attempts, elapsedMs: Date.now() - started, lastStatus };
      }
      lastProblem = `status ${response.status}, expected ${spec.expectedStatus}`;
    } catch (error) {
      lastProblem = describeFetchError(error);
    }
    onAttempt?.(attempts, lastProblem);
    if (attempts >= maxAttempts || Date.now() + interval >= deadline) {
      return { ok: false, attempts, elapsedMs: Date.now() - started, lastStatus, lastProblem };
    }
    await sleep(interval);
    interval = Math.min(interval * 2, maxInterval);
  }
}

function describeFetchError(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === 'TimeoutError' || error.name === 'AbortError') return 'no answer in time';
    const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
    if (cause?.code) return cause.code === 'ECONNREFUSED' ? 'connection refused' : cause.code;
    return cause?.message ?? error.message;
  }
  return String(error);
}

/** `/healthz` or a full URL, against a base URL. */
export function healthUrl(pathOrUrl: string, base: string): string {
  if (/^https?:\/\//i.test(pathOrUrl)) return pathOrUrl;
  return new URL(pathOrUrl.startsWith('/') ? pathOrUrl : `/${pathOrUrl}`, base).toString();
}
