/**
 * The small node:http server the cloud stand-ins (Heroku, AWS, Google, Sentry) are built on:
 * listens on 127.0.0.1:0, records every request (method, path, query, headers, raw body) so
 * tests can assert what was sent, and hands each request to the stand-in's router.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The body parsed as JSON, when it is JSON. */
  json?: unknown;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer | object;
}

export type Router = (req: RecordedRequest) => Reply | Promise<Reply>;

export class StubServer {
  readonly requests: RecordedRequest[] = [];
  private server?: http.Server;
  url = '';

  constructor(private readonly router: Router) {}

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://stub');
        const body = Buffer.concat(chunks);
        const recorded: RecordedRequest = {
          method: req.method ?? 'GET',
          path: url.pathname,
          query: url.searchParams,
          headers: req.headers,
          body,
        };
        if (body.length && /json/.test(req.headers['content-type'] ?? '')) {
          try {
            recorded.json = JSON.parse(body.toString('utf8'));
          } catch {
            // kept raw; the router answers 400
          }
        }
        this.requests.push(recorded);
        Promise.resolve()
          .then(() => this.router(recorded))
          .catch((error: unknown): Reply => ({ status: 500, body: { message: String(error) } }))
          .then(
            (reply) => {
              const isRaw = typeof reply.body === 'string' || Buffer.isBuffer(reply.body);
              const payload = reply.body === undefined ? '' : isRaw ? (reply.body as string | Buffer) : JSON.stringify(reply.body);
              const type = isRaw ? 'text/plain' : 'application/json';
              res.writeHead(reply.status, { 'content-type': type, ...reply.headers });
              res.end(payload);
            },
            () => res.destroy(),
          );
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  /** Requests matching a method and a path (string or pattern). */
  find(method: string, path: string | RegExp): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && (typeof path === 'string' ? r.path === path : path.test(r.path)));
  }
}

/**
 * Web endpoints of the deployed apps, one listener per host name (an app's web_url, a service
 * URL, a revision tag's URL), since health paths are absolute and each host must be its own root.
 */
export class WebHosts {
  private readonly hosts = new Map<string, StubServer>();
  private readonly starting = new Map<string, Promise<string>>();

  constructor(private readonly answer: (host: string, req: RecordedRequest) => Reply) {}

  /** The base URL (ending in /) of `host`, started on first use. */
  url(host: string): Promise<string> {
    let started = this.starting.get(host);
    if (!started) {
      const server = new StubServer((req) => this.answer(host, req));
      this.hosts.set(host, server);
      started = server.start().then((u) => `${u}/`);
      this.starting.set(host, started);
    }
    return started;
  }

  requests(host: string): RecordedRequest[] {
    return this.hosts.get(host)?.requests ?? [];
  }

  async stop(): Promise<void> {
    await Promise.all([...this.hosts.values()].map((s) => s.stop()));
  }
}
