import { afterEach, describe, expect, it } from 'vitest';
import { getInputs } from '@slipway/rollback/context';
import type { DatabasePlan } from '@slipway/rollback/database';
import { lossText, restoreSection, stepsText } from '@slipway/rollback/report';
import { defaultDatabaseMode, parseTo, recordedBackup, resolveTarget, targetState, type Resolution } from '@slipway/rollback/target';
import type { ReleaseRecord } from '@slipway/toolkit/releases';

const D1 = `sha256:${'1'.repeat(64)}`;
const D3 = `sha256:${'3'.repeat(64)}`;

function rec(id: string, over: Partial<ReleaseRecord> = {}): ReleaseRecord {
  const n = id.slice(-1);
  return {
    id: `20260101-00000${n}-${n.repeat(7)}-abc`,
    environment: 'staging',
    provider: 'ssh',
    providerReleaseId: `p${n}`,
    gitSha: n.repeat(40),
    gitRef: 'refs/heads/main',
    image: `reg/shop@sha256:${n.repeat(64)}`,
    imageDigest: `sha256:${n.repeat(64)}`,
    url: 'http://x/',
    migrations: null,
    backup: null,
    actor: 'octocat',
    createdAt: `2026-01-01T00:00:0${n}Z`,
    outcome: 'success',
    rollbackOf: null,
    ...over,
  };
}

const A = rec('1', { migrations: { before: { catalog: '0004' }, after: { catalog: '0004' }, applied: [] } });
const B = rec('2', {
  migrations: { before: { catalog: '0004' }, after: { catalog: '0005' }, applied: ['catalog.0005'] },
  backup: '/b/backup.dump',
});
const F = rec('3', { outcome: 'failure' });
const newestFirst = (...r: ReleaseRecord[]) => [...r].reverse();
const opts = { environment: 'staging', provider: 'ssh' };

describe('parseTo', () => {
  it.each([
    ['', { kind: 'previous' }],
    ['previous', { kind: 'previous' }],
    ['20260101-000001-1111111-abc', { kind: 'id', id: '20260101-000001-1111111-abc' }],
    ['ABCDEF1', { kind: 'sha', sha: 'abcdef1' }],
    [`reg/shop@${D1}`, { kind: 'image', ref: `reg/shop@${D1}` }],
    ['ghcr.io/acme/shop:v1', { kind: 'image', ref: 'ghcr.io/acme/shop:v1' }],
  ])('%j', (input, expected) => expect(parseTo(input)).toEqual(expected));

  it.each(['yesterday', 'abc', 'rm -rf /'])('refuses %j', (input) => expect(() => parseTo(input)).toThrow(/^Input `to` must be previous/));
});

describe('resolveTarget', () => {
  it('previous: the newest release that served before the current one; failures are skipped', () => {
    const r = resolveTarget(newestFirst(A, B, F), { kind: 'previous' }, opts);
    expect([r.current.id, r.target.id, r.undone.map((x) => x.id)]).toEqual([B.id, A.id, [B.id]]);
  });

  it('after a rollback, previous is the release it undid (rollback of a rollback)', () => {
    const R = rec('4', { image: A.image, rollbackOf: B.id });
    const r = resolveTarget(newestFirst(A, B, R), { kind: 'previous' }, opts);
    expect([r.current.id, r.target.id]).toEqual([R.id, B.id]);
  });

  it.each([
    ['by id', { kind: 'id', id: A.id }],
    ['by sha prefix', { kind: 'sha', sha: '1111111' }],
    ['by digest', { kind: 'image', ref: `other/name@${D1}` }],
  ] as const)('%s', (_n, spec) => expect(resolveTarget(newestFirst(A, B), spec, opts).target.id).toBe(A.id));

  it.each([
    ['no records', [], { kind: 'previous' }, /^No release of `staging` has served yet/],
    ['only one', [A], { kind: 'previous' }, /^No earlier release of `staging` to roll back to: \S+ is the only one that served\.$/],
    [
      'unknown id',
      [A, B],
      { kind: 'id', id: '20250101-000000-0000000-fff' },
      /^Input `to`: no release 20250101-000000-0000000-fff in the records of `staging`/,
    ],
    ['the current one', [A, B], { kind: 'id', id: B.id }, /is the release serving staging now/],
    ['a failed one', [A, B, F], { kind: 'id', id: F.id }, /ended failure; only a release that served can serve again/],
    ['unknown sha', [A, B], { kind: 'sha', sha: 'fffffff' }, /no release of `staging` that served was built from commit fffffff/],
    ['unknown image', [A, B], { kind: 'image', ref: `reg/shop@${D3}` }, /ran image reg\/shop@sha256:3/],
  ] as const)('refuses: %s', (_n, list, spec, message) => {
    expect(() => resolveTarget(newestFirst(...list), spec, opts)).toThrow(message);
  });

  it('refuses a record of another environment, from the listing or found elsewhere', () => {
    const P = { ...A, environment: 'production' };
    expect(() => resolveTarget([B, P], { kind: 'id', id: A.id }, opts)).toThrow(/is a record of environment `production`, not `staging`/);
    expect(() => resolveTarget([B, rec('0')], { kind: 'id', id: A.id }, { ...opts, findElsewhere: () => 'production' })).toThrow(
      /is a record of environment `production`/,
    );
  });

  it('refuses another provider than the records say', () => {
    expect(() => resolveTarget(newestFirst(A, B), { kind: 'previous' }, { ...opts, provider: 'heroku' })).toThrow(
      /^Input `provider` is heroku, but staging runs release \S+, deployed with ssh: roll back with `provider: ssh`\.$/,
    );
    const H = { ...A, provider: 'heroku' };
    expect(() => resolveTarget(newestFirst(H, B), { kind: 'previous' }, opts)).toThrow(/was deployed with heroku; nothing was changed/);
  });
});

describe('database decisions', () => {
  const res = (records: ReleaseRecord[]): Resolution => resolveTarget(newestFirst(...records), { kind: 'previous' }, opts);

  it('default: migrate-back when the undone releases applied migrations, else none', () => {
    expect(defaultDatabaseMode(res([A, B]))).toBe('migrate-back');
    expect(defaultDatabaseMode(res([A, rec('2')]))).toBe('none');
  });

  it('target state: its own record, else what the next release found before migrating', () => {
    expect(targetState(res([A, B]))).toEqual({ catalog: '0004' });
    expect(targetState(res([rec('1'), B]))).toEqual({ catalog: '0004' });
    expect(targetState(res([rec('1'), rec('2')]))).toBeNull();
  });

  it('backup: the oldest undone release that recorded one', () => {
    expect(recordedBackup(res([A, B]))).toMatchObject({ file: '/b/backup.dump', by: { id: B.id } });
    expect(recordedBackup(res([A, rec('2')]))).toBeUndefined();
  });
});

describe('plan text', () => {
  const plan: DatabasePlan = {
    mode: 'migrate-back',
    steps: [
      { app: 'orders', name: '0003_note', backwards: true, irreversible: null, losses: [{ what: 'column orders_order.note', rows: 1 }] },
      { app: 'catalog', name: '0006_x', backwards: true, irreversible: null, losses: [] },
      {
        app: 'catalog',
        name: '0005_barcode',
        backwards: true,
        irreversible: null,
        losses: [{ what: 'column catalog_product.barcode', rows: 2 }],
      },
    ],
  };
  const r = resolveTarget(newestFirst(A, B), { kind: 'previous' }, opts);

  it('steps grouped per app in the order they run', () => {
    expect(stepsText(plan)).toBe('unapply orders: 0003_note; unapply catalog: 0006_x, 0005_barcode');
  });

  it('data lost: columns and tables with rows', () => {
    expect(lossText(plan, r)).toBe('column orders_order.note (1 row(s) with data); column catalog_product.barcode (2 row(s) with data)');
    expect(lossText({ mode: 'none', steps: [] }, r)).toMatch(/^nothing/);
  });

  it('restore: rows before → after, only tables that changed', () => {
    expect(restoreSection({ orders_order: 2, catalog_product: 1 }, { orders_order: 0, catalog_product: 1 }).table?.rows).toEqual([
      ['orders_order', '2', '0', '2 row(s) lost'],
    ]);
  });
});

describe('inputs', () => {
  afterEach(() => {
    for (const k of Object.keys(process.env)) if (k.startsWith('INPUT_')) delete process.env[k];
  });
  const set = (inputs: Record<string, string>) => {
    for (const [k, v] of Object.entries(inputs)) process.env[`INPUT_${k.toUpperCase()}`] = v;
  };
  const base = { provider: 'ssh', environment: 'staging', 'release-store': 'releases' };

  it.each([
    [{ provider: 'k8s' }, 'Input `provider` must be one of ssh, heroku, aws-eb, cloud-run; got "k8s".'],
    [{ database: 'maybe' }, 'Input `database` must be one of none, migrate-back, restore-backup (or empty for the default); got "maybe".'],
    [{ revert: 'yes' }, 'Input `revert` must be false, commit or pull-request; got "yes".'],
    [{ revert: 'pull-request' }, 'Input `revert: pull-request` needs `github-token` (with contents: write and pull-requests: write).'],
    [{ revert: 'commit', 'revert-branch': '-x' }, /^Input `revert-branch` must be a branch name/],
    [{ revert: 'commit', 'revert-author-email': 'bot' }, 'Input `revert-author-email` must be an e-mail address (name@host); got "bot".'],
    [{ 'dry-run': 'perhaps' }, /dry-run/],
    [{ 'release-store': 'github' }, /^Input `github-token` is empty/],
    [{ environment: 'bad env' }, /^Input `environment` must be letters/],
  ])('%j', (over, message) => {
    set({ ...base, ...over });
    expect(() => getInputs()).toThrow(message);
  });

  it('reads a valid set', () => {
    set({ ...base, to: 'abcdef1', database: 'migrate-back', env: 'DATABASE_URL=postgres://u:pw@h/db', 'dry-run': 'true' });
    expect(getInputs()).toMatchObject({
      to: { kind: 'sha', sha: 'abcdef1' },
      database: 'migrate-back',
      dryRun: true,
      env: new Map([['DATABASE_URL', 'postgres://u:pw@h/db']]),
    });
  });
});
