import { describe, expect, it } from 'vitest';
import { parseImageName, repoDigestFor, sanitizeTag, splitReference, validateTag } from '@slipway/toolkit/image-ref';
import { automaticTags, decideTags, ociLabels, parsePep440, parseSemver } from '@slipway/toolkit/tags';

const SHA = 'ABCDEF0123456789abcdef0123456789abcdef01';

describe('parseImageName', () => {
  it.each([
    ['ghcr.io/Acme/Shop', { registry: 'ghcr.io', repository: 'acme/shop', name: 'ghcr.io/acme/shop' }],
    ['127.0.0.1:5000/slipway/shop', { registry: '127.0.0.1:5000', repository: 'slipway/shop', name: '127.0.0.1:5000/slipway/shop' }],
    ['localhost/x', { registry: 'localhost', repository: 'x', name: 'localhost/x' }],
    ['acme/shop', { registry: 'docker.io', repository: 'acme/shop', name: 'acme/shop' }],
    ['nginx', { registry: 'docker.io', repository: 'library/nginx', name: 'nginx' }],
    [
      '123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop',
      {
        registry: '123456789012.dkr.ecr.eu-west-1.amazonaws.com',
        repository: 'shop',
        name: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop',
      },
    ],
    [
      'europe-docker.pkg.dev/proj/repo/my_app',
      { registry: 'europe-docker.pkg.dev', repository: 'proj/repo/my_app', name: 'europe-docker.pkg.dev/proj/repo/my_app' },
    ],
  ])('%s', (input, expected) => {
    expect(parseImageName(input)).toEqual(expected);
  });

  it.each([
    ['ghcr.io/acme/shop:1.0', 'without a tag or digest'],
    ['acme/shop@sha256:abc', 'without a tag or digest'],
    ['acme/Shop--', 'lower-case letters'],
    ['acme//shop', 'lower-case letters'],
    ['', 'empty'],
    ['acme/sh op', 'lower-case letters'],
  ])('refuses %j', (input, why) => {
    expect(() => parseImageName(input)).toThrow(why);
    expect(() => parseImageName(input)).toThrow(/^Input `image`/);
  });
});

describe('tags', () => {
  it.each([
    ['feature/login-form', 'feature-login-form'],
    ['-weird..', 'weird..'],
    ['déjà vu', 'd-j-vu'],
    ['a'.repeat(200), 'a'.repeat(128)],
  ])('sanitises %j', (input, out) => expect(sanitizeTag(input)).toBe(out));

  it('validates custom tags as given', () => {
    expect(validateTag('v1.2.3_rc')).toBe('v1.2.3_rc');
    expect(() => validateTag('-bad')).toThrow('Input `tags` has an invalid tag "-bad"');
    expect(() => validateTag('has space')).toThrow('invalid tag');
    expect(() => validateTag('x'.repeat(129))).toThrow('invalid tag');
  });

  it.each([
    ['v1.2.3', '1.2.3', ['1.2', '1']],
    ['1.2.3-rc.1', '1.2.3-rc.1', []],
    ['v0.4.1', '0.4.1', ['0.4']],
    ['1.2', undefined, undefined],
  ])('semver %s', (tag, version, rollups) => {
    const v = parseSemver(tag);
    expect(v?.version).toBe(version);
    expect(v?.rollups).toEqual(rollups);
  });

  it.each([
    ['1.2', '1.2', ['1.2', '1']],
    ['v2024.10', '2024.10', ['2024.10', '2024']],
    ['1.0RC1', '1.0rc1', []],
    ['1.0-1', '1.0.post1', ['1.0', '1']],
    ['1.0.dev3', '1.0.dev3', []],
    ['1!2.0', '1-2.0', []],
    ['1.0+local.7', '1.0-local.7', []],
    ['release-x', undefined, undefined],
  ])('pep 440 %s', (tag, version, rollups) => {
    const v = parsePep440(tag);
    expect(v?.version).toBe(version);
    expect(v?.rollups).toEqual(rollups);
  });

  it.each([
    ['refs/heads/main', ['main', 'latest', 'sha-abcdef0'], 'main'],
    ['refs/heads/feature/x', ['feature-x', 'sha-abcdef0'], 'feature-x'],
    ['refs/pull/42/merge', ['pr-42', 'sha-abcdef0'], 'pr-42'],
    ['refs/tags/v1.4.2', ['1.4.2', '1.4', '1', 'v1.4.2', 'sha-abcdef0'], '1.4.2'],
    ['refs/tags/v2.0.0-beta.1', ['2.0.0-beta.1', 'v2.0.0-beta.1', 'sha-abcdef0'], '2.0.0-beta.1'],
    ['refs/tags/2.1rc2', ['2.1rc2', 'sha-abcdef0'], '2.1rc2'],
    ['refs/tags/2025.3', ['2025.3', '2025', 'sha-abcdef0'], '2025.3'],
    ['refs/tags/nightly', ['nightly', 'sha-abcdef0'], 'nightly'],
  ])('automatic tags for %s', (ref, tags, version) => {
    expect(automaticTags({ sha: SHA, ref, defaultBranch: 'main' })).toEqual({ tags, version });
  });

  it('adds custom tags after the automatic ones, once each', () => {
    expect(decideTags({ sha: SHA, ref: 'refs/heads/main', defaultBranch: 'main' }, ['stable', 'main']).tags).toEqual([
      'main',
      'latest',
      'sha-abcdef0',
      'stable',
    ]);
    expect(decideTags({ sha: SHA, ref: 'refs/heads/dev', defaultBranch: 'trunk' }, []).tags).toEqual(['dev', 'sha-abcdef0']);
  });

  it('OCI labels', () => {
    const created = new Date('2026-01-02T03:04:05Z');
    expect(ociLabels({ serverUrl: 'https://github.com', repository: 'acme/shop', sha: SHA, version: '1.4.2', created })).toEqual({
      'org.opencontainers.image.title': 'shop',
      'org.opencontainers.image.source': 'https://github.com/acme/shop',
      'org.opencontainers.image.url': 'https://github.com/acme/shop',
      'org.opencontainers.image.revision': SHA,
      'org.opencontainers.image.version': '1.4.2',
      'org.opencontainers.image.created': '2026-01-02T03:04:05.000Z',
    });
  });
});

describe('references', () => {
  it('splits name, tag and digest', () => {
    expect(splitReference('127.0.0.1:5000/a/b:t@sha256:x')).toEqual({ name: '127.0.0.1:5000/a/b', tag: 't', digest: 'sha256:x' });
    expect(splitReference('127.0.0.1:5000/a/b')).toEqual({ name: '127.0.0.1:5000/a/b', tag: undefined, digest: undefined });
  });

  it('picks the RepoDigest of the pushed repository', () => {
    const d = `sha256:${'a'.repeat(64)}`;
    const e = `sha256:${'b'.repeat(64)}`;
    expect(repoDigestFor([`other.io/x@${e}`, `127.0.0.1:5000/s/shop@${d}`], '127.0.0.1:5000/s/shop')).toBe(`127.0.0.1:5000/s/shop@${d}`);
    expect(repoDigestFor([`docker.io/library/nginx@${d}`], 'nginx')).toBe(`docker.io/library/nginx@${d}`);
    expect(repoDigestFor([`x.io/a@${d}`], 'y.io/a')).toBeUndefined();
  });
});
