import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HerokuProvider, readHerokuSettings, type HerokuSettings } from '../../../packages/targets/src/heroku';
import type { DeployContext } from '../../../packages/targets/src/types';
import { HerokuStub } from '../../stubs/heroku-api';
import { deployContext, withInputs } from './cloud-helpers';

const KEY = 'heroku-key-0123456789abcdef';
const NEW_IMAGE = `sha256:${'b'.repeat(64)}`;
const BAD_IMAGE = `sha256:${'c'.repeat(64)}`;

/** The provider with the registry push replaced: the push is exercised against a real registry in test/itg. */
class TestProvider extends HerokuProvider {
  pushed: string[] = [];
  constructor(
    settings: HerokuSettings,
    private readonly imageId: string,
  ) {
    super(settings);
  }
  protected override async pushImage(ctx: DeployContext): Promise<string> {
    this.pushed.push(ctx.image);
    return this.imageId;
  }
}

describe('heroku provider against the Platform API stand-in', () => {
  let stub: HerokuStub;
  let settings: HerokuSettings;

  beforeEach(async () => {
    stub = new HerokuStub({
      app: 'shop-prod',
      apiKey: KEY,
      releasePhase: true,
      failingReleasePhase: [BAD_IMAGE],
      unhealthyImages: [],
      pendingPolls: 2,
    });
    await stub.start();
    settings = {
      app: 'shop-prod',
      apiKey: KEY,
      processType: 'web',
      apiUrl: stub.server.url,
      registry: 'registry.heroku.com',
      releaseTimeoutMs: 20_000,
    };
  });
  afterEach(() => stub.stop());

  it('sets config vars, releases the image id, waits out the release phase, checks health', async () => {
    const provider = new TestProvider(settings, NEW_IMAGE);
    const ctx = deployContext();
    const result = await provider.deploy(ctx);

    const release = stub.releases.at(-1)!;
    expect(result.providerReleaseId).toBe(release.id);
    expect(result.url).toBe(stub.webUrl);
    expect(release).toMatchObject({ status: 'succeeded', image: NEW_IMAGE, current: true });
    expect(release.config).toEqual({ DJANGO_SETTINGS_MODULE: 'shop.settings', SECRET_KEY: 's3cr3t-value' });

    for (const r of stub.requests.filter((q) => !q.path.startsWith('/streams/'))) {
      expect(r.headers.authorization).toBe(`Bearer ${KEY}`);
      expect(r.headers.accept).toMatch(/^application\/vnd\.heroku\+json; version=3/);
    }
    expect(stub.server.find('GET', '/apps/shop-prod/releases').map((r) => r.headers.range)).toContain('version ..; max=1, order=desc');
    const [config] = stub.server.find('PATCH', '/apps/shop-prod/config-vars');
    expect(config!.headers['content-type']).toBe('application/json');
    expect(config!.json).toEqual({ DJANGO_SETTINGS_MODULE: 'shop.settings', SECRET_KEY: 's3cr3t-value' });
    const [formation] = stub.server.find('PATCH', '/apps/shop-prod/formation');
    expect(formation!.headers.accept).toBe('application/vnd.heroku+json; version=3.docker-releases');
    expect(formation!.json).toEqual({ updates: [{ type: 'web', docker_image: NEW_IMAGE }] });
    // pending → polled until succeeded, then the release phase output printed
    expect(stub.server.find('GET', `/apps/shop-prod/releases/${release.id}`).length).toBeGreaterThanOrEqual(2);
    expect(ctx.lines.join('\n')).toContain('No migrations to apply.');
    expect(stub.web.requests('shop-prod').map((r) => `${r.method} ${r.path}`)).toEqual(['GET /healthz']);
    expect(stub.server.find('POST', '/apps/shop-prod/releases')).toHaveLength(0);
  });

  it('fails on a failed release phase; the earlier release keeps serving', async () => {
    const provider = new TestProvider(settings, BAD_IMAGE);
    const before = stub.current;
    const ctx = deployContext();
    await expect(provider.deploy(ctx)).rejects.toThrow(/release v\d+ failed \(release phase\); release v\d+ keeps serving/);
    expect(stub.releases.at(-1)!.status).toBe('failed');
    // the config-vars release came after `before`; the image never served
    expect(stub.current.image).toBe(before.image);
    expect(ctx.lines.join('\n')).toContain('release phase failed');
  });

  it('rolls back with POST /releases when the health check fails', async () => {
    stub.opts.unhealthyImages = [NEW_IMAGE];
    const before = stub.current;
    const provider = new TestProvider(settings, NEW_IMAGE);
    const error = (await provider
      .deploy(deployContext({ health: { path: '/healthz', expectedStatus: 200, timeoutMs: 1500 } }))
      .catch((e: unknown) => e)) as Error & { rolledBack?: boolean };
    expect(error.message).toMatch(/Health check of Heroku release v\d+ failed/);
    expect(error.rolledBack).toBe(true);
    const [rollback] = stub.server.find('POST', '/apps/shop-prod/releases');
    expect(rollback!.json).toEqual({ release: before.id });
    expect(rollback!.headers['content-type']).toBe('application/json');
    expect(stub.current.image).toBe(before.image);
    expect(stub.current.description).toBe(`Rollback to v${before.version}`);
  });

  it('after a failed release, the next rollback goes to the release that serves, not the failed one', async () => {
    await new TestProvider(settings, BAD_IMAGE).deploy(deployContext()).catch(() => undefined);
    const serving = stub.current;
    expect(stub.releases.at(-1)!.status).toBe('failed');
    stub.opts.unhealthyImages = [NEW_IMAGE];
    await new TestProvider(settings, NEW_IMAGE)
      .deploy(deployContext({ health: { path: '/healthz', expectedStatus: 200, timeoutMs: 1000 } }))
      .catch(() => undefined);
    expect(stub.server.find('POST', '/apps/shop-prod/releases').at(-1)!.json).toEqual({ release: serving.id });
    expect(stub.current.image).toBe(serving.image);
  });

  it('activate() rolls back to a recorded release and reports the new one', async () => {
    const provider = new TestProvider(settings, NEW_IMAGE);
    const first = await provider.deploy(deployContext());
    const firstVersion = stub.releases.at(-1)!.version;
    stub.opts.releasePhase = false;
    await new TestProvider(settings, `sha256:${'d'.repeat(64)}`).deploy(deployContext());
    const lines: string[] = [];
    const result = await provider.activate({ providerReleaseId: first.providerReleaseId } as never, {
      environment: 'production',
      appName: 'shop',
      health: { path: '/healthz', expectedStatus: 200, timeoutMs: 3000 },
      log: (l) => lines.push(l),
    });
    expect(stub.server.find('POST', '/apps/shop-prod/releases').at(-1)!.json).toEqual({ release: first.providerReleaseId });
    expect(stub.current.image).toBe(NEW_IMAGE);
    expect(stub.current.description).toBe(`Rollback to v${firstVersion}`);
    expect(result.providerReleaseId).toBe(stub.current.id);
    expect(await provider.currentRelease()).toBe(stub.current.id);
  });

  it('a wrong API key is one clear line, without the key', async () => {
    const provider = new TestProvider({ ...settings, apiKey: 'wrong-key-123' }, NEW_IMAGE);
    const error = (await provider.validate().catch((e: unknown) => e)) as Error;
    expect(error.message).toBe('Heroku: read app shop-prod: HTTP 401 — Invalid credentials provided.');
  });
});

describe('heroku settings', () => {
  let restore: () => void = () => undefined;
  afterEach(() => restore());

  it.each([
    [{}, {}, 'provider heroku needs an API key: set input `heroku-api-key` or HEROKU_API_KEY (from a secret).'],
    [{ 'heroku-api-key': 'k'.repeat(20) }, {}, 'Input `heroku-app` is required with provider heroku (the Heroku app name).'],
    [
      { 'heroku-api-key': 'k'.repeat(20), 'heroku-app': 'Shop_Prod' },
      {},
      'Input `heroku-app`: `Shop_Prod` is not a Heroku app name (lower-case letters, digits, dashes).',
    ],
  ])('%j → %s', (inputs, env, message) => {
    restore = withInputs(inputs);
    expect(() => readHerokuSettings(env)).toThrow(message);
  });

  it('takes HEROKU_API_KEY from the environment and the API URL override', () => {
    restore = withInputs({ 'heroku-app': 'shop-prod' });
    const s = readHerokuSettings({ HEROKU_API_KEY: 'env-key-123456', SLIPWAY_HEROKU_API_URL: 'http://127.0.0.1:9/' });
    expect(s).toMatchObject({
      apiKey: 'env-key-123456',
      app: 'shop-prod',
      apiUrl: 'http://127.0.0.1:9',
      registry: 'registry.heroku.com',
      processType: 'web',
    });
  });
});
