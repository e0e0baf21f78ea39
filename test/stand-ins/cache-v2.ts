/**
 * A stand-in for GitHub's Actions cache service v2, the one hosted runners use: @actions/cache
 * (6.x) picks it when ACTIONS_CACHE_SERVICE_V2 is set and talks to ACTIONS_RESULTS_URL.
 *
 * Two published APIs, as the client uses them:
 *
 * - Twirp JSON (github.actions.results.api.v1.CacheService, protos published in
 *   actions/toolkit packages/cache/src/generated/results/api/v1/cache.ts): POST
 *   /twirp/<service>/<method>, Content-Type application/json, `Authorization: Bearer
 *   <ACTIONS_RUNTIME_TOKEN>`, bodies with the proto field names (protobuf-ts `useProtoFieldName`,
 *   int64 as a decimal string, default values left out). Errors are Twirp's `{code, msg}` with
 *   the code's HTTP status (a second CreateCacheEntry of a key and version is 409 already_exists,
 *   as the hosted service answers).
 * - Azure Blob Storage REST (the signed URLs): Put Blob (a single PUT with x-ms-blob-type:
 *   BlockBlob, up to the client's 128 MiB single-shot size), Put Block (`comp=block&blockid=`)
 *   and Put Block List (`comp=blocklist`, XML `<BlockList><Latest>…`) above it, Get Blob
 *   Properties (HEAD) and Get Blob (GET, whole or `x-ms-range`). The SAS is checked: the upload
 *   URL allows create/write only, the download URL read only, both sign the blob path.
 *
 * Signed URLs name `<account>.blob.core.windows.net`, as the hosted service's do, because
 * @actions/cache downloads through the Azure SDK only for that host (anything else gets a
 * plain GET). Those names cannot resolve here, so the server is also an HTTP forward proxy for
 * them: steps get HTTP_PROXY pointing at it (the Azure SDK honours it; @actions/http-client
 * never proxies loopback, so the Twirp calls go straight). Signed URLs are http: TLS would
 * need a certificate for that host.
 *
 * Every request is recorded; a request that breaks the protocol is answered with the error
 * the real service would give AND recorded in `violations`, because @actions/cache turns cache
 * errors into warnings and a test must still see them.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export const SERVICE = 'github.actions.results.api.v1.CacheService';
const ACCOUNT_HOST = 'slipwaycache.blob.core.windows.net';
const CONTAINER = 'actions-cache';
/** The Azure SDK's maximum for one Put Blob, and @actions/cache's single-shot size. */
const MAX_PUT_BLOB = 5000 * 1024 * 1024;
const MAX_BLOCK = 4000 * 1024 * 1024;

export interface TwirpCall {
  method: string;
  body: Record<string, unknown>;
  status: number;
  response: Record<string, unknown>;
}

export interface BlobCall {
  op: 'PutBlob' | 'PutBlock' | 'PutBlockList' | 'GetBlobProperties' | 'GetBlob' | 'unknown';
  httpMethod: string;
  blob: string;
  /** Through the proxy (absolute-form request line) rather than to the server directly. */
  proxied: boolean;
  headers: http.IncomingHttpHeaders;
  query: Record<string, string>;
  bodyBytes: number;
  status: number;
  /** Put Block: the block id; Put Block List: the ids listed. */
  blockIds?: string[];
  range?: string;
}

export interface CacheEntry {
  key: string;
  version: string;
  id: number;
  blob: string;
  createdAt: number;
  finalized: boolean;
  sizeBytes?: number;
  data?: Buffer;
}

export interface CacheV2Options {
  token?: string;
  /** Answer every Twirp call with this HTTP status (a service in trouble). */
  twirpStatus?: number;
  /** Hold CreateCacheEntry calls until this settles (jobs of a matrix that start together). */
  createGate?: Promise<void>;
}

export class CacheV2StandIn {
  readonly token: string;
  readonly twirp: TwirpCall[] = [];
  readonly blobs: BlobCall[] = [];
  readonly violations: string[] = [];
  readonly entries: CacheEntry[] = [];
  options: CacheV2Options;
  private server?: http.Server;
  private port = 0;
  private readonly secret = randomBytes(32);
  private readonly staged = new Map<string, Map<string, Buffer>>();
  private nextId = 1;

  constructor(options: CacheV2Options = {}) {
    this.options = options;
    this.token = options.token ?? `runtime-${randomBytes(8).toString('hex')}`;
  }

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          this.handle(req, Buffer.concat(chunks), res);
        } catch (error) {
          this.violation(`stand-in error on ${req.method} ${req.url}: ${(error as Error).stack}`);
          if (!res.headersSent) res.writeHead(500).end();
        }
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = undefined;
  }

  get resultsUrl(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  /** What a hosted runner gives a step for the cache (plus the proxy that reaches the blob host). */
  env(): Record<string, string> {
    return {
      ACTIONS_CACHE_SERVICE_V2: 'true',
      ACTIONS_RESULTS_URL: this.resultsUrl,
      ACTIONS_RUNTIME_TOKEN: this.token,
      HTTP_PROXY: `http://127.0.0.1:${this.port}`,
    };
  }

  /** Twirp calls of one method, in order. */
  calls(method: string): TwirpCall[] {
    return this.twirp.filter((c) => c.method === method);
  }

  reset(): void {
    this.twirp.length = 0;
    this.blobs.length = 0;
    this.violations.length = 0;
  }

  private violation(message: string): void {
    this.violations.push(message);
  }

  private handle(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): void {
    const target = req.url ?? '/';
    if (/^https?:\/\//.test(target)) {
      const url = new URL(target);
      if (url.hostname !== ACCOUNT_HOST) {
        this.violation(`proxy request for a host that is not the cache's blob account: ${url.host}`);
        return void res.writeHead(502).end();
      }
      return this.blob(req, url, body, res, true);
    }
    const url = new URL(target, `http://${req.headers.host ?? '127.0.0.1'}`);
    if (url.pathname.startsWith(`/twirp/`)) {
      const gate = url.pathname.endsWith('/CreateCacheEntry') ? this.options.createGate : undefined;
      if (!gate) return this.twirpCall(req, url, body, res);
      void gate.then(() => this.twirpCall(req, url, body, res));
      return;
    }
    if (req.headers.host === ACCOUNT_HOST) return this.blob(req, url, body, res, false);
    this.violation(`unexpected request ${req.method} ${target}`);
    res.writeHead(404).end();
  }

  // --- Twirp -------------------------------------------------------------------------------

  private twirpCall(req: http.IncomingMessage, url: URL, raw: Buffer, res: http.ServerResponse): void {
    const method = url.pathname.slice(`/twirp/${SERVICE}/`.length);
    let body: Record<string, unknown> = {};
    const reply = (status: number, response: Record<string, unknown>): void => {
      this.twirp.push({ method, body, status, response });
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(response));
    };
    const fail = (status: number, code: string, msg: string, isViolation = true): void => {
      if (isViolation) this.violation(`${method}: ${msg}`);
      reply(status, { code, msg });
    };
    if (
      !url.pathname.startsWith(`/twirp/${SERVICE}/`) ||
      !['CreateCacheEntry', 'FinalizeCacheEntryUpload', 'GetCacheEntryDownloadURL'].includes(method)
    ) {
      return fail(404, 'bad_route', `no handler for path ${url.pathname}`);
    }
    if (req.method !== 'POST') return fail(404, 'bad_route', `unsupported method ${req.method} (only POST is allowed)`);
    if (req.headers.authorization !== `Bearer ${this.token}`) return fail(401, 'unauthenticated', 'missing or wrong runtime token');
    if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) {
      return fail(400, 'malformed', `Content-Type ${req.headers['content-type']}: this stand-in speaks Twirp JSON only`);
    }
    try {
      const parsed = JSON.parse(raw.toString('utf8')) as unknown;
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      body = parsed as Record<string, unknown>;
    } catch (error) {
      return fail(400, 'malformed', `the body is not a JSON object: ${(error as Error).message}`);
    }
    if (this.options.twirpStatus) return fail(this.options.twirpStatus, 'unavailable', 'the cache service is unavailable', false);

    const fields: Record<string, string[]> = {
      CreateCacheEntry: ['metadata', 'key', 'version'],
      FinalizeCacheEntryUpload: ['metadata', 'key', 'size_bytes', 'version'],
      GetCacheEntryDownloadURL: ['metadata', 'key', 'restore_keys', 'version'],
    };
    const unknown = Object.keys(body).filter((k) => !fields[method]!.includes(k));
    if (unknown.length) return fail(400, 'malformed', `unknown field(s) ${unknown.join(', ')} (proto field names expected)`);
    const problem = checkKey(body.key, 'key') ?? checkVersion(body.version);
    if (problem) return fail(400, 'invalid_argument', problem);
    const key = body.key as string;
    const version = body.version as string;

    if (method === 'CreateCacheEntry') {
      if (this.entries.some((e) => e.key === key && e.version === version && e.finalized)) {
        return fail(409, 'already_exists', 'cache entry with the same key, version, and scope already exists', false);
      }
      // An unfinished reservation of the same key and version is replaced (the job was retried).
      const stale = this.entries.findIndex((e) => e.key === key && e.version === version && !e.finalized);
      if (stale >= 0) this.entries.splice(stale, 1);
      const entry: CacheEntry = {
        key,
        version,
        id: this.nextId++,
        blob: `${CONTAINER}/${entryBlobName(key, version)}`,
        createdAt: Date.now(),
        finalized: false,
      };
      this.entries.push(entry);
      return reply(200, { ok: true, signed_upload_url: this.sign(entry.blob, 'cw') });
    }

    if (method === 'FinalizeCacheEntryUpload') {
      if (typeof body.size_bytes !== 'string' || !/^\d+$/.test(body.size_bytes)) {
        return fail(400, 'invalid_argument', `size_bytes must be an int64 as a decimal string, got ${JSON.stringify(body.size_bytes)}`);
      }
      const entry = this.entries.find((e) => e.key === key && e.version === version && !e.finalized);
      if (!entry) return fail(404, 'not_found', `no reserved cache entry for key ${key} and version ${version}`);
      const sizeBytes = Number(body.size_bytes);
      if (!entry.data) return fail(400, 'failed_precondition', `nothing was uploaded for ${key}`);
      if (entry.data.length !== sizeBytes) {
        return fail(400, 'invalid_argument', `size_bytes ${sizeBytes} does not match the ${entry.data.length} bytes uploaded for ${key}`);
      }
      entry.finalized = true;
      entry.sizeBytes = sizeBytes;
      return reply(200, { ok: true, entry_id: String(entry.id) });
    }

    // GetCacheEntryDownloadURL: the primary key exactly, then each restore key exactly and then
    // as a prefix, newest first; only entries of the same version and finished uploads count.
    const restoreKeys = body.restore_keys ?? [];
    if (!Array.isArray(restoreKeys)) return fail(400, 'invalid_argument', 'restore_keys must be a list');
    for (const [i, k] of restoreKeys.entries()) {
      const bad = checkKey(k, `restore_keys[${i}]`);
      if (bad) return fail(400, 'invalid_argument', bad);
    }
    if (restoreKeys.length + 1 > 10) return fail(400, 'invalid_argument', `${restoreKeys.length + 1} keys: at most 10 are allowed`);
    const usable = this.entries
      .filter((e) => e.finalized && e.version === version)
      .sort((a, b) => b.createdAt - a.createdAt || b.id - a.id);
    let match = usable.find((e) => e.key === key);
    for (const prefix of restoreKeys as string[]) {
      if (match) break;
      match = usable.find((e) => e.key === prefix) ?? usable.find((e) => e.key.startsWith(prefix));
    }
    if (!match) return reply(200, { ok: false });
    return reply(200, { ok: true, signed_download_url: this.sign(match.blob, 'r'), matched_key: match.key });
  }

  // --- Azure Blob Storage ------------------------------------------------------------------

  private sign(blob: string, permissions: string): string {
    const expiry = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');
    const sig = this.signature(blob, permissions, expiry);
    const query = new URLSearchParams({ sv: '2025-01-05', se: expiry, sr: 'b', sp: permissions, sig });
    return `http://${ACCOUNT_HOST}/${blob}?${query.toString()}`;
  }

  private signature(blob: string, permissions: string, expiry: string): string {
    return createHmac('sha256', this.secret).update(`${permissions}\n${expiry}\n/${blob}`).digest('base64');
  }

  private blob(req: http.IncomingMessage, url: URL, body: Buffer, res: http.ServerResponse, proxied: boolean): void {
    const query = Object.fromEntries(url.searchParams.entries());
    const blob = decodeURIComponent(url.pathname.slice(1));
    const method = req.method ?? 'GET';
    const op: BlobCall['op'] =
      method === 'PUT' && query.comp === 'block'
        ? 'PutBlock'
        : method === 'PUT' && query.comp === 'blocklist'
          ? 'PutBlockList'
          : method === 'PUT' && !query.comp
            ? 'PutBlob'
            : method === 'HEAD' && !query.comp
              ? 'GetBlobProperties'
              : method === 'GET' && !query.comp
                ? 'GetBlob'
                : 'unknown';
    const call: BlobCall = { op, httpMethod: method, blob, proxied, headers: req.headers, query, bodyBytes: body.length, status: 0 };
    this.blobs.push(call);
    const requestId = randomBytes(16).toString('hex');
    const common = { 'x-ms-request-id': requestId, 'x-ms-version': '2025-01-05', Date: new Date().toUTCString() };
    const error = (status: number, code: string, message: string, isViolation = true): void => {
      if (isViolation) this.violation(`${op} ${blob}: ${code}: ${message}`);
      call.status = status;
      const xml = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${message}\nRequestId:${requestId}</Message></Error>`;
      res.writeHead(status, { ...common, 'x-ms-error-code': code, 'Content-Type': 'application/xml' });
      res.end(method === 'HEAD' ? undefined : xml);
    };
    const ok = (status: number, headers: Record<string, string | number>, data?: Buffer): void => {
      call.status = status;
      res.writeHead(status, { ...common, ...headers });
      res.end(data);
    };

    if (op === 'unknown')
      return error(400, 'UnsupportedHttpVerb', `${method} with comp=${query.comp ?? ''} is not an operation this stand-in serves`);
    if (!req.headers['x-ms-version']) return error(400, 'MissingRequiredHeader', 'x-ms-version is required');
    // The SAS: the signature covers the path, permissions and expiry; writes need c/w, reads r.
    const { sp = '', se = '', sig = '', sr = '' } = query;
    if (!sig || sr !== 'b' || sig !== this.signature(blob, sp, se))
      return error(403, 'AuthenticationFailed', 'the SAS signature does not match this blob');
    if (Date.parse(se) < Date.now()) return error(403, 'AuthenticationFailed', 'the SAS has expired');
    const writing = method === 'PUT';
    if (writing ? !(sp.includes('c') || sp.includes('w')) : !sp.includes('r')) {
      return error(403, 'AuthorizationPermissionMismatch', `the SAS allows "${sp}", not ${writing ? 'writing' : 'reading'}`);
    }
    const entry = this.entries.find((e) => e.blob === blob);
    if (!entry) return error(404, 'ContainerNotFound', `no cache entry owns ${blob}`);

    if (writing) {
      if (entry.finalized) return error(409, 'BlobImmutableDueToPolicy', 'a finalized cache entry cannot be written');
      const length = req.headers['content-length'];
      if (length === undefined || Number(length) !== body.length) {
        return error(400, 'InvalidHeaderValue', `Content-Length ${length ?? '(none)'} does not match the ${body.length} bytes sent`);
      }
      if (op === 'PutBlob') {
        if (req.headers['x-ms-blob-type'] !== 'BlockBlob')
          return error(400, 'InvalidHeaderValue', `x-ms-blob-type is ${String(req.headers['x-ms-blob-type'])}, expected BlockBlob`);
        if (body.length > MAX_PUT_BLOB) return error(413, 'RequestBodyTooLarge', `${body.length} bytes is over the Put Blob limit`);
        entry.data = body;
        this.staged.delete(blob);
        return ok(201, {
          ETag: etag(body),
          'Last-Modified': new Date().toUTCString(),
          'Content-MD5': md5(body),
          'x-ms-request-server-encrypted': 'true',
        });
      }
      if (op === 'PutBlock') {
        const id = query.blockid ?? '';
        const problem = checkBlockId(id, this.staged.get(blob));
        if (problem) return error(400, 'InvalidQueryParameterValue', problem);
        if (body.length === 0 || body.length > MAX_BLOCK) return error(413, 'RequestBodyTooLarge', `a block of ${body.length} bytes`);
        call.blockIds = [id];
        const staged = this.staged.get(blob) ?? new Map<string, Buffer>();
        staged.set(id, body);
        this.staged.set(blob, staged);
        return ok(201, { 'Content-MD5': md5(body), 'x-ms-request-server-encrypted': 'true' });
      }
      // PutBlockList
      const ids = parseBlockList(body.toString('utf8'));
      if (!ids) return error(400, 'InvalidXmlDocument', 'the body is not a <BlockList> of <Latest>/<Uncommitted>/<Committed> ids');
      call.blockIds = ids;
      const staged = this.staged.get(blob);
      const missing = ids.filter((id) => !staged?.has(id));
      if (!ids.length || missing.length)
        return error(400, 'InvalidBlockList', `blocks not staged: ${missing.join(', ') || '(empty list)'}`);
      const data = Buffer.concat(ids.map((id) => staged!.get(id)!));
      entry.data = data;
      this.staged.delete(blob);
      return ok(201, { ETag: etag(data), 'Last-Modified': new Date().toUTCString(), 'x-ms-request-server-encrypted': 'true' });
    }

    if (!entry.finalized || !entry.data) return error(404, 'BlobNotFound', 'the blob does not exist');
    const data = entry.data;
    const props = {
      'Last-Modified': new Date(entry.createdAt).toUTCString(),
      ETag: etag(data),
      'x-ms-blob-type': 'BlockBlob',
      'Accept-Ranges': 'bytes',
      'Content-Type': 'application/octet-stream',
      'x-ms-creation-time': new Date(entry.createdAt).toUTCString(),
      'x-ms-lease-state': 'available',
      'x-ms-lease-status': 'unlocked',
      'x-ms-server-encrypted': 'true',
    };
    if (op === 'GetBlobProperties') return ok(200, { ...props, 'Content-Length': data.length });
    const range = (req.headers['x-ms-range'] as string | undefined) ?? req.headers.range;
    call.range = range;
    if (!range) return ok(200, { ...props, 'Content-Length': data.length, 'Content-MD5': md5(data) }, data);
    const m = /^bytes=(\d+)-(\d*)$/.exec(range);
    if (!m) return error(400, 'InvalidRange', `range ${range}`);
    const start = Number(m[1]);
    const end = Math.min(m[2] ? Number(m[2]) : data.length - 1, data.length - 1);
    if (start >= data.length || end < start) return error(416, 'InvalidRange', `range ${range} of a ${data.length}-byte blob`);
    const part = data.subarray(start, end + 1);
    return ok(206, { ...props, 'Content-Length': part.length, 'Content-Range': `bytes ${start}-${end}/${data.length}` }, part);
  }
}

function checkKey(value: unknown, name: string): string | undefined {
  if (typeof value !== 'string' || !value) return `${name} must be a non-empty string`;
  if (value.length > 512) return `${name} is ${value.length} characters; at most 512 are allowed`;
  if (value.includes(',')) return `${name} ${value} contains a comma`;
  return undefined;
}

function checkVersion(value: unknown): string | undefined {
  return typeof value === 'string' && /^[0-9a-f]{64}$/.test(value)
    ? undefined
    : `version must be a sha256 hex digest, got ${JSON.stringify(value)}`;
}

/** Block ids: base64, at most 64 bytes decoded, and of one length within a blob (Azure's rules). */
function checkBlockId(id: string, staged: Map<string, Buffer> | undefined): string | undefined {
  if (!id || !/^[A-Za-z0-9+/]+={0,2}$/.test(id) || id.length % 4 !== 0) return `blockid ${JSON.stringify(id)} is not base64`;
  if (Buffer.from(id, 'base64').length > 64) return `blockid ${id} is over 64 bytes`;
  const other = staged && [...staged.keys()].find((k) => k.length !== id.length);
  if (other) return `blockid ${id} differs in length from ${other} staged for the same blob`;
  return undefined;
}

function parseBlockList(xml: string): string[] | undefined {
  const m = /^\s*(<\?xml[^>]*\?>)?\s*<BlockList>([\s\S]*)<\/BlockList>\s*$/.exec(xml);
  if (!m) return undefined;
  const ids: string[] = [];
  const rest = m[2]!.replace(/<(Latest|Uncommitted|Committed)>([^<]*)<\/\1>/g, (_, _kind: string, id: string) => {
    ids.push(id);
    return '';
  });
  return rest.trim() ? undefined : ids;
}

function entryBlobName(key: string, version: string): string {
  return createHash('sha256').update(`${key}\0${version}`).digest('hex');
}

function etag(data: Buffer): string {
  return `"0x${createHash('sha1').update(data).digest('hex').slice(0, 15).toUpperCase()}"`;
}

function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('base64');
}
