/**
 * A local stand-in for GitHub's REST API, deployments and opening a pull request, checked against
 * GitHub's own OpenAPI description (@octokit/openapi, api.github.com.deref.json): every request must match a
 * documented operation, its query parameters and JSON body must validate against the
 * operation's schema, and every answer this stand-in gives is validated against the documented
 * response schema too. Anything off is recorded in `violations` (and answered 422/404 as GitHub
 * would), so tests can assert there were none. Behaviour follows GitHub's docs: statuses are
 * listed newest first; `auto_inactive` marks earlier success deployments of the same environment
 * inactive only for non-production, non-transient environments.
 */
import * as http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';

type Schema = {
  type?: string;
  nullable?: boolean;
  enum?: unknown[];
  required?: string[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema;
  oneOf?: Schema[];
  anyOf?: Schema[];
  allOf?: Schema[];
};
type Operation = {
  parameters?: { name: string; in: string; required?: boolean; schema: Schema }[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, { content?: Record<string, { schema: Schema }> }>;
};
type Spec = { paths: Record<string, Record<string, Operation>> };

let spec: Spec | undefined;
function loadSpec(): Spec {
  spec ??= createRequire(import.meta.url)('@octokit/openapi/generated/api.github.com.deref.json') as Spec;
  return spec;
}

/** A small JSON Schema (OpenAPI 3.0 subset) validator: returns the problems found. */
export function validate(value: unknown, schema: Schema, at = '$'): string[] {
  if (value === null) return schema.nullable || schema.type === 'null' || schema.enum?.includes(null) ? [] : [`${at}: null not allowed`];
  if (schema.allOf) return schema.allOf.flatMap((s) => validate(value, s, at));
  if (schema.oneOf || schema.anyOf) {
    const options = schema.oneOf ?? schema.anyOf ?? [];
    return options.some((s) => validate(value, s, at).length === 0) ? [] : [`${at}: matches none of the allowed shapes`];
  }
  const problems: string[] = [];
  const t = schema.type;
  const actual = Array.isArray(value) ? 'array' : Number.isInteger(value) ? 'integer' : typeof value;
  if (t && !(t === actual || (t === 'number' && actual === 'integer'))) return [`${at}: expected ${t}, got ${actual}`];
  if (schema.enum && !schema.enum.includes(value)) problems.push(`${at}: ${JSON.stringify(value)} not in ${JSON.stringify(schema.enum)}`);
  if (actual === 'object' && (schema.properties || schema.required || schema.additionalProperties !== undefined)) {
    const obj = value as Record<string, unknown>;
    for (const r of schema.required ?? []) if (!(r in obj)) problems.push(`${at}.${r}: required`);
    for (const [k, v] of Object.entries(obj)) {
      const prop = schema.properties?.[k];
      if (prop) problems.push(...validate(v, prop, `${at}.${k}`));
      else if (schema.additionalProperties === false) problems.push(`${at}.${k}: not a documented property`);
      else if (typeof schema.additionalProperties === 'object') problems.push(...validate(v, schema.additionalProperties, `${at}.${k}`));
    }
  }
  if (actual === 'array' && schema.items)
    (value as unknown[]).forEach((v, i) => problems.push(...validate(v, schema.items!, `${at}[${i}]`)));
  return problems;
}

/** The smallest value a schema accepts (required properties only): the frame of a documented answer. */
export function sample(schema: Schema): unknown {
  if (schema.allOf) return Object.assign({}, ...schema.allOf.map((s) => sample(s) as object));
  if (schema.oneOf || schema.anyOf) return sample((schema.oneOf ?? schema.anyOf)![0]!);
  if (schema.nullable) return null;
  if (schema.enum) return schema.enum[0];
  switch (schema.type) {
    case 'object':
      return Object.fromEntries((schema.required ?? []).map((k) => [k, sample(schema.properties?.[k] ?? {})]));
    case 'array':
      return [];
    case 'string':
      return '';
    case 'integer':
    case 'number':
      return 0;
    case 'boolean':
      return false;
    default:
      return null;
  }
}

export interface GitHubRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: unknown;
  /** The OpenAPI path template it matched, e.g. /repos/{owner}/{repo}/deployments. */
  operation?: string;
}

interface Deployment {
  id: number;
  ref: string;
  sha: string;
  task: string;
  environment: string;
  payload: unknown;
  description: string | null;
  production: boolean;
  transient: boolean;
  createdAt: string;
}
interface Status {
  id: number;
  state: string;
  description: string;
  environment: string;
  environmentUrl: string;
  logUrl: string;
  createdAt: string;
}

const SHA = /^[0-9a-f]{40}$/;

export class GitHubApiStub {
  readonly requests: GitHubRequest[] = [];
  readonly violations: string[] = [];
  readonly deployments: Deployment[] = [];
  readonly statuses = new Map<number, Status[]>();
  /** Pull requests opened (POST /repos/{owner}/{repo}/pulls). */
  readonly pulls: { number: number; title: string; head: string; base: string; body: string }[] = [];
  url = '';
  private server?: http.Server;
  private nextId = 1000;
  private clock = Date.parse('2026-01-01T00:00:00Z');

  constructor(
    readonly token: string,
    readonly repository = 'acme/shop',
  ) {}

  async start(): Promise<string> {
    loadSpec();
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const { status, body } = this.handle(req, Buffer.concat(chunks));
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-github-media-type': 'github.v3; format=json' });
        res.end(body === undefined ? '' : JSON.stringify(body));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** The latest status of each deployment, newest deployment first. */
  latestStates(environment: string): { id: number; state: string | undefined }[] {
    return this.deployments
      .filter((d) => d.environment === environment)
      .reverse()
      .map((d) => ({ id: d.id, state: this.statuses.get(d.id)?.at(-1)?.state }));
  }

  private handle(req: http.IncomingMessage, raw: Buffer): { status: number; body?: unknown } {
    const url = new URL(req.url ?? '/', 'http://stub');
    const method = (req.method ?? 'GET').toLowerCase();
    let body: unknown;
    if (raw.length) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        return this.fail(400, `${method} ${url.pathname}: body is not JSON`);
      }
    }
    const recorded: GitHubRequest = {
      method: method.toUpperCase(),
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      body,
    };
    this.requests.push(recorded);
    const auth = req.headers.authorization ?? '';
    if (auth !== `token ${this.token}` && auth !== `Bearer ${this.token}`) {
      return { status: 401, body: { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' } };
    }
    if (!req.headers['user-agent']) this.violations.push(`${method} ${url.pathname}: no User-Agent (GitHub requires one)`);
    const match = this.match(url.pathname, method);
    if (!match) return this.fail(404, `${method} ${url.pathname}: no such operation in GitHub's OpenAPI description`);
    recorded.operation = match.template;
    const problems = this.checkRequest(match.op, url.searchParams, body);
    if (problems.length) return this.fail(422, `${method} ${match.template}: ${problems.join('; ')}`);
    if (`${match.params.owner}/${match.params.repo}` !== this.repository) return { status: 404, body: { message: 'Not Found' } };
    const reply = this.route(method, match.template, match.params, url.searchParams, body as Record<string, unknown>);
    const responseSchema = match.op.responses[String(reply.status)]?.content?.['application/json']?.schema;
    if (!responseSchema) this.violations.push(`${method} ${match.template}: status ${reply.status} is not documented`);
    else {
      const bad = validate(reply.body, responseSchema);
      if (bad.length)
        this.violations.push(`stand-in answer to ${method} ${match.template} breaks the schema: ${bad.slice(0, 5).join('; ')}`);
    }
    return reply;
  }

  private fail(status: number, violation: string): { status: number; body: unknown } {
    this.violations.push(violation);
    return { status, body: { message: violation, documentation_url: 'https://docs.github.com/rest/deployments' } };
  }

  private match(pathname: string, method: string): { template: string; op: Operation; params: Record<string, string> } | undefined {
    const parts = pathname.split('/');
    for (const [template, ops] of Object.entries(loadSpec().paths)) {
      const op = ops[method];
      if (!op || !(template.startsWith('/repos/{owner}/{repo}/deployments') || template === '/repos/{owner}/{repo}/pulls')) continue;
      const tparts = template.split('/');
      if (tparts.length !== parts.length) continue;
      const params: Record<string, string> = {};
      if (tparts.every((t, i) => (t.startsWith('{') ? ((params[t.slice(1, -1)] = decodeURIComponent(parts[i]!)), true) : t === parts[i]))) {
        return { template, op, params };
      }
    }
    return undefined;
  }

  private checkRequest(op: Operation, query: URLSearchParams, body: unknown): string[] {
    const problems: string[] = [];
    const queryParams = (op.parameters ?? []).filter((p) => p.in === 'query');
    for (const [name, value] of query) {
      const p = queryParams.find((q) => q.name === name);
      if (!p) problems.push(`query parameter ${name} is not documented`);
      else if (p.schema.type === 'integer' && !/^\d+$/.test(value)) problems.push(`query parameter ${name} must be an integer`);
    }
    const schema = op.requestBody?.content['application/json']?.schema;
    if (schema) problems.push(...validate(body ?? {}, schema, 'body'));
    else if (body !== undefined) problems.push('this operation takes no body');
    return problems;
  }

  private route(
    method: string,
    template: string,
    params: Record<string, string>,
    query: URLSearchParams,
    body: Record<string, unknown>,
  ): { status: number; body: unknown } {
    const base = `${this.url}/repos/${this.repository}`;
    if (template === '/repos/{owner}/{repo}/pulls' && method === 'post') {
      const schema = loadSpec().paths[template]!.post!.responses['201']!.content!['application/json']!.schema;
      const number = this.pulls.length + 1;
      this.pulls.push({
        number,
        title: String(body.title),
        head: String(body.head),
        base: String(body.base),
        body: typeof body.body === 'string' ? body.body : '',
      });
      const html = `https://github.com/${this.repository}/pull/${number}`;
      const side = (ref: string) => ({ ...(sample(schema.properties!.head!) as object), label: `${params.owner}:${ref}`, ref });
      const pr = sample(schema) as Record<string, unknown>;
      Object.assign(pr, { id: this.nextId++, number, state: 'open', title: body.title, body: body.body ?? null, html_url: html });
      Object.assign(pr, {
        url: `${base}/pulls/${number}`,
        head: side(String(body.head)),
        base: side(String(body.base)),
        user: this.user(),
      });
      return { status: 201, body: pr };
    }
    if (template === '/repos/{owner}/{repo}/deployments' && method === 'post') {
      const ref = String(body.ref);
      if (!SHA.test(ref))
        return { status: 422, body: { message: `No ref found for: ${ref}`, documentation_url: 'https://docs.github.com/rest' } };
      const d: Deployment = {
        id: this.nextId++,
        ref,
        sha: ref,
        task: (body.task as string) ?? 'deploy',
        environment: (body.environment as string) ?? 'production',
        payload: typeof body.payload === 'string' ? JSON.parse(body.payload || '{}') : (body.payload ?? {}),
        description: (body.description as string) ?? '',
        production: (body.production_environment as boolean) ?? body.environment === 'production',
        transient: (body.transient_environment as boolean) ?? false,
        createdAt: this.tick(),
      };
      this.deployments.push(d);
      this.statuses.set(d.id, []);
      return { status: 201, body: this.deploymentJson(d, base) };
    }
    if (template === '/repos/{owner}/{repo}/deployments' && method === 'get') {
      const env = query.get('environment');
      const perPage = Number(query.get('per_page') ?? 30);
      const page = Number(query.get('page') ?? 1);
      const list = this.deployments.filter((d) => !env || d.environment === env).reverse();
      return { status: 200, body: list.slice((page - 1) * perPage, page * perPage).map((d) => this.deploymentJson(d, base)) };
    }
    const deployment = this.deployments.find((d) => d.id === Number(params.deployment_id));
    if (!deployment) return { status: 404, body: { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' } };
    if (template === '/repos/{owner}/{repo}/deployments/{deployment_id}/statuses' && method === 'post') {
      const s = this.addStatus(deployment, body);
      if (body.state === 'success' && body.auto_inactive !== false && !deployment.production && !deployment.transient) {
        for (const other of this.deployments) {
          if (
            other.id !== deployment.id &&
            other.environment === deployment.environment &&
            this.statuses.get(other.id)?.at(-1)?.state === 'success'
          ) {
            this.addStatus(other, { state: 'inactive', description: '' });
          }
        }
      }
      return { status: 201, body: this.statusJson(deployment, s, base) };
    }
    if (template === '/repos/{owner}/{repo}/deployments/{deployment_id}/statuses' && method === 'get') {
      const perPage = Number(query.get('per_page') ?? 30);
      const page = Number(query.get('page') ?? 1);
      const list = [...(this.statuses.get(deployment.id) ?? [])].reverse();
      return { status: 200, body: list.slice((page - 1) * perPage, page * perPage).map((s) => this.statusJson(deployment, s, base)) };
    }
    if (template === '/repos/{owner}/{repo}/deployments/{deployment_id}' && method === 'get') {
      return { status: 200, body: this.deploymentJson(deployment, base) };
    }
    return { status: 404, body: { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' } };
  }

  private addStatus(d: Deployment, body: Record<string, unknown>): Status {
    const s: Status = {
      id: this.nextId++,
      state: String(body.state),
      description: (body.description as string) ?? '',
      environment: (body.environment as string) ?? d.environment,
      environmentUrl: (body.environment_url as string) ?? '',
      logUrl: (body.log_url as string) ?? (body.target_url as string) ?? '',
      createdAt: this.tick(),
    };
    this.statuses.get(d.id)!.push(s);
    return s;
  }

  private tick(): string {
    this.clock += 1000;
    return new Date(this.clock).toISOString().replace(/\.\d+Z$/, 'Z');
  }

  private deploymentJson(d: Deployment, base: string): Record<string, unknown> {
    return {
      url: `${base}/deployments/${d.id}`,
      id: d.id,
      node_id: `DE_${d.id}`,
      sha: d.sha,
      ref: d.ref,
      task: d.task,
      payload: d.payload,
      original_environment: d.environment,
      environment: d.environment,
      description: d.description,
      creator: this.user(),
      created_at: d.createdAt,
      updated_at: d.createdAt,
      statuses_url: `${base}/deployments/${d.id}/statuses`,
      repository_url: base,
      transient_environment: d.transient,
      production_environment: d.production,
    };
  }

  private statusJson(d: Deployment, s: Status, base: string): Record<string, unknown> {
    return {
      url: `${base}/deployments/${d.id}/statuses/${s.id}`,
      id: s.id,
      node_id: `DES_${s.id}`,
      state: s.state,
      creator: this.user(),
      description: s.description,
      environment: s.environment,
      target_url: s.logUrl,
      created_at: s.createdAt,
      updated_at: s.createdAt,
      deployment_url: `${base}/deployments/${d.id}`,
      repository_url: base,
      environment_url: s.environmentUrl,
      log_url: s.logUrl,
    };
  }

  private user(): Record<string, unknown> {
    const u = `${this.url}/users/github-actions[bot]`;
    return {
      login: 'github-actions[bot]',
      id: 41898282,
      node_id: 'MDM6Qm90NDE4OTgyODI=',
      avatar_url: 'https://avatars.githubusercontent.com/in/15368?v=4',
      gravatar_id: '',
      url: u,
      html_url: 'https://github.com/apps/github-actions',
      followers_url: `${u}/followers`,
      following_url: `${u}/following{/other_user}`,
      gists_url: `${u}/gists{/gist_id}`,
      starred_url: `${u}/starred{/owner}{/repo}`,
      subscriptions_url: `${u}/subscriptions`,
      organizations_url: `${u}/orgs`,
      repos_url: `${u}/repos`,
      events_url: `${u}/events{/privacy}`,
      received_events_url: `${u}/received_events`,
      type: 'Bot',
      site_admin: false,
    };
  }
}
