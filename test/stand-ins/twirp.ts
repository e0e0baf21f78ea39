/**
 * The Twirp JSON side of GitHub's results services (github.actions.results.api.v1.*), as the
 * toolkit's generated clients call them: POST /twirp/<service>/<method>, Content-Type
 * application/json, `Authorization: Bearer <ACTIONS_RUNTIME_TOKEN>`, bodies with the proto field
 * names (protobuf-ts `useProtoFieldName`, int64 as a decimal string, wrappers as bare values,
 * default values left out). Errors are Twirp's `{code, msg}` with the code's HTTP status.
 * Shared by test/stand-ins/cache-v2.ts and test/stand-ins/artifact-v2.ts, with the small HTTP
 * server both run on.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TwirpCall {
  method: string;
  body: Record<string, unknown>;
  status: number;
  response: Record<string, unknown>;
}

/** Twirp's error codes and the HTTP status each is sent with (the Twirp wire protocol spec). */
export const TWIRP_STATUS = {
  canceled: 408,
  unknown: 500,
  invalid_argument: 400,
  malformed: 400,
  deadline_exceeded: 408,
  not_found: 404,
  bad_route: 404,
  already_exists: 409,
  permission_denied: 403,
  unauthenticated: 401,
  resource_exhausted: 429,
  failed_precondition: 412,
  aborted: 409,
  out_of_range: 400,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  data_loss: 500,
} as const;
export type TwirpCode = keyof typeof TWIRP_STATUS;

export type TwirpAnswer =
  { ok: true; response: Record<string, unknown> } | { ok: false; code: TwirpCode; msg: string; violation: boolean; status?: number };

export const answer = (response: Record<string, unknown>): TwirpAnswer => ({ ok: true, response });

/** An error answer; `violation` when the client should never have sent the request. */
export const refuse = (code: TwirpCode, msg: string, violation = true, status?: number): TwirpAnswer => ({
  ok: false,
  code,
  msg,
  violation,
  status,
});

export interface TwirpService {
  /** The fully qualified service name, e.g. github.actions.results.api.v1.CacheService. */
  name: string;
  /** The methods served, each with the request's proto field names. */
  fields: Record<string, string[]>;
  calls: TwirpCall[];
  violation(message: string): void;
  /** Checks the Authorization header; a message when it is refused. */
  authenticate(authorization: string | undefined): string | undefined;
  /** Every call answered with this HTTP status after the checks (a service in trouble). */
  unavailable?(): number | undefined;
  handle(method: string, body: Record<string, unknown>, bearer: string): TwirpAnswer;
}

/** One Twirp request: route, method, token, content type and JSON body checked, then handled. */
export function serveTwirp(service: TwirpService, req: http.IncomingMessage, url: URL, raw: Buffer, res: http.ServerResponse): void {
  const prefix = `/twirp/${service.name}/`;
  const method = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : url.pathname;
  let body: Record<string, unknown> = {};
  const reply = (a: TwirpAnswer): void => {
    const status = a.ok ? 200 : (a.status ?? TWIRP_STATUS[a.code]);
    const response = a.ok ? a.response : { code: a.code, msg: a.msg };
    if (!a.ok && a.violation) service.violation(`${method}: ${a.msg}`);
    service.calls.push({ method, body, status, response });
    res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(response));
  };
  if (!url.pathname.startsWith(prefix) || !(method in service.fields))
    return reply(refuse('bad_route', `no handler for path ${url.pathname}`));
  if (req.method !== 'POST') return reply(refuse('bad_route', `unsupported method ${req.method} (only POST is allowed)`));
  const denied = service.authenticate(req.headers.authorization);
  if (denied) return reply(refuse('unauthenticated', denied));
  if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) {
    return reply(refuse('malformed', `Content-Type ${req.headers['content-type']}: this stand-in speaks Twirp JSON only`));
  }
  try {
    const parsed = JSON.parse(raw.toString('utf8')) as unknown;
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    body = parsed as Record<string, unknown>;
  } catch (error) {
    return reply(refuse('malformed', `the body is not a JSON object: ${(error as Error).message}`));
  }
  const down = service.unavailable?.();
  if (down) return reply(refuse('unavailable', `the service is unavailable`, false, down));
  const unknown = Object.keys(body).filter((k) => !service.fields[method]!.includes(k));
  if (unknown.length) return reply(refuse('malformed', `unknown field(s) ${unknown.join(', ')} (proto field names expected)`));
  reply(service.handle(method, body, req.headers.authorization!.slice('Bearer '.length)));
}

/**
 * A loopback HTTP server that hands each request, body read, to `handle`; an exception in the
 * stand-in is recorded through `violation` and answered 500.
 */
export async function listen(
  handle: (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse) => void,
  violation: (message: string) => void,
): Promise<{ server: http.Server; port: number; stop(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        handle(req, Buffer.concat(chunks), res);
      } catch (error) {
        violation(`stand-in error on ${req.method} ${req.url}: ${(error as Error).stack}`);
        if (!res.headersSent) res.writeHead(500).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
