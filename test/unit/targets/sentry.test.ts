import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ReleaseRecord } from '../../../packages/toolkit/src/releases';
import {
  publishSentryRelease,
  readSentrySettings,
  recordSentryDeploy,
  sentryReleaseFor,
  type SentrySettings,
} from '../../../packages/toolkit/src/sentry';
import { SentryStub } from '../../stubs/sentry-api';
import { withInputs } from './cloud-helpers';

const TOKEN = 'sntrys_0123456789abcdef';
const SHA = '0123456789abcdef0123456789abcdef01234567';
const PREV = 'fedcba9876543210fedcba9876543210fedcba98';

describe('Sentry releases against the stand-in', () => {
  let stub: SentryStub;
  let settings: SentrySettings;
  beforeEach(async () => {
    stub = new SentryStub({ token: TOKEN, org: 'acme', projects: ['shop'], repositories: ['acme/shop'] });
    settings = { url: await stub.start(), token: TOKEN, org: 'acme', projects: ['shop'] };
  });
  afterEach(() => stub.stop());

  it('creates the release, associates commits, records the deploy, finalizes — in that order', async () => {
    const startedAt = new Date('2026-11-22T02:30:00Z');
    const finishedAt = new Date('2026-11-22T02:34:00Z');
    await publishSentryRelease(settings, {
      version: SHA,
      environment: 'production',
      repository: 'acme/shop',
      commit: SHA,
      previousCommit: PREV,
      deployName: '20261122-023000-0123456-a1f',
      deployUrl: 'https://shop.example.com',
      startedAt,
      finishedAt,
    });
    const calls = stub.requests.map((r) => `${r.method} ${r.path}`);
    expect(calls).toEqual([
      'POST /api/0/organizations/acme/releases/',
      `PUT /api/0/organizations/acme/releases/${SHA}/`,
      `POST /api/0/organizations/acme/releases/${SHA}/deploys/`,
      `PUT /api/0/organizations/acme/releases/${SHA}/`,
    ]);
    for (const r of stub.requests) {
      expect(r.headers.authorization).toBe(`Bearer ${TOKEN}`);
      expect(r.headers['content-type']).toBe('application/json');
    }
    expect(stub.requests.map((r) => r.json)).toEqual([
      { version: SHA, projects: ['shop'] },
      { refs: [{ repository: 'acme/shop', commit: SHA, previousCommit: PREV }] },
      {
        environment: 'production',
        name: '20261122-023000-0123456-a1f',
        url: 'https://shop.example.com',
        dateStarted: startedAt.toISOString(),
        dateFinished: finishedAt.toISOString(),
      },
      { dateReleased: finishedAt.toISOString() },
    ]);
    expect(stub.releases.get(SHA)).toMatchObject({ dateReleased: finishedAt.toISOString(), deploys: [{ environment: 'production' }] });
  });

  it('a repository Sentry does not know is a warning; the deploy is still recorded', async () => {
    await publishSentryRelease(settings, { version: 'v1', environment: 'staging', repository: 'acme/other', commit: SHA });
    expect(stub.releases.get('v1')!.refs).toEqual([]);
    expect(stub.releases.get('v1')!.deploys).toHaveLength(1);
    expect(stub.releases.get('v1')!.dateReleased).not.toBeNull();
  });

  it('a rollback records a deploy of an existing release (create answered 208)', async () => {
    await publishSentryRelease(settings, { version: 'v1', environment: 'production' });
    await recordSentryDeploy(settings, { version: 'v1', environment: 'production' });
    expect(stub.releases.get('v1')!.deploys).toHaveLength(2);
  });

  it('a bad token fails with the service message, not the token', async () => {
    const error = (await publishSentryRelease({ ...settings, token: 'nope-nope' }, { version: 'v1', environment: 'x' }).catch(
      (e: unknown) => e,
    )) as Error;
    expect(error.message).toBe('Sentry: create release v1: HTTP 401 — Invalid token');
  });
});

describe('Sentry settings', () => {
  let restore: () => void = () => undefined;
  afterEach(() => restore());

  it('nothing configured → no Sentry', () => {
    restore = withInputs({});
    expect(readSentrySettings({})).toBeUndefined();
  });

  it.each([
    [{ 'sentry-auth-token': TOKEN }, 'Input `sentry-org` is required with `sentry-auth-token` (the organization slug, or set SENTRY_ORG).'],
    [
      { 'sentry-auth-token': TOKEN, 'sentry-org': 'acme' },
      'Input `sentry-project` is required with `sentry-auth-token` (project slugs, or set SENTRY_PROJECT).',
    ],
    [
      { 'sentry-auth-token': TOKEN, 'sentry-org': 'acme', 'sentry-project': 'shop', 'sentry-url': 'ftp://x' },
      'Input `sentry-url` must be an http(s) URL.',
    ],
  ])('%j → %s', (inputs, message) => {
    restore = withInputs(inputs);
    expect(() => readSentrySettings({})).toThrow(message);
  });

  it('self-hosted URL and several projects', () => {
    restore = withInputs({
      'sentry-auth-token': TOKEN,
      'sentry-org': 'acme',
      'sentry-project': 'shop, shop-worker',
      'sentry-url': 'https://sentry.example.com/',
    });
    expect(readSentrySettings({})).toEqual({
      url: 'https://sentry.example.com',
      token: TOKEN,
      org: 'acme',
      projects: ['shop', 'shop-worker'],
    });
  });
});

describe('sentryReleaseFor', () => {
  const record = {
    id: '20261122-030000-0123456-a1f',
    environment: 'production',
    gitSha: SHA,
    url: 'https://shop.example.com/',
    createdAt: '2026-11-22T03:00:00.000Z',
  } as ReleaseRecord;
  const settings: SentrySettings = { url: 'https://sentry.io', token: TOKEN, org: 'acme', projects: ['shop'] };

  it('versions by git sha, commits since the previous release, deploy named by the record', () => {
    const r = sentryReleaseFor(settings, record, { ...record, gitSha: PREV }, { GITHUB_REPOSITORY: 'acme/shop' });
    expect(r).toMatchObject({
      version: SHA,
      environment: 'production',
      repository: 'acme/shop',
      commit: SHA,
      previousCommit: PREV,
      deployName: record.id,
      deployUrl: record.url,
    });
    expect(r.startedAt!.toISOString()).toBe(record.createdAt);
  });

  it('uses sentry-release when given; no previous commit when the sha did not change', () => {
    const r = sentryReleaseFor({ ...settings, release: 'shop@1.4.0' }, record, record, {});
    expect(r).toMatchObject({ version: 'shop@1.4.0', previousCommit: undefined, repository: undefined });
  });
});
