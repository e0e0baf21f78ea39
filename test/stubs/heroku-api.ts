/**
 * A stand-in for the Heroku Platform API v3 (devcenter.heroku.com/articles/platform-api-reference),
 * the parts the heroku provider uses: app info, releases (list with Range, info, create = rollback),
 * config vars, formation batch update with docker_image (Accept `version=3.docker-releases`), a
 * release phase (status pending → succeeded/failed, output_stream_url), and the app's web_url
 * answering a health path according to the image the current release runs.
 */
import { randomUUID } from 'node:crypto';
import { StubServer, WebHosts, type RecordedRequest, type Reply } from './cloud-stub-server';

export interface HerokuRelease {
  id: string;
  version: number;
  status: 'pending' | 'succeeded' | 'failed';
  current: boolean;
  description: string;
  output_stream_url: string | null;
  created_at: string;
  image: string | null;
  config: Record<string, string>;
}

export interface HerokuStubOptions {
  app: string;
  apiKey: string;
  /** Images (sha256:…) whose release phase fails. */
  failingReleasePhase?: string[];
  /** Images whose web process answers 500 on every path. */
  unhealthyImages?: string[];
  /** How many GETs of a pending release before it settles. */
  pendingPolls?: number;
  /** Whether the app has a release phase at all. */
  releasePhase?: boolean;
}

const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class HerokuStub {
  readonly server: StubServer;
  /** The app's web dynos: answer according to the image of the current release. */
  readonly web = new WebHosts(() => this.serveWeb());
  webUrl = '';
  readonly releases: HerokuRelease[] = [];
  private readonly polls = new Map<string, number>();

  constructor(readonly opts: HerokuStubOptions) {
    this.server = new StubServer((req) => this.route(req));
    // The app exists with one release running an earlier image.
    this.addRelease({ description: 'Initial release', image: `sha256:${'0'.repeat(64)}`, config: {}, status: 'succeeded' });
  }

  get requests(): RecordedRequest[] {
    return this.server.requests;
  }

  get current(): HerokuRelease {
    return this.releases.filter((r) => r.status === 'succeeded').at(-1)!;
  }

  async start(): Promise<string> {
    this.webUrl = await this.web.url(this.opts.app);
    return this.server.start();
  }

  async stop(): Promise<void> {
    await this.web.stop();
    await this.server.stop();
  }

  private addRelease(r: Pick<HerokuRelease, 'description' | 'image' | 'config' | 'status'>): HerokuRelease {
    const release: HerokuRelease = {
      id: randomUUID(),
      version: this.releases.length + 1,
      current: false,
      output_stream_url: null,
      created_at: new Date().toISOString(),
      ...r,
    };
    this.releases.push(release);
    this.settleCurrent();
    return release;
  }

  private settleCurrent(): void {
    const current = this.releases.filter((r) => r.status === 'succeeded').at(-1);
    for (const r of this.releases) r.current = r === current;
  }

  private view(r: HerokuRelease): object {
    const { image: _image, config: _config, ...rest } = r;
    return { ...rest, app: { id: 'app-id', name: this.opts.app }, slug: null, user: { email: 'ci@example.com' } };
  }

  private route(req: RecordedRequest): Reply {
    if (req.path.startsWith('/streams/')) return this.stream(req.path.slice('/streams/'.length));
    if (req.headers.authorization !== `Bearer ${this.opts.apiKey}`) {
      return { status: 401, body: { id: 'unauthorized', message: 'Invalid credentials provided.' } };
    }
    const accept = req.headers.accept ?? '';
    if (!accept.startsWith('application/vnd.heroku+json; version=3')) {
      return { status: 400, body: { id: 'bad_request', message: "Please specify a version along with Heroku's API MIME type." } };
    }
    if (req.method !== 'GET' && req.headers['content-type'] !== 'application/json') {
      return { status: 400, body: { id: 'bad_request', message: 'Content-Type must be application/json.' } };
    }
    const prefix = `/apps/${this.opts.app}`;
    if (!req.path.startsWith(prefix)) return { status: 404, body: { id: 'not_found', message: "Couldn't find that app." } };
    const rest = req.path.slice(prefix.length);
    const key = `${req.method} ${rest.replace(/^\/releases\/[^/]+$/, '/releases/:id')}`;
    switch (key) {
      case 'GET ':
        return { status: 200, body: { id: 'app-id', name: this.opts.app, web_url: this.webUrl } };
      case 'GET /releases':
        return this.listReleases(req);
      case 'GET /releases/:id':
        return this.getRelease(decodeURIComponent(rest.slice('/releases/'.length)));
      case 'POST /releases':
        return this.rollback(req.json as { release?: string });
      case 'PATCH /config-vars':
        return this.setConfig(req.json);
      case 'PATCH /formation':
        return this.formation(req, accept);
      default:
        return { status: 404, body: { id: 'not_found', message: `No route ${req.method} ${req.path}` } };
    }
  }

  /** Range: `version ..; max=N, order=asc|desc` (options in any order, as the Platform API reads them). */
  private listReleases(req: RecordedRequest): Reply {
    const range = req.headers.range ?? '';
    const m = /^version \.\.(?:;\s*(.*?))?;?$/.exec(range);
    const options = new Map<string, string>();
    for (const part of (m?.[1] ?? '')
      .split(/[,;]/)
      .map((p) => p.trim())
      .filter(Boolean)) {
      const [k, v] = part.split('=');
      options.set(k!, v ?? '');
    }
    const order = options.get('order') ?? 'asc';
    const max = Number(options.get('max') ?? 200);
    const unknown = [...options.keys()].filter((k) => k !== 'order' && k !== 'max');
    if (range && (!m || unknown.length || !['asc', 'desc'].includes(order) || !(max >= 1 && max <= 1000))) {
      return { status: 400, body: { id: 'bad_request', message: `Invalid Range header: ${range}` } };
    }
    let list = [...this.releases];
    if (order === 'desc') list.reverse();
    list = list.slice(0, max);
    return { status: list.length < this.releases.length ? 206 : 200, body: list.map((r) => this.view(r)) };
  }

  private getRelease(id: string): Reply {
    const release = this.releases.find((r) => r.id === id || String(r.version) === id);
    if (!release) return { status: 404, body: { id: 'not_found', message: "Couldn't find that release." } };
    if (release.status === 'pending') {
      const n = (this.polls.get(release.id) ?? 0) + 1;
      this.polls.set(release.id, n);
      if (n >= (this.opts.pendingPolls ?? 2)) {
        release.status = this.opts.failingReleasePhase?.includes(release.image ?? '') ? 'failed' : 'succeeded';
        this.settleCurrent();
      }
    }
    return { status: 200, body: this.view(release) };
  }

  private setConfig(body: unknown): Reply {
    if (!body || typeof body !== 'object' || Array.isArray(body))
      return { status: 422, body: { id: 'invalid_params', message: 'Expected an object.' } };
    const config = { ...this.current.config };
    for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
      if (v === null) delete config[k];
      else if (typeof v === 'string') config[k] = v;
      else return { status: 422, body: { id: 'invalid_params', message: `Config var ${k} must be a string.` } };
    }
    const keys = Object.keys(body);
    this.addRelease({ description: `Set ${keys.join(', ')} config vars`, image: this.current.image, config, status: 'succeeded' });
    return { status: 200, body: config };
  }

  private formation(req: RecordedRequest, accept: string): Reply {
    const body = req.json as { updates?: { type?: string; docker_image?: string }[] } | undefined;
    const updates = body?.updates;
    if (!Array.isArray(updates) || updates.length === 0)
      return { status: 422, body: { id: 'invalid_params', message: 'updates is required.' } };
    const withImage = updates.filter((u) => u.docker_image !== undefined);
    if (withImage.length && accept !== 'application/vnd.heroku+json; version=3.docker-releases') {
      return { status: 422, body: { id: 'invalid_params', message: 'docker_image requires the docker-releases variant.' } };
    }
    for (const u of updates) {
      if (!u.type || !/^[-\w]{1,128}$/.test(u.type)) return { status: 422, body: { id: 'invalid_params', message: 'type is invalid.' } };
      if (u.docker_image !== undefined && !/^sha256:[0-9a-f]{64}$/.test(u.docker_image)) {
        return { status: 422, body: { id: 'invalid_params', message: 'docker_image must be an image id (sha256:…).' } };
      }
    }
    const image = withImage[0]?.docker_image ?? this.current.image;
    const release = this.addRelease({
      description: `Deployed ${updates.map((u) => u.type).join(', ')} (${(image ?? '').slice(7, 19)})`,
      image,
      config: { ...this.current.config },
      status: this.opts.releasePhase ? 'pending' : 'succeeded',
    });
    if (this.opts.releasePhase) release.output_stream_url = `${this.server.url}/streams/${release.id}`;
    return { status: 200, body: updates.map((u) => ({ type: u.type, quantity: 1, size: 'basic', docker_image: { id: image } })) };
  }

  private rollback(body: { release?: string } | undefined): Reply {
    const target = this.releases.find((r) => r.id === body?.release || String(r.version) === body?.release);
    if (!body?.release || (!ID.test(body.release) && !/^\d+$/.test(body.release))) {
      return { status: 422, body: { id: 'invalid_params', message: 'release must be a release id or version.' } };
    }
    if (!target) return { status: 404, body: { id: 'not_found', message: "Couldn't find that release." } };
    const release = this.addRelease({
      description: `Rollback to v${target.version}`,
      image: target.image,
      config: { ...target.config },
      status: 'succeeded',
    });
    return { status: 201, body: this.view(release) };
  }

  private stream(id: string): Reply {
    const release = this.releases.find((r) => r.id === id);
    if (!release) return { status: 404, body: 'not found' };
    const failed = this.opts.failingReleasePhase?.includes(release.image ?? '');
    return {
      status: 200,
      body: `Running release command...\nOperations to perform: Apply all migrations\n${failed ? 'django.db.utils.OperationalError: release phase failed\n' : 'No migrations to apply.\n'}`,
    };
  }

  private serveWeb(): Reply {
    const image = this.current.image ?? '';
    if (this.opts.unhealthyImages?.includes(image)) return { status: 500, body: 'Server Error' };
    return { status: 200, body: `ok ${image}` };
  }
}
