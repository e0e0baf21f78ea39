import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DirectoryStore, newReleaseId, RELEASE_ID, type ReleaseRecord } from '@slipway/toolkit/releases';

export function record(over: Partial<ReleaseRecord> = {}): ReleaseRecord {
  return {
    id: '20260101-000000-0123456-abc',
    environment: 'staging',
    provider: 'ssh',
    providerReleaseId: '20260101-000000-0123456-abc',
    gitSha: '0123456789abcdef0123456789abcdef01234567',
    gitRef: 'refs/heads/main',
    image: `127.0.0.1:5000/shop@sha256:${'a'.repeat(64)}`,
    imageDigest: `sha256:${'a'.repeat(64)}`,
    url: 'http://127.0.0.1:18080/',
    migrations: { before: { catalog: '0003_x' }, after: { catalog: '0004_y' }, applied: ['catalog.0004_y'] },
    backup: null,
    actor: 'octocat',
    createdAt: '2026-01-01T00:00:00.000Z',
    outcome: 'success',
    rollbackOf: null,
    ...over,
  };
}

describe('release ids', () => {
  it('sort by time and are safe in container names', () => {
    const a = newReleaseId('0123456789abcdef', new Date('2026-11-22T02:34:00Z'));
    expect(a).toMatch(/^20261122-023400-0123456-[0-9a-f]{3}$/);
    expect(a).toMatch(RELEASE_ID);
    const b = newReleaseId('ffff', new Date('2026-11-22T02:34:01Z'));
    expect(b > a).toBe(true);
    expect(newReleaseId('')).toMatch(/-nosha-/);
  });
});

describe('DirectoryStore', () => {
  it('writes one file per record, lists newest first, current = newest success', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-rel-'));
    const store = new DirectoryStore(dir);
    const r1 = record({ id: '20260101-000000-aaaaaaa-001', createdAt: '2026-01-01T00:00:00Z' });
    const r2 = record({ id: '20260102-000000-bbbbbbb-002', createdAt: '2026-01-02T00:00:00Z', outcome: 'in_progress' });
    await store.begin(r1);
    await store.begin(r2);
    expect((await store.current('staging'))?.id).toBe(r1.id);
    await store.finish({ ...r2, outcome: 'failure' });
    expect((await store.list('staging')).map((r) => [r.id, r.outcome])).toEqual([
      [r2.id, 'failure'],
      [r1.id, 'success'],
    ]);
    expect((await store.current('staging'))?.id).toBe(r1.id);
    expect(fs.readdirSync(path.join(dir, 'staging')).sort()).toEqual([`${r1.id}.json`, `${r2.id}.json`]);
    expect(await store.list('production')).toEqual([]);
    await expect(store.list('../etc')).rejects.toThrow('Input `environment`');
  });
});
