/**
 * A stand-in for Sentry's release endpoints (docs.sentry.io/api/releases/): create a release
 * (POST /api/0/organizations/{org}/releases/: version and projects required; 201, or 208 when
 * the version exists), update it (PUT …/releases/{version}/: refs, commits, dateReleased),
 * create a deploy (POST …/releases/{version}/deploys/: environment required). Bearer token auth.
 */
import { StubServer, type RecordedRequest, type Reply } from './cloud-stub-server';

export interface SentryStubOptions {
  token: string;
  org: string;
  projects: string[];
  /** Repositories with a Sentry integration; refs to others are refused like Sentry does. */
  repositories: string[];
}

export interface StubRelease {
  version: string;
  projects: string[];
  refs: unknown[];
  dateReleased: string | null;
  deploys: Record<string, unknown>[];
}

export class SentryStub {
  readonly server: StubServer;
  readonly releases = new Map<string, StubRelease>();

  constructor(readonly opts: SentryStubOptions) {
    this.server = new StubServer((req) => this.route(req));
  }

  get requests(): RecordedRequest[] {
    return this.server.requests;
  }

  start(): Promise<string> {
    return this.server.start();
  }

  stop(): Promise<void> {
    return this.server.stop();
  }

  private route(req: RecordedRequest): Reply {
    if (req.headers.authorization !== `Bearer ${this.opts.token}`) return { status: 401, body: { detail: 'Invalid token' } };
    if (req.headers['content-type'] !== 'application/json') return { status: 415, body: { detail: 'Unsupported media type' } };
    const base = `/api/0/organizations/${this.opts.org}/releases/`;
    if (!req.path.startsWith(base)) return { status: 404, body: { detail: 'The requested resource does not exist' } };
    const rest = req.path.slice(base.length);
    const body = (req.json ?? {}) as Record<string, unknown>;
    if (rest === '' && req.method === 'POST') return this.create(body);
    const m = /^([^/]+)\/(deploys\/)?$/.exec(rest);
    if (!m) return { status: 404, body: { detail: 'The requested resource does not exist' } };
    const release = this.releases.get(decodeURIComponent(m[1]!));
    if (!release) return { status: 404, body: { detail: 'The requested resource does not exist' } };
    if (m[2] && req.method === 'POST') return this.deploy(release, body);
    if (!m[2] && req.method === 'PUT') return this.update(release, body);
    return { status: 405, body: { detail: `Method "${req.method}" not allowed.` } };
  }

  private create(body: Record<string, unknown>): Reply {
    const version = body.version;
    const projects = body.projects;
    if (typeof version !== 'string' || !version) return { status: 400, body: { version: ['This field is required.'] } };
    if (!Array.isArray(projects) || projects.length === 0) return { status: 400, body: { projects: ['This field is required.'] } };
    for (const p of projects)
      if (!this.opts.projects.includes(String(p))) return { status: 400, body: { projects: [`Invalid project ids or slugs`] } };
    const existing = this.releases.get(version);
    if (existing) return { status: 208, body: { version, projects: existing.projects.map((slug) => ({ slug })) } };
    const release: StubRelease = { version, projects: projects.map(String), refs: [], dateReleased: null, deploys: [] };
    this.releases.set(version, release);
    return { status: 201, body: { version, dateReleased: null, projects: release.projects.map((slug) => ({ slug })) } };
  }

  private update(release: StubRelease, body: Record<string, unknown>): Reply {
    if (body.refs !== undefined) {
      if (!Array.isArray(body.refs)) return { status: 400, body: { refs: ['Expected a list of items.'] } };
      for (const ref of body.refs as Record<string, unknown>[]) {
        if (typeof ref.repository !== 'string' || typeof ref.commit !== 'string') {
          return { status: 400, body: { refs: ['repository and commit are required.'] } };
        }
        if (!this.opts.repositories.includes(ref.repository)) {
          return { status: 400, body: { detail: `Invalid repository names: ${ref.repository}` } };
        }
      }
      release.refs = body.refs;
    }
    if (body.dateReleased !== undefined) {
      if (typeof body.dateReleased !== 'string' || Number.isNaN(Date.parse(body.dateReleased))) {
        return { status: 400, body: { dateReleased: ['Datetime has wrong format.'] } };
      }
      release.dateReleased = body.dateReleased;
    }
    return { status: 200, body: { version: release.version, dateReleased: release.dateReleased } };
  }

  private deploy(release: StubRelease, body: Record<string, unknown>): Reply {
    if (typeof body.environment !== 'string' || !body.environment)
      return { status: 400, body: { environment: ['This field is required.'] } };
    for (const f of ['dateStarted', 'dateFinished']) {
      if (body[f] !== undefined && (typeof body[f] !== 'string' || Number.isNaN(Date.parse(body[f]))))
        return { status: 400, body: { [f]: ['Datetime has wrong format.'] } };
    }
    release.deploys.push(body);
    return { status: 201, body: { id: String(release.deploys.length), environment: body.environment, name: body.name ?? null } };
  }
}
