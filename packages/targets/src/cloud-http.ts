import { UserError } from '@slipway/toolkit/errors';

/**
 * The one HTTP helper the cloud providers share (Node's fetch): JSON or raw bodies, a bounded
 * retry on 429/502/503/504 and network errors, and errors that name the call and the service's
 * own message, never a header (where the credentials are).
 */

export interface HttpRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** What the call does, for errors: "Heroku: update config vars". */
  label: string;
  /** Statuses returned to the caller instead of thrown (e.g. 404 for "not there yet"). */
  allow?: number[];
  retries?: number;
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  text: string;
}

export class HttpError extends UserError {
  constructor(
    readonly label: string,
    readonly status: number,
    detail: string,
  ) {
    super(`${label}: HTTP ${status}${detail ? ` — ${detail}` : ''}`);
  }
}

const RETRY_STATUS = new Set([429, 502, 503, 504]);

export async function request(req: HttpRequest): Promise<HttpResponse> {
  const retries = req.retries ?? 3;
  for (let attempt = 0; ; attempt++) {
    let res: Response;
    try {
      res = await fetch(req.url, {
        method: req.method,
        headers: req.headers,
        body: req.body,
        redirect: 'follow',
        signal: AbortSignal.timeout(req.timeoutMs ?? 60_000),
      });
    } catch (error) {
      if (attempt < retries) {
        await sleep(backoff(attempt));
        continue;
      }
      const why = error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error);
      throw new UserError(`${req.label}: could not reach ${new URL(req.url).host} (${why}).`);
    }
    const text = await res.text();
    if (res.ok || req.allow?.includes(res.status)) return { status: res.status, headers: res.headers, text };
    if (RETRY_STATUS.has(res.status) && attempt < retries) {
      await sleep(retryAfter(res.headers) ?? backoff(attempt));
      continue;
    }
    throw new HttpError(req.label, res.status, errorDetail(text));
  }
}

export async function requestJson<T>(req: HttpRequest): Promise<T> {
  const res = await request(req);
  if (!res.text) return undefined as T;
  try {
    return JSON.parse(res.text) as T;
  } catch {
    throw new UserError(`${req.label}: the answer was not JSON (HTTP ${res.status}).`);
  }
}

/** The service's own error message from a JSON or XML body, capped. */
export function errorDetail(text: string): string {
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    const err = body.error as Record<string, unknown> | string | undefined;
    const message =
      body.message ?? body.detail ?? body.error_description ?? (typeof err === 'object' ? err.message : err) ?? JSON.stringify(body);
    return (typeof message === 'string' ? message : JSON.stringify(message)).slice(0, 500);
  } catch {
    const xml = /<Message>([\s\S]*?)<\/Message>/.exec(text);
    return (xml ? xml[1]! : text).trim().slice(0, 500);
  }
}

export function backoff(attempt: number, baseMs = 500, capMs = 10_000): number {
  return Math.min(capMs, baseMs * 2 ** attempt);
}

function retryAfter(headers: Headers): number | undefined {
  const value = Number(headers.get('retry-after'));
  return Number.isFinite(value) && value > 0 ? Math.min(value, 30) * 1000 : undefined;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `check` until it returns a value, with growing pauses (`baseMs` doubling up to `capMs`)
 * and an overall deadline; `onTimeout` builds the error.
 */
export async function poll<T>(
  check: () => Promise<T | undefined>,
  opts: { timeoutMs: number; baseMs?: number; capMs?: number; onTimeout: () => Promise<Error> | Error },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  for (let attempt = 0; ; attempt++) {
    const value = await check();
    if (value !== undefined) return value;
    const left = deadline - Date.now();
    if (left <= 0) throw await opts.onTimeout();
    await sleep(Math.min(left, backoff(attempt, opts.baseMs ?? 1000, opts.capMs ?? 15_000)));
  }
}
