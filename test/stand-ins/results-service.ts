/**
 * What the cache v2 and artifact v2 stand-ins share: one loopback server that is both the
 * results service (Twirp JSON under /twirp/) and the Azure Blob account its signed URLs name
 * (reached through HTTP_PROXY), with every Twirp call, blob request and protocol violation
 * recorded. A subclass says how its Twirp service answers.
 */
import type * as http from 'node:http';
import { BlobAccount, type BlobAccountOptions } from './azure-blob';
import { listen, serveTwirp, type TwirpCall, type TwirpService } from './twirp';

export abstract class ResultsServiceStandIn {
  readonly twirp: TwirpCall[] = [];
  readonly violations: string[] = [];
  protected readonly account: BlobAccount;
  private listening?: Awaited<ReturnType<typeof listen>>;

  protected constructor(account: Omit<BlobAccountOptions, 'violation'>) {
    this.account = new BlobAccount({ ...account, violation: (m) => this.violation(m) });
  }

  /** The Twirp service for one request (its path already known to start with /twirp/). */
  protected abstract twirpService(): TwirpService;

  /** Lets a subclass hold a Twirp request back (a gate); serves it at once by default. */
  protected serveTwirpRequest(serve: () => void, _url: URL): void {
    serve();
  }

  /** The Azure Blob requests, in order. */
  get blobs(): BlobAccount['calls'] {
    return this.account.calls;
  }

  async start(): Promise<this> {
    this.listening = await listen(
      (req, body, res) => this.handle(req, body, res),
      (m) => this.violation(m),
    );
    return this;
  }

  async stop(): Promise<void> {
    await this.listening?.stop();
    this.listening = undefined;
  }

  get resultsUrl(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  /** HTTP_PROXY for a step: the Azure SDK reaches the blob host's signed URLs through it. */
  get proxyUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Twirp calls of one method, in order. */
  calls(method: string): TwirpCall[] {
    return this.twirp.filter((c) => c.method === method);
  }

  reset(): void {
    this.twirp.length = 0;
    this.account.reset();
    this.violations.length = 0;
  }

  protected violation(message: string): void {
    this.violations.push(message);
  }

  protected get port(): number {
    return this.listening?.port ?? 0;
  }

  private handle(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): void {
    if (this.account.serve(req, body, res)) return;
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? '127.0.0.1'}`);
    if (url.pathname.startsWith('/twirp/')) {
      const service = this.twirpService();
      return this.serveTwirpRequest(() => serveTwirp(service, req, url, body, res), url);
    }
    this.violation(`unexpected request ${req.method} ${req.url}`);
    res.writeHead(404).end();
  }
}
