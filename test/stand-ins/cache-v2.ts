/**
 * A stand-in for GitHub's Actions cache service v2, the one hosted runners use: @actions/cache
 * (6.x) picks it when ACTIONS_CACHE_SERVICE_V2 is set and talks to ACTIONS_RESULTS_URL.
 *
 * Two published APIs, as the client uses them:
 *
 * - Twirp JSON (github.actions.results.api.v1.CacheService, protos published in
 *   actions/toolkit packages/cache/src/generated/results/api/v1/cache.ts; the wire format in
 *   test/stand-ins/twirp.ts). A second CreateCacheEntry of a key and version is 409
 *   already_exists, as the hosted service answers.
 * - Azure Blob Storage REST at the signed URLs (test/stand-ins/azure-blob.ts): the upload URL
 *   allows create/write only, the download URL read only. @actions/cache downloads through the
 *   Azure SDK only for `*.blob.core.windows.net` (anything else gets a plain GET), so the URLs
 *   name such a host and the server is a forward proxy for it (HTTP_PROXY in env()).
 *
 * Every request is recorded; a request that breaks the protocol is answered with the error
 * the real service would give AND recorded in `violations`, because @actions/cache turns cache
 * errors into warnings and a test must still see them.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ResultsServiceStandIn } from './results-service';
import { answer, refuse, type TwirpAnswer, type TwirpService } from './twirp';

export type { BlobCall } from './azure-blob';
export type { TwirpCall } from './twirp';

export const SERVICE = 'github.actions.results.api.v1.CacheService';
const ACCOUNT_HOST = 'slipwaycache.blob.core.windows.net';
const CONTAINER = 'actions-cache';

export interface CacheEntry {
  key: string;
  version: string;
  id: number;
  blob: string;
  createdAt: number;
  finalized: boolean;
  sizeBytes?: number;
  data?: Buffer;
  contentType?: string;
}

export interface CacheV2Options {
  token?: string;
  /** Answer every Twirp call with this HTTP status (a service in trouble). */
  twirpStatus?: number;
  /** Hold CreateCacheEntry calls until this settles (jobs of a matrix that start together). */
  createGate?: Promise<void>;
}

const FIELDS: Record<string, string[]> = {
  CreateCacheEntry: ['metadata', 'key', 'version'],
  FinalizeCacheEntryUpload: ['metadata', 'key', 'size_bytes', 'version'],
  GetCacheEntryDownloadURL: ['metadata', 'key', 'restore_keys', 'version'],
};

export class CacheV2StandIn extends ResultsServiceStandIn {
  readonly token: string;
  readonly entries: CacheEntry[] = [];
  options: CacheV2Options;
  private nextId = 1;

  constructor(options: CacheV2Options = {}) {
    super({
      host: ACCOUNT_HOST,
      owner: 'cache entry',
      lookup: (blob) => {
        const entry = this.entries.find((e) => e.blob === blob);
        return entry && { record: entry, sealed: entry.finalized };
      },
    });
    this.options = options;
    this.token = options.token ?? `runtime-${randomBytes(8).toString('hex')}`;
  }

  /** What a hosted runner gives a step for the cache (plus the proxy that reaches the blob host). */
  env(): Record<string, string> {
    return {
      ACTIONS_CACHE_SERVICE_V2: 'true',
      ACTIONS_RESULTS_URL: this.resultsUrl,
      ACTIONS_RUNTIME_TOKEN: this.token,
      HTTP_PROXY: this.proxyUrl,
    };
  }

  protected twirpService(): TwirpService {
    return {
      name: SERVICE,
      fields: FIELDS,
      calls: this.twirp,
      violation: (m) => this.violation(m),
      authenticate: (authorization) => (authorization === `Bearer ${this.token}` ? undefined : 'missing or wrong runtime token'),
      unavailable: () => this.options.twirpStatus,
      handle: (method, b) => this.twirpCall(method, b),
    };
  }

  /** `createGate` holds CreateCacheEntry back until it settles (two saves racing). */
  protected override serveTwirpRequest(serve: () => void, url: URL): void {
    const gate = url.pathname.endsWith('/CreateCacheEntry') ? this.options.createGate : undefined;
    if (!gate) return serve();
    void gate.then(serve);
  }

  // --- Twirp -------------------------------------------------------------------------------

  private twirpCall(method: string, body: Record<string, unknown>): TwirpAnswer {
    const problem = checkKey(body.key, 'key') ?? checkVersion(body.version);
    if (problem) return refuse('invalid_argument', problem);
    const key = body.key as string;
    const version = body.version as string;

    if (method === 'CreateCacheEntry') {
      if (this.entries.some((e) => e.key === key && e.version === version && e.finalized)) {
        return refuse('already_exists', 'cache entry with the same key, version, and scope already exists', false);
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
      return answer({ ok: true, signed_upload_url: this.account.sign(entry.blob, 'cw') });
    }

    if (method === 'FinalizeCacheEntryUpload') {
      if (typeof body.size_bytes !== 'string' || !/^\d+$/.test(body.size_bytes)) {
        return refuse('invalid_argument', `size_bytes must be an int64 as a decimal string, got ${JSON.stringify(body.size_bytes)}`);
      }
      const entry = this.entries.find((e) => e.key === key && e.version === version && !e.finalized);
      if (!entry) return refuse('not_found', `no reserved cache entry for key ${key} and version ${version}`);
      const sizeBytes = Number(body.size_bytes);
      if (!entry.data) return refuse('failed_precondition', `nothing was uploaded for ${key}`);
      if (entry.data.length !== sizeBytes) {
        return refuse('invalid_argument', `size_bytes ${sizeBytes} does not match the ${entry.data.length} bytes uploaded for ${key}`);
      }
      entry.finalized = true;
      entry.sizeBytes = sizeBytes;
      return answer({ ok: true, entry_id: String(entry.id) });
    }

    // GetCacheEntryDownloadURL: the primary key exactly, then each restore key exactly and then
    // as a prefix, newest first; only entries of the same version and finished uploads count.
    const restoreKeys = body.restore_keys ?? [];
    if (!Array.isArray(restoreKeys)) return refuse('invalid_argument', 'restore_keys must be a list');
    for (const [i, k] of restoreKeys.entries()) {
      const bad = checkKey(k, `restore_keys[${i}]`);
      if (bad) return refuse('invalid_argument', bad);
    }
    if (restoreKeys.length + 1 > 10) return refuse('invalid_argument', `${restoreKeys.length + 1} keys: at most 10 are allowed`);
    const usable = this.entries
      .filter((e) => e.finalized && e.version === version)
      .sort((a, b) => b.createdAt - a.createdAt || b.id - a.id);
    let match = usable.find((e) => e.key === key);
    for (const prefix of restoreKeys as string[]) {
      if (match) break;
      match = usable.find((e) => e.key === prefix) ?? usable.find((e) => e.key.startsWith(prefix));
    }
    if (!match) return answer({ ok: false });
    return answer({ ok: true, signed_download_url: this.account.sign(match.blob, 'r'), matched_key: match.key });
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

function entryBlobName(key: string, version: string): string {
  return createHash('sha256').update(`${key}\0${version}`).digest('hex');
}
