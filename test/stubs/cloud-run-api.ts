/**
 * A stand-in for Google Cloud as the cloud-run provider meets it:
 * - OAuth 2.0 token endpoint (jwt-bearer grant: the assertion's RS256 signature is verified with
 *   the service account's public key, and its iss/aud/scope/exp checked),
 * - STS token exchange (sts.googleapis.com/v1/token, RFC 8693 parameters checked),
 * - IAM Credentials generateAccessToken (service account impersonation),
 * - a subject-token URL like GitHub's OIDC endpoint (ACTIONS_ID_TOKEN_REQUEST_URL),
 * - Cloud Run Admin API v2: services.get, services.patch (long-running operation, done after a
 *   few polls), operations.get; revisions get a URL per traffic tag, and every URL (service or
 *   tag) answers as the revision behind it does: 500 for images listed unhealthy.
 * Tokens issued here are the only ones the Cloud Run endpoints accept.
 */
import { createPublicKey, createVerify, randomBytes } from 'node:crypto';
import { StubServer, WebHosts, type RecordedRequest, type Reply } from './cloud-stub-server';

export interface CloudRunStubOptions {
  project: string;
  region: string;
  service: string;
  /** The revision serving at the start, and its image. */
  initialRevision: string;
  initialImage: string;
  /** PEM public key of the test's service account, and its email. */
  serviceAccountPublicKey?: string;
  serviceAccountEmail?: string;
  /** The subject token the OIDC URL hands out (and STS accepts), and the bearer that URL needs. */
  oidcToken?: string;
  oidcRequestToken?: string;
  /** The workload identity provider audience STS accepts. */
  stsAudience?: string;
  unhealthyImages?: string[];
  /** Images whose revision never becomes ready (the operation fails). */
  failingImages?: string[];
  operationPolls?: number;
  /** The OAuth access tokens to hand out (default: random ya29.* ones), e.g. one a registry knows. */
  mintToken?: () => string;
}

interface Revision {
  name: string;
  image: string;
  env: unknown[];
}

interface Traffic {
  type: string;
  revision?: string;
  percent?: number;
  tag?: string;
}

export class CloudRunStub {
  readonly server: StubServer;
  /** The service URL and each tag's URL: one host each, answering as the revision behind it. */
  readonly web = new WebHosts((host) => this.serveWeb(host));
  readonly revisions = new Map<string, Revision>();
  readonly issuedTokens = new Set<string>();
  readonly stsTokens = new Set<string>();
  service: { template: { revision?: string; containers: { image: string; env?: unknown[] }[] }; traffic: Traffic[]; latest: string };
  private readonly operations = new Map<string, { polls: number; error?: { code: number; message: string }; apply: () => void }>();

  constructor(readonly opts: CloudRunStubOptions) {
    this.server = new StubServer((req) => this.route(req));
    this.revisions.set(opts.initialRevision, { name: opts.initialRevision, image: opts.initialImage, env: [] });
    this.service = {
      template: { containers: [{ image: opts.initialImage, env: [] }] },
      traffic: [{ type: 'TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST', percent: 100 }],
      latest: opts.initialRevision,
    };
  }

  get requests(): RecordedRequest[] {
    return this.server.requests;
  }

  get serviceName(): string {
    return `projects/${this.opts.project}/locations/${this.opts.region}/services/${this.opts.service}`;
  }

  start(): Promise<string> {
    return this.server.start();
  }

  async stop(): Promise<void> {
    await this.web.stop();
    await this.server.stop();
  }

  private async route(req: RecordedRequest): Promise<Reply> {
    if (req.path === '/token' && req.method === 'POST') return this.oauthToken(req);
    if (req.path === '/v1/token' && req.method === 'POST') return this.sts(req);
    if (req.path.startsWith('/v1/projects/-/serviceAccounts/') && req.method === 'POST') return this.impersonate(req);
    if (req.path === '/oidc' && req.method === 'GET') return this.oidc(req);
    if (!req.path.startsWith('/v2/')) return this.gerror(404, 'NOT_FOUND', `No route ${req.path}`);
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!bearer || !this.issuedTokens.has(bearer))
      return this.gerror(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials.');
    const name = req.path.slice('/v2/'.length);
    if (name === this.serviceName && req.method === 'GET') return { status: 200, body: await this.view() };
    if (name === this.serviceName && req.method === 'PATCH') return this.patch(req);
    if (name.startsWith(`projects/${this.opts.project}/locations/${this.opts.region}/operations/`) && req.method === 'GET')
      return await this.operation(name);
    return this.gerror(404, 'NOT_FOUND', `Resource '${name}' was not found`);
  }

  private gerror(code: number, status: string, message: string): Reply {
    return { status: code, body: { error: { code, message, status } } };
  }

  private issue(set: Set<string>): string {
    const token = this.opts.mintToken?.() ?? `ya29.${randomBytes(24).toString('base64url')}`;
    set.add(token);
    return token;
  }

  private oauthToken(req: RecordedRequest): Reply {
    if (req.headers['content-type'] !== 'application/x-www-form-urlencoded') return { status: 400, body: { error: 'invalid_request' } };
    const form = new URLSearchParams(req.body.toString('utf8'));
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer')
      return { status: 400, body: { error: 'unsupported_grant_type' } };
    const jwt = form.get('assertion') ?? '';
    const [h, c, sig] = jwt.split('.');
    if (!h || !c || !sig || !this.opts.serviceAccountPublicKey)
      return { status: 400, body: { error: 'invalid_grant', error_description: 'Invalid JWT' } };
    const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as { alg?: string };
    const claims = JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as {
      iss?: string;
      aud?: string;
      scope?: string;
      exp?: number;
      iat?: number;
      target_audience?: string;
    };
    const valid = createVerify('RSA-SHA256')
      .update(`${h}.${c}`)
      .verify(createPublicKey(this.opts.serviceAccountPublicKey), Buffer.from(sig, 'base64url'));
    if (header.alg !== 'RS256' || !valid)
      return { status: 400, body: { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' } };
    const now = Date.now() / 1000;
    if (claims.iss !== this.opts.serviceAccountEmail)
      return { status: 400, body: { error: 'invalid_grant', error_description: 'Invalid issuer' } };
    // The token endpoint's own URL, or Google's canonical one (what gcloud signs for whatever
    // auth/token_host it posts to).
    if (claims.aud !== `${this.server.url}/token` && claims.aud !== 'https://oauth2.googleapis.com/token')
      return { status: 400, body: { error: 'invalid_grant', error_description: 'Invalid JWT audience' } };
    const expiry = claims.exp && claims.iat && claims.exp >= now && claims.iat <= now + 60 && claims.exp - claims.iat <= 3600;
    if (claims.target_audience && !claims.scope && expiry) {
      // An ID token for the service account (gcloud asks for one beside the access token).
      const part = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
      const idClaims = {
        iss: 'https://accounts.google.com',
        aud: claims.target_audience,
        sub: '104030201',
        email: claims.iss,
        iat: Math.floor(now),
        exp: Math.floor(now) + 3600,
      };
      return {
        status: 200,
        body: { id_token: `${part({ alg: 'RS256', typ: 'JWT' })}.${part(idClaims)}.${randomBytes(32).toString('base64url')}` },
      };
    }
    if (!claims.scope?.split(' ').includes('https://www.googleapis.com/auth/cloud-platform'))
      return { status: 400, body: { error: 'invalid_scope' } };
    if (!claims.exp || !claims.iat || claims.exp < now || claims.iat > now + 60 || claims.exp - claims.iat > 3600) {
      return {
        status: 400,
        body: { error: 'invalid_grant', error_description: 'Invalid JWT: Token must be a short-lived token (60 minutes)' },
      };
    }
    return { status: 200, body: { access_token: this.issue(this.issuedTokens), expires_in: 3599, token_type: 'Bearer' } };
  }

  private oidc(req: RecordedRequest): Reply {
    if (req.headers.authorization !== `Bearer ${this.opts.oidcRequestToken}`) return { status: 401, body: { message: 'Bad credentials' } };
    return { status: 200, body: { value: this.opts.oidcToken, count: 1 } };
  }

  private sts(req: RecordedRequest): Reply {
    const form = new URLSearchParams(req.body.toString('utf8'));
    const expect: Record<string, string | undefined> = {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      scope: 'https://www.googleapis.com/auth/cloud-platform',
      audience: this.opts.stsAudience,
      subject_token: this.opts.oidcToken,
    };
    for (const [k, v] of Object.entries(expect)) {
      if (form.get(k) !== v) return { status: 400, body: { error: 'invalid_request', error_description: `Invalid value for "${k}".` } };
    }
    return {
      status: 200,
      body: {
        access_token: this.issue(this.stsTokens),
        issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        token_type: 'Bearer',
        expires_in: 3599,
      },
    };
  }

  private impersonate(req: RecordedRequest): Reply {
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!bearer || !this.stsTokens.has(bearer))
      return this.gerror(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials.');
    const m = /^\/v1\/projects\/-\/serviceAccounts\/([^:]+):generateAccessToken$/.exec(req.path);
    const body = req.json as { scope?: string[] } | undefined;
    if (!m || m[1] !== this.opts.serviceAccountEmail)
      return this.gerror(403, 'PERMISSION_DENIED', 'Permission iam.serviceAccounts.getAccessToken denied');
    if (!body?.scope?.includes('https://www.googleapis.com/auth/cloud-platform'))
      return this.gerror(400, 'INVALID_ARGUMENT', 'scope is required');
    return { status: 200, body: { accessToken: this.issue(this.issuedTokens), expireTime: new Date(Date.now() + 3600_000).toISOString() } };
  }

  /** Validates a Service body as the v2 API would, then runs it as an operation. */
  private patch(req: RecordedRequest): Reply {
    if (req.headers['content-type'] !== 'application/json')
      return this.gerror(400, 'INVALID_ARGUMENT', 'Content-Type must be application/json');
    const body = req.json as
      | { template?: { revision?: string; containers?: { image?: string; env?: Record<string, unknown>[] }[] }; traffic?: Traffic[] }
      | undefined;
    const containers = body?.template?.containers;
    if (!containers?.length || !containers[0]!.image)
      return this.gerror(400, 'INVALID_ARGUMENT', 'template.containers[0].image is required');
    for (const e of containers[0]!.env ?? []) {
      const name = e.name;
      if (typeof name !== 'string' || name === 'PORT')
        return this.gerror(400, 'INVALID_ARGUMENT', `env name ${String(name)} is invalid or reserved`);
      const vs = e.valueSource as { secretKeyRef?: { secret?: string; version?: string } } | undefined;
      if ((e.value === undefined) === (vs === undefined))
        return this.gerror(400, 'INVALID_ARGUMENT', `env ${name}: exactly one of value or valueSource`);
      if (vs && (!vs.secretKeyRef?.secret || !vs.secretKeyRef.version))
        return this.gerror(400, 'INVALID_ARGUMENT', `env ${name}: secretKeyRef needs secret and version`);
    }
    const revision = body!.template!.revision;
    const image = containers[0]!.image;
    const templateChanged =
      image !== this.service.template.containers[0]!.image ||
      JSON.stringify(containers[0]!.env ?? []) !== JSON.stringify(this.service.template.containers[0]!.env ?? []) ||
      revision !== this.service.template.revision;
    if (templateChanged) {
      if (!revision || !revision.startsWith(`${this.opts.service}-`) || !/^[a-z][a-z0-9-]{0,62}$/.test(revision)) {
        return this.gerror(400, 'INVALID_ARGUMENT', `template.revision must be prefixed by the service name: ${String(revision)}`);
      }
      if (this.revisions.has(revision))
        return this.gerror(409, 'ALREADY_EXISTS', `Revision named '${revision}' with different configuration already exists.`);
    }
    const traffic = body!.traffic ?? [];
    const total = traffic.reduce((n, t) => n + (t.percent ?? 0), 0);
    if (total !== 100) return this.gerror(400, 'INVALID_ARGUMENT', `Traffic percentages must sum to 100; got ${total}`);
    const tags = traffic.filter((t) => t.tag).map((t) => t.tag);
    if (new Set(tags).size !== tags.length) return this.gerror(400, 'INVALID_ARGUMENT', 'Traffic tags must be unique');
    const known = new Set([...this.revisions.keys(), ...(templateChanged && revision ? [revision] : [])]);
    for (const t of traffic) {
      if (t.type === 'TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION' && (!t.revision || !known.has(t.revision))) {
        return this.gerror(400, 'INVALID_ARGUMENT', `Revision '${String(t.revision)}' referenced in traffic not found`);
      }
    }
    const failing = templateChanged && this.opts.failingImages?.includes(image);
    const id = randomBytes(8).toString('hex');
    const name = `projects/${this.opts.project}/locations/${this.opts.region}/operations/${id}`;
    this.operations.set(name, {
      polls: this.opts.operationPolls ?? 2,
      error: failing
        ? {
            code: 9,
            message: `Revision '${revision}' is not ready and cannot serve traffic. The user-provided container failed to start and listen on the port defined provided by the PORT=8080 environment variable.`,
          }
        : undefined,
      apply: () => {
        if (templateChanged && revision) {
          this.revisions.set(revision, { name: revision, image, env: containers[0]!.env ?? [] });
          this.service.template = { revision, containers: containers as { image: string }[] };
          if (!failing) this.service.latest = revision;
        }
        if (!failing) this.service.traffic = traffic;
      },
    });
    return { status: 200, body: { name, metadata: { '@type': 'type.googleapis.com/google.cloud.run.v2.Service' }, done: false } };
  }

  private async operation(name: string): Promise<Reply> {
    const op = this.operations.get(name);
    if (!op) return this.gerror(404, 'NOT_FOUND', `Operation ${name} not found`);
    op.polls -= 1;
    if (op.polls > 0) return { status: 200, body: { name, done: false } };
    if (op.polls === 0) op.apply();
    return { status: 200, body: op.error ? { name, done: true, error: op.error } : { name, done: true, response: await this.view() } };
  }

  private resolve(t: Traffic): string {
    return t.type === 'TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST' ? this.service.latest : t.revision!;
  }

  private async view(): Promise<object> {
    const tagUrls = new Map<string, string>();
    for (const t of this.service.traffic) if (t.tag) tagUrls.set(t.tag, await this.web.url(`${t.tag}---${this.opts.service}`));
    return {
      name: this.serviceName,
      uri: await this.web.url(this.opts.service),
      etag: `"${this.service.latest}"`,
      template: this.service.template,
      traffic: this.service.traffic,
      trafficStatuses: this.service.traffic.map((t) => ({
        ...t,
        revision: t.type === 'TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST' ? undefined : t.revision,
        ...(t.tag ? { uri: tagUrls.get(t.tag) } : {}),
      })),
      latestReadyRevision: `${this.serviceName}/revisions/${this.service.latest}`.split('/').pop(),
      latestCreatedRevision: this.service.template.revision ?? this.service.latest,
      terminalCondition: { type: 'Ready', state: 'CONDITION_SUCCEEDED' },
    };
  }

  /** The service URL goes to the revision with most traffic; a tag URL to its revision. */
  private serveWeb(host: string): Reply {
    let revision: string | undefined;
    const tagged = /^(.+)---/.exec(host)?.[1];
    if (tagged) {
      const t = this.service.traffic.find((x) => x.tag === tagged);
      revision = t ? this.resolve(t) : undefined;
    } else {
      const top = [...this.service.traffic].sort((a, b) => (b.percent ?? 0) - (a.percent ?? 0))[0];
      revision = top ? this.resolve(top) : undefined;
    }
    const image = revision ? this.revisions.get(revision)?.image : undefined;
    if (!image) return { status: 404, body: 'Not Found' };
    if (this.opts.unhealthyImages?.includes(image)) return { status: 500, body: 'Server Error' };
    return { status: 200, body: `ok ${revision} ${image}` };
  }

  /** Which revision the service URL serves now. */
  servingRevision(): string | undefined {
    const top = [...this.service.traffic].sort((a, b) => (b.percent ?? 0) - (a.percent ?? 0))[0];
    return top ? this.resolve(top) : undefined;
  }
}
