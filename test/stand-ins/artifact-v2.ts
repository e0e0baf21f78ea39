/**
 * A stand-in for GitHub's Actions artifact service v2 (the one upload-artifact@v4+ and
 * @actions/artifact 2.x+ use): github.actions.results.api.v1.ArtifactService, protos published
 * in actions/toolkit packages/artifact/src/generated/results/api/v1/artifact.ts, served at
 * ACTIONS_RESULTS_URL.
 *
 * How the client talks to it (@actions/artifact 6.x, lib/internal/upload): the workflow run and
 * job backend ids come from the ACTIONS_RUNTIME_TOKEN JWT's `scp` claim
 * (`Actions.Results:<workflowRunBackendId>:<workflowJobRunBackendId>`); CreateArtifact (ids,
 * name, version, expires_at from the retention, mime_type) answers a signed upload URL; the zip
 * goes to it with BlockBlobClient.uploadStream (Put Block… then Put Block List, through
 * test/stand-ins/azure-blob.ts); FinalizeArtifact (ids, name, size, hash `sha256:<hex>`) answers
 * the artifact id. ListArtifacts and GetSignedArtifactURL are how a later step or job finds and
 * downloads it; DeleteArtifact is served too.
 *
 * Checked as the service does, or as its published client says it will: the Bearer token (a
 * JWT this stand-in signs), the backend ids against the token's scp claim, the name (the
 * characters the client refuses), the version, expires_at a timestamp in the future within the
 * retention limit, one artifact of a name per workflow run (a second CreateArtifact is 409
 * already_exists "an artifact with this name already exists on the workflow run", as the hosted
 * service answers), Finalize only after the blob was committed, its size and hash against the
 * bytes stored. Every request is recorded; one that breaks the protocol is answered with the
 * error the service would give AND recorded in `violations`.
 */
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { ResultsServiceStandIn } from './results-service';
import { answer, refuse, type TwirpAnswer, type TwirpService } from './twirp';

export type { BlobCall } from './azure-blob';
export type { TwirpCall } from './twirp';

export const ARTIFACT_SERVICE = 'github.actions.results.api.v1.ArtifactService';
const ACCOUNT_HOST = 'slipwayresults.blob.core.windows.net';
const CONTAINER = 'actions-results';
/** CreateArtifactRequest.version as the published clients send it: 4 (@actions/artifact 2.x) up to 7 (6.x, with mime_type). */
const VERSIONS = [4, 5, 6, 7];
/** What the client refuses in a name (lib/internal/upload/path-and-artifact-name-validation). */
const BAD_NAME_CHARS = ['"', ':', '<', '>', '|', '*', '?', '\r', '\n', '\\', '/'];

export interface Artifact {
  id: number;
  runBackendId: string;
  jobBackendId: string;
  name: string;
  version: number;
  mimeType?: string;
  blob: string;
  createdAt: number;
  expiresAt?: string;
  finalized: boolean;
  deleted: boolean;
  size?: number;
  /** `sha256:<hex>` as finalized. */
  digest?: string;
  /** The committed blob (the zip as uploaded). */
  data?: Buffer;
  contentType?: string;
}

export interface ArtifactV2Options {
  /** Answer every Twirp call with this HTTP status after the checks (a service in trouble). */
  twirpStatus?: number;
  /** The repository's retention limit: expires_at further out is refused. Default 90 days. */
  maxRetentionDays?: number;
}

const FIELDS: Record<string, string[]> = {
  CreateArtifact: ['workflow_run_backend_id', 'workflow_job_run_backend_id', 'name', 'expires_at', 'version', 'mime_type'],
  FinalizeArtifact: ['workflow_run_backend_id', 'workflow_job_run_backend_id', 'name', 'size', 'hash'],
  ListArtifacts: ['workflow_run_backend_id', 'workflow_job_run_backend_id', 'name_filter', 'id_filter'],
  GetSignedArtifactURL: ['workflow_run_backend_id', 'workflow_job_run_backend_id', 'name'],
  DeleteArtifact: ['workflow_run_backend_id', 'workflow_job_run_backend_id', 'name'],
};

interface Claims {
  scp?: string;
  exp?: number;
  nbf?: number;
}

export class ArtifactV2StandIn extends ResultsServiceStandIn {
  /** The workflow run's backend id, and the job's (of the default token). */
  readonly runBackendId = randomUUID();
  readonly jobBackendId = randomUUID();
  /** ACTIONS_RUNTIME_TOKEN for the default job. */
  readonly token: string;
  readonly artifacts: Artifact[] = [];
  options: ArtifactV2Options;
  private readonly secret = randomBytes(32);
  private nextId = 4_000_001;

  constructor(options: ArtifactV2Options = {}) {
    super({
      host: ACCOUNT_HOST,
      owner: 'artifact',
      lookup: (blob) => {
        const artifact = this.artifacts.find((a) => a.blob === blob && !a.deleted);
        return artifact && { record: artifact, sealed: artifact.finalized };
      },
    });
    this.options = options;
    this.token = this.issueToken();
  }

  /**
   * A runtime token as the runner hands a job: a JWT whose scp claim carries the run's backend
   * id and this job's. Another job of the same run gets its own job id.
   */
  issueToken(jobBackendId = this.jobBackendId, lifetimeS = 3600): string {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      nameid: 'dddddddd-dddd-dddd-dddd-dddddddddddd',
      scp: `Actions.ExampleScope Actions.Results:${this.runBackendId}:${jobBackendId}`,
      iss: 'https://token.actions.slipway.test',
      aud: 'vso:slipway',
      nbf: now - 60,
      exp: now + lifetimeS,
    };
    const head = b64url(JSON.stringify({ typ: 'JWT', alg: 'HS256' }));
    const body = b64url(JSON.stringify(claims));
    return `${head}.${body}.${this.jwtSignature(`${head}.${body}`)}`;
  }

  /** What a hosted runner gives a step for artifacts (plus the proxy that reaches the blob host). */
  env(token = this.token): Record<string, string> {
    return {
      ACTIONS_RESULTS_URL: this.resultsUrl,
      ACTIONS_RUNTIME_TOKEN: token,
      HTTP_PROXY: this.proxyUrl,
    };
  }

  /** The proxy the Azure SDK needs to reach the signed URLs from the test process. */
  get proxyOptions(): { host: string; port: number } {
    return { host: 'http://127.0.0.1', port: this.port };
  }

  private jwtSignature(data: string): string {
    return createHmac('sha256', this.secret).update(data).digest('base64url');
  }

  /** The claims of a token this stand-in signed and that is valid now; else why not. */
  private verify(token: string): Claims | string {
    const [head, body, sig] = token.split('.');
    if (!head || !body || !sig) return 'the runtime token is not a JWT';
    if (sig !== this.jwtSignature(`${head}.${body}`)) return 'the runtime token signature does not verify';
    const claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Claims;
    const now = Date.now() / 1000;
    if (!claims.exp || claims.exp < now || (claims.nbf && claims.nbf > now)) return 'the runtime token has expired';
    return claims;
  }

  protected twirpService(): TwirpService {
    return {
      name: ARTIFACT_SERVICE,
      fields: FIELDS,
      calls: this.twirp,
      violation: (m) => this.violation(m),
      authenticate: (authorization) => {
        if (!authorization?.startsWith('Bearer ')) return 'no Bearer runtime token';
        const claims = this.verify(authorization.slice('Bearer '.length));
        return typeof claims === 'string' ? claims : undefined;
      },
      unavailable: () => this.options.twirpStatus,
      handle: (method, b, bearer) => this.twirpCall(method, b, this.verify(bearer) as Claims),
    };
  }

  // --- Twirp -------------------------------------------------------------------------------

  private twirpCall(method: string, body: Record<string, unknown>, claims: Claims): TwirpAnswer {
    // Every request names the run and job; they must be the token's.
    const scope = (claims.scp ?? '').split(' ').find((s) => s.startsWith('Actions.Results:'));
    const [, runId, jobId] = scope?.split(':') ?? [];
    if (!runId || !jobId) return refuse('permission_denied', 'the runtime token has no Actions.Results scope');
    for (const field of ['workflow_run_backend_id', 'workflow_job_run_backend_id']) {
      if (typeof body[field] !== 'string' || !body[field]) return refuse('invalid_argument', `${field} is required`);
    }
    if (body.workflow_run_backend_id !== runId || body.workflow_job_run_backend_id !== jobId) {
      return refuse(
        'permission_denied',
        `workflow_run_backend_id/workflow_job_run_backend_id ${String(body.workflow_run_backend_id)}/${String(body.workflow_job_run_backend_id)} are not the token's ${runId}/${jobId}`,
      );
    }
    const ofRun = this.artifacts.filter((a) => a.runBackendId === runId && !a.deleted);

    if (method === 'ListArtifacts') {
      let list = ofRun.filter((a) => a.finalized);
      if (body.name_filter !== undefined) {
        if (typeof body.name_filter !== 'string') return refuse('invalid_argument', 'name_filter must be a string (StringValue)');
        list = list.filter((a) => a.name === body.name_filter);
      }
      if (body.id_filter !== undefined) {
        if (typeof body.id_filter !== 'string' || !/^\d+$/.test(body.id_filter))
          return refuse(
            'invalid_argument',
            `id_filter must be an int64 as a decimal string (Int64Value), got ${JSON.stringify(body.id_filter)}`,
          );
        list = list.filter((a) => String(a.id) === body.id_filter);
      }
      return answer({
        artifacts: list.map((a) => ({
          workflow_run_backend_id: a.runBackendId,
          workflow_job_run_backend_id: a.jobBackendId,
          database_id: String(a.id),
          name: a.name,
          size: String(a.size ?? 0),
          created_at: new Date(a.createdAt).toISOString(),
          ...(a.digest ? { digest: a.digest } : {}),
        })),
      });
    }

    const problem = checkName(body.name);
    if (problem) return refuse('invalid_argument', problem);
    const name = body.name as string;
    const existing = ofRun.find((a) => a.name === name);

    if (method === 'CreateArtifact') {
      if (typeof body.version !== 'number' || !VERSIONS.includes(body.version))
        return refuse(
          'invalid_argument',
          `version ${JSON.stringify(body.version)} is not one this service accepts (${VERSIONS.join(', ')})`,
        );
      if (body.mime_type !== undefined && typeof body.mime_type !== 'string')
        return refuse('invalid_argument', `mime_type must be a string (StringValue), got ${JSON.stringify(body.mime_type)}`);
      let expiresAt: string | undefined;
      if (body.expires_at !== undefined) {
        const raw = body.expires_at;
        const at = typeof raw === 'string' && RFC3339.test(raw) ? Date.parse(raw) : NaN;
        if (typeof raw !== 'string' || Number.isNaN(at))
          return refuse('invalid_argument', `expires_at must be an RFC 3339 timestamp (Timestamp), got ${JSON.stringify(raw)}`);
        if (at <= Date.now()) return refuse('invalid_argument', `expires_at ${raw} is in the past`);
        const maxDays = this.options.maxRetentionDays ?? 90;
        if (at > Date.now() + (maxDays + 1) * 86_400_000)
          return refuse('invalid_argument', `expires_at ${raw} is beyond the ${maxDays}-day retention limit`);
        expiresAt = raw;
      }
      if (existing) return refuse('already_exists', 'an artifact with this name already exists on the workflow run', false);
      const artifact: Artifact = {
        id: this.nextId++,
        runBackendId: runId,
        jobBackendId: jobId,
        name,
        version: body.version,
        mimeType: body.mime_type,
        blob: `${CONTAINER}/${runId}/workflow-job-run-${jobId}/artifacts/${createHash('sha256').update(name).digest('hex')}`,
        createdAt: Date.now(),
        expiresAt,
        finalized: false,
        deleted: false,
      };
      this.artifacts.push(artifact);
      return answer({ ok: true, signed_upload_url: this.account.sign(artifact.blob, 'cw') });
    }

    if (!existing) return refuse('not_found', `no artifact named ${name} in this workflow run`, method === 'FinalizeArtifact');

    if (method === 'FinalizeArtifact') {
      if (existing.jobBackendId !== jobId) return refuse('permission_denied', `artifact ${name} was created by another job`);
      if (existing.finalized) return refuse('failed_precondition', `artifact ${name} is already finalized`);
      const size = body.size ?? '0';
      if (typeof size !== 'string' || !/^\d+$/.test(size))
        return refuse('invalid_argument', `size must be an int64 as a decimal string, got ${JSON.stringify(body.size)}`);
      if (!existing.data) return refuse('failed_precondition', `nothing was uploaded for ${name}`);
      if (existing.data.length !== Number(size))
        return refuse('invalid_argument', `size ${size} does not match the ${existing.data.length} bytes uploaded for ${name}`);
      const digest = `sha256:${createHash('sha256').update(existing.data).digest('hex')}`;
      if (body.hash !== undefined && body.hash !== digest)
        return refuse(
          'invalid_argument',
          `hash ${JSON.stringify(body.hash)} does not match the ${digest} of the bytes uploaded for ${name}`,
        );
      existing.finalized = true;
      existing.size = existing.data.length;
      existing.digest = digest;
      return answer({ ok: true, artifact_id: String(existing.id) });
    }

    if (!existing.finalized) return refuse('not_found', `artifact ${name} is not finalized`, false);
    if (method === 'GetSignedArtifactURL') return answer({ signed_url: this.account.sign(existing.blob, 'r') });
    // DeleteArtifact
    existing.deleted = true;
    return answer({ ok: true, artifact_id: String(existing.id) });
  }
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

function checkName(value: unknown): string | undefined {
  if (typeof value !== 'string' || !value) return 'name must be a non-empty string';
  const bad = BAD_NAME_CHARS.find((c) => value.includes(c));
  if (bad) return `name ${JSON.stringify(value)} contains ${JSON.stringify(bad)}`;
  return undefined;
}

function b64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}
