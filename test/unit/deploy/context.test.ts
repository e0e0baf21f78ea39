import { afterEach, describe, expect, it } from 'vitest';
import { defaultAppName, getInputs, parseImage } from '@slipway/deploy/context';
import { createProvider } from '@slipway/targets/registry';

const DIGEST = `sha256:${'b'.repeat(64)}`;
const KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----';
const BASE: Record<string, string> = {
  provider: 'ssh',
  environment: 'staging',
  image: `127.0.0.1:5000/shop@${DIGEST}`,
  'release-store': 'releases',
  hosts: 'root@127.0.0.1:2222',
  'ssh-private-key': KEY,
  'ssh-known-hosts': '[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample',
};

function setInputs(inputs: Record<string, string>): void {
  for (const k of Object.keys(process.env)) if (k.startsWith('INPUT_')) delete process.env[k];
  for (const [k, v] of Object.entries(inputs)) process.env[`INPUT_${k.toUpperCase()}`] = v;
}
afterEach(() => setInputs({}));

describe('parseImage', () => {
  it.each([
    [`127.0.0.1:5000/shop@${DIGEST}`, true, DIGEST],
    [`ghcr.io/acme/shop:1.2@${DIGEST}`, true, DIGEST],
    ['ghcr.io/acme/shop:1.2', false, null],
  ])('%s', (ref, requireDigest, digest) => expect(parseImage(ref, requireDigest)).toEqual({ image: ref, digest }));

  it.each([
    ['ghcr.io/acme/shop:1.2', true, /`image` has no digest.*require-digest: false/],
    ['shop; rm -rf /', false, /`image` is not an image reference/],
    ['UPPER/case', false, /not an image reference/],
    [`shop@sha256:${'z'.repeat(64)}`, false, /not an image reference/],
  ])('rejects %s', (ref, requireDigest, message) => expect(() => parseImage(ref, requireDigest)).toThrow(message));
});

describe('getInputs', () => {
  it('reads a valid ssh deploy', () => {
    setInputs({ ...BASE, env: 'DJANGO_SECRET_KEY=abc123secret\nDEBUG=false', 'health-timeout': '30s', 'keep-releases': '2' });
    const inputs = getInputs();
    expect(inputs).toMatchObject({ provider: 'ssh', environment: 'staging', imageDigest: DIGEST, keepReleases: 2 });
    expect(inputs.health).toMatchObject({ path: '/healthz', expectedStatus: 200, timeoutMs: 30_000 });
    expect([...inputs.env]).toEqual([
      ['DJANGO_SECRET_KEY', 'abc123secret'],
      ['DEBUG', 'false'],
    ]);
  });

  it.each([
    [{ provider: 'kubernetes' }, 'Input `provider` must be one of ssh, heroku, aws-eb, cloud-run; got "kubernetes".'],
    [{ provider: '' }, 'Input `provider` is required'],
    [{ environment: '' }, 'Input `environment` is required'],
    [{ environment: 'prod/../x' }, 'Input `environment` must be letters'],
    [{ image: 'shop:latest' }, 'Input `image` has no digest'],
    [{ 'app-name': 'Shop App' }, 'Input `app-name` must be lower-case'],
    [{ 'health-path': 'healthz' }, 'Input `health-path` must start with /'],
    [{ 'health-status': '2000' }, 'Input `health-status` must be a whole number from 100 to 599'],
    [{ 'keep-releases': '0' }, 'Input `keep-releases` must be a whole number from 1 to 50'],
    [{ 'rollback-on-failure': 'yes' }, 'Input `rollback-on-failure` must be true or false'],
    [{ 'release-store': 'github', 'github-token': '' }, 'Input `github-token` is empty'],
    [{ env: 'not a line' }, 'Input `env` line 1: expected KEY=value.'],
  ])('%j → %s', (over, message) => {
    setInputs({ ...BASE, ...over });
    expect(() => getInputs()).toThrow(message);
  });

  it('app name defaults to the repository name', () => {
    expect(defaultAppName('acme/Shop_Site')).toBe('shop_site');
    expect(defaultAppName(undefined)).toBe('app');
  });
});

describe('ssh provider inputs', () => {
  const make = () => createProvider('ssh', { appName: 'shop', lockOwner: 'test' });
  it.each([
    [{ hosts: '' }, 'Input `hosts` is required for provider ssh'],
    [{ hosts: 'root@host;id' }, 'Input `hosts`: "root@host;id" is not [user@]host[:port].'],
    [{ 'ssh-private-key': '' }, 'Input `ssh-private-key` is required for provider ssh'],
    [{ 'ssh-private-key': 'hunter2' }, 'Input `ssh-private-key` is not a PEM/OpenSSH private key'],
    [{ 'ssh-known-hosts': '' }, 'Input `ssh-known-hosts` is required for provider ssh'],
    [{ 'ssh-jump-host': 'a b' }, 'Input `ssh-jump-host`'],
    [{ 'remote-dir': 'relative' }, 'Input `remote-dir` must be an absolute path'],
    [{ 'remote-dir': '/var/../etc' }, 'Input `remote-dir` must be an absolute path'],
    [{ 'proxy-port': '8000', 'app-port': '8000' }, 'Input `proxy-port` must differ'],
    [{ 'image-transfer': 'ftp' }, 'Input `image-transfer` must be one of auto, pull, stream'],
  ])('%j → %s', (over, message) => {
    setInputs({ ...BASE, ...over });
    expect(make).toThrow(message);
  });

  it('unknown providers and not-yet-built ones are one clear line', () => {
    setInputs(BASE);
    expect(() => createProvider('ftp', { appName: 'a', lockOwner: 'o' })).toThrow('Input `provider` must be one of');
  });
});
