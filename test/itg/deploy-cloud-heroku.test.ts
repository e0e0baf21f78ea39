/**
 * The heroku provider's container release end to end on this machine: a real Docker engine
 * pushes a real image to a real registry standing in for registry.heroku.com (Debian's
 * docker-registry, htpasswd with user `_` and the API key as password, as Heroku's registry
 * takes them), then the Platform API stand-in receives the formation update. The image id the
 * provider releases must be the config digest of the manifest the registry now holds.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HerokuProvider, type HerokuSettings } from '../../packages/targets/src/heroku';
import { ensureServices } from '../harness/services';
import { HerokuStub } from '../stubs/heroku-api';
import { deployContext } from '../unit/targets/cloud-helpers';

const KEY = 'HRKU-0123456789abcdef0123456789abcdef';
let dir: string;
let registry: ChildProcess | undefined;
let registryAddr: string;
let image: string;
let docker: (args: string[], input?: string) => string;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const port = (probe.address() as net.AddressInfo).port;
      probe.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  const env = ensureServices(['docker', 'registry']);
  process.env.DOCKER_HOST = env.DOCKER_HOST;
  docker = (args, input) => execFileSync('docker', args, { input, env: { ...process.env, DOCKER_HOST: env.DOCKER_HOST } }).toString();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-heroku-'));
  execFileSync('htpasswd', ['-iBc', path.join(dir, 'htpasswd'), '_'], { input: KEY });
  const port = await freePort();
  registryAddr = `127.0.0.1:${port}`;
  fs.writeFileSync(
    path.join(dir, 'config.yml'),
    [
      'version: 0.1',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${path.join(dir, 'data')}`,
      'http:',
      `  addr: ${registryAddr}`,
      'auth:',
      '  htpasswd:',
      '    realm: heroku-standin',
      `    path: ${path.join(dir, 'htpasswd')}`,
      '',
    ].join('\n'),
  );
  registry = spawn('docker-registry', ['serve', path.join(dir, 'config.yml')], { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    const up = await fetch(`http://${registryAddr}/v2/`).then(
      (r) => r.status === 401,
      () => false,
    );
    if (up) break;
    if (i > 100) throw new Error('docker-registry did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  // A tiny image made here (nothing can be pulled): one file, imported.
  fs.mkdirSync(path.join(dir, 'rootfs'));
  fs.writeFileSync(path.join(dir, 'rootfs', 'release.txt'), `heroku test ${Date.now()}\n`);
  execFileSync('tar', ['-C', path.join(dir, 'rootfs'), '-cf', path.join(dir, 'rootfs.tar'), '.']);
  image = `slipway-heroku-test:${process.pid}`;
  docker(['import', path.join(dir, 'rootfs.tar'), image]);
});

afterAll(async () => {
  if (image) {
    try {
      docker(['rmi', '-f', image, `${registryAddr}/shop-prod/web`]);
    } catch {
      // already gone
    }
  }
  if (registry && registry.exitCode === null) {
    const exited = new Promise((r) => registry!.once('exit', r));
    registry.kill('SIGTERM');
    await exited;
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('heroku provider with a real registry push', () => {
  it('pushes to <registry>/<app>/web as `_` and releases the pushed image id', async () => {
    const stub = new HerokuStub({ app: 'shop-prod', apiKey: KEY, releasePhase: false });
    await stub.start();
    try {
      const settings: HerokuSettings = {
        app: 'shop-prod',
        apiKey: KEY,
        processType: 'web',
        apiUrl: stub.server.url,
        registry: registryAddr,
        releaseTimeoutMs: 20_000,
      };
      const ctx = deployContext({ image });
      const result = await new HerokuProvider(settings).deploy(ctx);
      const [formation] = stub.server.find('PATCH', '/apps/shop-prod/formation');
      const imageId = (formation!.json as { updates: { docker_image: string }[] }).updates[0]!.docker_image;
      expect(imageId).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(imageId).toBe(docker(['image', 'inspect', '--format', '{{.Id}}', image]).trim());

      const auth = `Basic ${Buffer.from(`_:${KEY}`).toString('base64')}`;
      const manifest = await fetch(`http://${registryAddr}/v2/shop-prod/web/manifests/latest`, {
        headers: {
          Authorization: auth,
          Accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json',
        },
      });
      expect(manifest.status).toBe(200);
      expect(((await manifest.json()) as { config: { digest: string } }).config.digest).toBe(imageId);
      expect(result.details).toMatchObject({ imageId });
      expect(stub.current.image).toBe(imageId);
      // the login lived in a private DOCKER_CONFIG that is gone
      expect(fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('slipway-heroku-docker-'))).toEqual([]);
    } finally {
      await stub.stop();
    }
  });

  it('a wrong API key fails at the registry login, before any release, without printing the key', async () => {
    const stub = new HerokuStub({ app: 'shop-prod', apiKey: 'another-key-1234567890' });
    await stub.start();
    try {
      const settings: HerokuSettings = {
        app: 'shop-prod',
        apiKey: 'another-key-1234567890',
        processType: 'web',
        apiUrl: stub.server.url,
        registry: registryAddr,
        releaseTimeoutMs: 20_000,
      };
      const error = (await new HerokuProvider(settings).deploy(deployContext({ image })).catch((e: unknown) => e)) as Error;
      expect(error.message).toMatch(new RegExp(`^Login to ${registryAddr} with the Heroku API key failed: .*(unauthorized|401)`, 'i'));
      expect(error.message).not.toContain('another-key-1234567890');
      expect(stub.server.find('PATCH', '/apps/shop-prod/formation')).toHaveLength(0);
      expect(stub.server.find('PATCH', '/apps/shop-prod/config-vars')).toHaveLength(0);
    } finally {
      await stub.stop();
    }
  });
});
