import { request, requestJson } from './cloud-http';

/**
 * Heroku Platform API v3 calls the heroku provider makes (devcenter.heroku.com/articles/platform-api-reference):
 * Bearer API key, `Accept: application/vnd.heroku+json; version=3`, and the `3.docker-releases`
 * variant for a formation update that releases a container image.
 */

export const ACCEPT = 'application/vnd.heroku+json; version=3';
export const ACCEPT_DOCKER_RELEASES = 'application/vnd.heroku+json; version=3.docker-releases';

export interface HerokuApp {
  id: string;
  name: string;
  web_url: string | null;
}

export interface HerokuRelease {
  id: string;
  version: number;
  status: 'pending' | 'succeeded' | 'failed' | 'expired';
  current: boolean;
  description: string;
  output_stream_url: string | null;
  created_at: string;
}

export class HerokuApi {
  constructor(
    private readonly apiUrl: string,
    private readonly apiKey: string,
    private readonly app: string,
  ) {}

  private call<T>(method: string, path: string, label: string, body?: unknown, extra: Record<string, string> = {}): Promise<T> {
    return requestJson<T>({
      method,
      url: `${this.apiUrl}${path}`,
      label: `Heroku: ${label}`,
      headers: {
        Accept: ACCEPT,
        Authorization: `Bearer ${this.apiKey}`,
        'User-Agent': 'slipway-deploy',
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...extra,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  private get appPath(): string {
    return `/apps/${encodeURIComponent(this.app)}`;
  }

  getApp(): Promise<HerokuApp> {
    return this.call('GET', this.appPath, `read app ${this.app}`);
  }

  /** The newest releases, newest first (Range header as the Heroku CLI sends it). */
  recentReleases(max = 10): Promise<HerokuRelease[]> {
    return this.call<HerokuRelease[]>('GET', `${this.appPath}/releases`, 'list releases', undefined, {
      Range: `version ..; max=${max}, order=desc`,
    });
  }

  async latestRelease(): Promise<HerokuRelease | undefined> {
    return (await this.recentReleases(1))[0];
  }

  /** The release serving now (`current`), which a failed or pending newer one does not replace. */
  async currentRelease(): Promise<HerokuRelease | undefined> {
    const recent = await this.recentReleases(10);
    return recent.find((r) => r.current) ?? recent.find((r) => r.status === 'succeeded');
  }

  getRelease(id: string): Promise<HerokuRelease> {
    return this.call('GET', `${this.appPath}/releases/${encodeURIComponent(id)}`, `read release ${id}`);
  }

  /** Sets config vars (a value of null would unset one; we only set). Creates a release. */
  setConfigVars(vars: Record<string, string>): Promise<Record<string, string>> {
    return this.call('PATCH', `${this.appPath}/config-vars`, 'update config vars', vars);
  }

  /** Releases `imageId` (the docker image id, sha256:…) for a process type. */
  releaseImage(processType: string, imageId: string): Promise<unknown[]> {
    return this.call(
      'PATCH',
      `${this.appPath}/formation`,
      `release image for ${processType}`,
      { updates: [{ type: processType, docker_image: imageId }] },
      { Accept: ACCEPT_DOCKER_RELEASES },
    );
  }

  /** Rolls back: a new release with the slug/image and config vars of release `id`. */
  rollback(id: string): Promise<HerokuRelease> {
    return this.call('POST', `${this.appPath}/releases`, `roll back to release ${id}`, { release: id });
  }

  /** The release phase's output (plain text), when Heroku offers it. */
  async releaseOutput(url: string): Promise<string> {
    const res = await request({ method: 'GET', url, label: 'Heroku: release output', allow: [404], retries: 1, timeoutMs: 30_000 });
    return res.status === 404 ? '' : res.text;
  }
}
