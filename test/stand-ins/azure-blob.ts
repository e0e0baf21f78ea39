/**
 * The Azure Blob Storage side of GitHub's results services (cache v2 and artifacts v2): the
 * signed URLs the Twirp calls hand out, and the REST operations the Azure SDK
 * (@azure/storage-blob) sends to them. Shared by test/stand-ins/cache-v2.ts and
 * test/stand-ins/artifact-v2.ts; each owns its entries and says which blob belongs to which.
 *
 * Operations served: Put Blob (a single PUT with x-ms-blob-type: BlockBlob), Put Block
 * (`comp=block&blockid=`) and Put Block List (`comp=blocklist`, XML `<BlockList><Latest>…`),
 * Get Blob Properties (HEAD) and Get Blob (GET, whole or `x-ms-range`). The SAS is checked:
 * the signature covers the blob path, permissions and expiry; writes need c or w, reads r.
 *
 * Signed URLs name `<account>.blob.core.windows.net`, as the hosted services' do (the clients
 * pick the Azure SDK for that host). Those names cannot resolve here, so the stand-in's server
 * is also an HTTP forward proxy for them: steps get HTTP_PROXY pointing at it (the Azure SDK
 * honours it; @actions/http-client never proxies loopback, so the Twirp calls go straight).
 * Signed URLs are http: TLS would need a certificate for that host.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import type * as http from 'node:http';

/** The Azure SDK's maximum for one Put Blob and for one block. */
const MAX_PUT_BLOB = 5000 * 1024 * 1024;
const MAX_BLOCK = 4000 * 1024 * 1024;
const API_VERSION = '2025-01-05';

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

/** What the owning service keeps for one blob; the account writes `data` and `contentType`. */
export interface BlobRecord {
  createdAt: number;
  /** The committed content (Put Blob, or Put Block List of the staged blocks). */
  data?: Buffer;
  /** x-ms-blob-content-type of the write that committed `data`. */
  contentType?: string;
}

export interface BlobAccountOptions {
  /** The account's host name, e.g. `slipwaycache.blob.core.windows.net`. */
  host: string;
  /** What owns a blob, for messages ("cache entry", "artifact"). */
  owner: string;
  /** The record a blob path belongs to, and whether it is sealed (finalized: read-only and readable). */
  lookup(blob: string): { record: BlobRecord; sealed: boolean } | undefined;
  violation(message: string): void;
}

export class BlobAccount {
  readonly host: string;
  readonly calls: BlobCall[] = [];
  private readonly options: BlobAccountOptions;
  private readonly secret = randomBytes(32);
  private readonly staged = new Map<string, Map<string, Buffer>>();

  constructor(options: BlobAccountOptions) {
    this.options = options;
    this.host = options.host;
  }

  /** A SAS URL for `blob` (`<container>/<path>`) with these permissions (e.g. `cw`, `r`). */
  sign(blob: string, permissions: string, ttlMs = 3600_000): string {
    const expiry = new Date(Date.now() + ttlMs).toISOString().replace(/\.\d+Z$/, 'Z');
    const sig = this.signature(blob, permissions, expiry);
    const query = new URLSearchParams({ sv: API_VERSION, se: expiry, sr: 'b', sp: permissions, sig });
    return `http://${this.host}/${blob.split('/').map(encodeURIComponent).join('/')}?${query.toString()}`;
  }

  /**
   * Serves the request when it is for this account: as a forward proxy (absolute-form request
   * line) or by its Host header. A proxy request for any other host is refused and recorded.
   * Returns false when the request is not the account's (the caller routes it).
   */
  serve(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): boolean {
    const target = req.url ?? '/';
    if (/^https?:\/\//.test(target)) {
      const url = new URL(target);
      if (url.hostname !== this.host) {
        this.options.violation(`proxy request for a host that is not the ${this.options.owner}'s blob account: ${url.host}`);
        res.writeHead(502).end();
        return true;
      }
      this.blob(req, url, body, res, true);
      return true;
    }
    if (req.headers.host !== this.host) return false;
    this.blob(req, new URL(target, `http://${this.host}`), body, res, false);
    return true;
  }

  reset(): void {
    this.calls.length = 0;
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
    this.calls.push(call);
    const requestId = randomBytes(16).toString('hex');
    const common = { 'x-ms-request-id': requestId, 'x-ms-version': API_VERSION, Date: new Date().toUTCString() };
    const error = (status: number, code: string, message: string, isViolation = true): void => {
      if (isViolation) this.options.violation(`${op} ${blob}: ${code}: ${message}`);
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
    const found = this.options.lookup(blob);
    if (!found) return error(404, 'ContainerNotFound', `no ${this.options.owner} owns ${blob}`);
    const { record, sealed } = found;

    if (writing) {
      if (sealed) return error(409, 'BlobImmutableDueToPolicy', `a finalized ${this.options.owner} cannot be written`);
      const length = req.headers['content-length'];
      if (length === undefined || Number(length) !== body.length) {
        return error(400, 'InvalidHeaderValue', `Content-Length ${length ?? '(none)'} does not match the ${body.length} bytes sent`);
      }
      const contentType = req.headers['x-ms-blob-content-type'] as string | undefined;
      if (op === 'PutBlob') {
        if (req.headers['x-ms-blob-type'] !== 'BlockBlob')
          return error(400, 'InvalidHeaderValue', `x-ms-blob-type is ${String(req.headers['x-ms-blob-type'])}, expected BlockBlob`);
        if (body.length > MAX_PUT_BLOB) return error(413, 'RequestBodyTooLarge', `${body.length} bytes is over the Put Blob limit`);
        record.data = body;
        record.contentType = contentType;
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
      record.data = data;
      record.contentType = contentType;
      this.staged.delete(blob);
      return ok(201, { ETag: etag(data), 'Last-Modified': new Date().toUTCString(), 'x-ms-request-server-encrypted': 'true' });
    }

    if (!sealed || !record.data) return error(404, 'BlobNotFound', 'the blob does not exist');
    const data = record.data;
    const props = {
      'Last-Modified': new Date(record.createdAt).toUTCString(),
      ETag: etag(data),
      'x-ms-blob-type': 'BlockBlob',
      'Accept-Ranges': 'bytes',
      'Content-Type': record.contentType ?? 'application/octet-stream',
      'x-ms-creation-time': new Date(record.createdAt).toUTCString(),
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

function etag(data: Buffer): string {
  return `"0x${createHash('sha1').update(data).digest('hex').slice(0, 15).toUpperCase()}"`;
}

function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('base64');
}
