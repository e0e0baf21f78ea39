import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as Core from '@actions/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { planShards, type Timings } from '@slipway/toolkit/sharding';
import {
  BASIS_FORMAT,
  basisFile,
  basisKeyPrefix,
  basisRecord,
  checkBasisRecord,
  resolveBasis,
  runIdentity,
  type RunIdentity,
} from '../../../packages/run-tests/src/split-basis';
import { restoreTimings, saveTimings } from '../../../packages/run-tests/src/timings';

/**
 * The Actions cache as the service answers @actions/cache (an entry's version stands for the
 * path as every job hands it over, `.slipway-timings/<file>` from its own workspace): entries are immutable, a lookup takes
 * the primary key exactly, then each restore key exactly and then as a prefix, newest first.
 */
const store = vi.hoisted(() => ({
  entries: [] as { key: string; path: string; data: Buffer }[],
  failLookups: false,
  lookups: [] as string[],
  saves: [] as string[],
  warnings: [] as string[],
}));
function versionOf(paths: string[]): string {
  return paths.map((p) => path.basename(p)).join('|');
}
vi.mock('@actions/core', async (importOriginal) => ({
  ...(await importOriginal<typeof Core>()),
  info: () => undefined,
  warning: (message: string) => store.warnings.push(message),
}));
vi.mock('@actions/cache', async () => {
  const fsm = await import('node:fs');
  const pathm = await import('node:path');
  return {
    isFeatureAvailable: () => true,
    restoreCache: async (paths: string[], primaryKey: string, restoreKeys: string[] = []) => {
      store.lookups.push(primaryKey);
      if (store.failLookups) throw new Error('503 Service Unavailable');
      const usable = store.entries.filter((e) => e.path === versionOf(paths)).reverse();
      let match = usable.find((e) => e.key === primaryKey);
      for (const prefix of restoreKeys) match ??= usable.find((e) => e.key === prefix) ?? usable.find((e) => e.key.startsWith(prefix));
      if (!match) return undefined;
      const file = pathm.resolve(paths[0]!);
      fsm.mkdirSync(pathm.dirname(file), { recursive: true });
      fsm.writeFileSync(file, match.data);
      return match.key;
    },
    saveCache: async (paths: string[], key: string) => {
      store.saves.push(key);
      if (store.entries.some((e) => e.key === key)) return -1;
      store.entries.push({ key, path: versionOf(paths), data: fsm.readFileSync(pathm.resolve(paths[0]!)) });
      return store.entries.length;
    },
  };
});

const IDS = ['t.a', 't.b', 't.c', 't.d', 't.e', 't.f', 't.g', 't.h'];
const RUN_101_DURATIONS: Timings = { 't.a': 8, 't.b': 7, 't.c': 6, 't.d': 5, 't.e': 4, 't.f': 3, 't.g': 2, 't.h': 1 };
// Run 102's commit made the tests cost otherwise: the durations its shards measure.
const RUN_102_DURATIONS: Timings = { 't.a': 20, 't.b': 2, 't.c': 3, 't.d': 4, 't.e': 5, 't.f': 6, 't.g': 7, 't.h': 8 };

let dir = '';
beforeEach(() => {
  store.entries.length = 0;
  store.lookups.length = 0;
  store.saves.length = 0;
  store.failLookups = false;
  dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-basis-')), '.slipway-timings');
  store.warnings.length = 0;
});
afterEach(() => {
  vi.unstubAllEnvs();
  fs.rmSync(path.dirname(dir), { recursive: true, force: true });
});

const results = (timings: Timings, ids: string[]) =>
  ids.map((id) => ({ id, classname: 't', name: id, time: timings[id]!, outcome: 'passed' as const }));

/** A job of run `run` (attempt `attempt`) as shard k/n: split, then save its measured durations. */
async function shardJob(
  run: RunIdentity,
  k: number,
  n: number,
  measured: Timings,
  opts: { extraPath?: string; ids?: string[]; dir?: string } = {},
): Promise<{ selection: string[]; note: string }> {
  vi.stubEnv('GITHUB_RUN_ID', run.id);
  vi.stubEnv('GITHUB_RUN_ATTEMPT', run.attempt);
  const shard = { index: k, total: n };
  const [ids, folder] = [opts.ids ?? IDS, opts.dir ?? dir];
  const basis = await resolveBasis({ key: 'k', runner: 'pytest', dir: folder, shard, extraPath: opts.extraPath ?? '', run: runIdentity() });
  const selection = planShards(ids, basis.timings, n).shards[k - 1]!;
  await saveTimings({ key: 'k', runner: 'pytest', dir: folder, shard, results: results(measured, selection) });
  return { selection, note: basis.note };
}

async function wholeSuiteRun(runId: string, measured: Timings): Promise<void> {
  vi.stubEnv('GITHUB_RUN_ID', runId);
  await saveTimings({ key: 'k', runner: 'pytest', dir, results: results(measured, IDS) });
}

describe('runIdentity', () => {
  it.each([
    [
      { GITHUB_RUN_ID: '102', GITHUB_RUN_ATTEMPT: '2' },
      { id: '102', attempt: '2' },
    ],
    [{ GITHUB_RUN_ID: '102' }, { id: '102', attempt: '1' }],
    [
      { GITHUB_RUN_ID: '102', GITHUB_RUN_ATTEMPT: 'x' },
      { id: '102', attempt: '1' },
    ],
    [{}, undefined],
    [{ GITHUB_RUN_ID: '' }, undefined],
    [{ GITHUB_RUN_ID: '1,2' }, undefined],
  ])('%j -> %j', (env, want) => {
    expect(runIdentity(env)).toEqual(want);
  });
});

describe('checkBasisRecord', () => {
  const run = { id: '102', attempt: '2' };
  const good = { format: BASIS_FORMAT, run: { id: '102', attempt: '1' }, shard: { index: 1, total: 2 }, timings: { 't.a': 1.5 } };
  it.each([
    ['a record of this run, an earlier attempt', good, true],
    ['a record of this run with no timings (it split by hash)', { ...good, timings: {} }, true],
    ['a plain timings object (the per-shard record format)', { 't.a': 1.5 }, /format null/],
    ['another format', { ...good, format: 'slipway-split-basis/9' }, /format "slipway-split-basis\/9"/],
    ['another run', { ...good, run: { id: '1020', attempt: '1' } }, /run 1020, not 102/],
    ['another number of shards', { ...good, shard: { index: 1, total: 3 } }, /3 shards, not 2/],
    ['a duration that is not a number', { ...good, timings: { 't.a': '1.5' } }, /not a number \(t\.a\)/],
    ['not an object', [good], /not a JSON object/],
  ])('%s', (_name, value, want) => {
    const got = checkBasisRecord(value, run, 2);
    if (want === true) expect(got).toEqual(value);
    else expect(got).toMatch(want as RegExp);
  });
});

describe('basisRecord', () => {
  it('holds the merged durations flat, numbers only', () => {
    const record = basisRecord(
      { 't.b': 2, 'other.test': 9, 't.a': 1, 't.x': Number.NaN },
      { id: '7', attempt: '1' },
      { index: 2, total: 3 },
    );
    expect(record).toEqual({
      format: BASIS_FORMAT,
      run: { id: '7', attempt: '1' },
      shard: { index: 2, total: 3 },
      timings: { 'other.test': 9, 't.a': 1, 't.b': 2 },
    });
    expect(Object.values(record.timings).every((v) => typeof v === 'number')).toBe(true);
  });

  it("has a key prefix that matches neither another run's nor a per-shard record", () => {
    const prefix = basisKeyPrefix('k', 'pytest', 2, '102');
    expect(prefix).toBe('k-pytest-split2-102-');
    expect('k-pytest-split2-1020-1-1'.startsWith(prefix)).toBe(false);
    for (const perShard of ['k-pytest-1of2-', 'k-pytest-2of2-', 'k-pytest-1of1-']) expect(`${prefix}1-1`.startsWith(perShard)).toBe(false);
  });
});

describe('resolveBasis: the shards of one run split by the same timings', () => {
  it('a shard that starts after its sibling saved splits by the basis that sibling used; together they run every test once', async () => {
    await wholeSuiteRun('101', RUN_101_DURATIONS);
    const one = await shardJob({ id: '102', attempt: '1' }, 1, 2, RUN_102_DURATIONS);
    expect(one.note).toBe(
      'Split basis: timings of earlier runs (8 tests), saved for the other shards of run 102 under k-pytest-split2-102-1-1.',
    );
    // What shard 2 would merge from the newest records now (shard 1's fresh one among them):
    // not what shard 1 split by, so splitting by it would not be a complement of shard 1.
    const newest = await restoreTimings({ key: 'k', runner: 'pytest', dir, total: 2, extraPath: '' });
    expect(newest).not.toEqual(RUN_101_DURATIONS);
    expect([...one.selection, ...planShards(IDS, newest, 2).shards[1]!].sort()).not.toEqual(IDS);

    const two = await shardJob({ id: '102', attempt: '1' }, 2, 2, RUN_102_DURATIONS);
    expect(two.note).toBe(
      'Split basis: the timings run 102 split by (saved by shard 1/2, attempt 1, under k-pytest-split2-102-1-1): 8 tests.',
    );
    expect([...one.selection, ...two.selection].sort()).toEqual(IDS);
    // It found the basis and restored nothing else, and saved no basis of its own.
    expect(store.lookups.slice(-1)).toEqual(['k-pytest-split2-102-']);
    expect(store.saves.filter((k) => k.includes('split'))).toEqual(['k-pytest-split2-102-1-1']);
  });

  it('a re-run of a failed shard (attempt 2) splits by the first attempt’s basis, whatever later runs saved', async () => {
    await wholeSuiteRun('101', RUN_101_DURATIONS);
    const one = await shardJob({ id: '102', attempt: '1' }, 1, 2, RUN_102_DURATIONS);
    const two = await shardJob({ id: '102', attempt: '1' }, 2, 2, RUN_102_DURATIONS);
    // Run 103 runs both shards and saves newer records (and its own basis).
    await shardJob({ id: '103', attempt: '1' }, 1, 2, { ...RUN_102_DURATIONS, 't.h': 30 });
    await shardJob({ id: '103', attempt: '1' }, 2, 2, { ...RUN_102_DURATIONS, 't.h': 30 });
    const rerun = await shardJob({ id: '102', attempt: '2' }, 2, 2, RUN_102_DURATIONS);
    expect(rerun.note).toMatch(/^Split basis: the timings run 102 split by \(saved by shard 1\/2, attempt 1, /);
    expect(rerun.selection).toEqual(two.selection);
    expect([...one.selection, ...rerun.selection].sort()).toEqual(IDS);
  });

  it('with no durations anywhere the first shard shares an empty basis: a later one splits by hash too, not by its sibling’s record', async () => {
    const one = await shardJob({ id: '102', attempt: '1' }, 1, 3, RUN_102_DURATIONS);
    const two = await shardJob({ id: '102', attempt: '1' }, 2, 3, RUN_102_DURATIONS);
    const three = await shardJob({ id: '102', attempt: '1' }, 3, 3, RUN_102_DURATIONS);
    expect(two.note).toMatch(/run 102 split by .*: 0 tests\.$/);
    const hash = planShards(IDS, {}, 3).shards;
    expect([one.selection, two.selection, three.selection]).toEqual(hash);
  });

  it('a `timings-path` is part of the basis the first shard shares, and not read again by a later one', async () => {
    const extra = path.join(path.dirname(dir), 'artifact.json');
    fs.writeFileSync(extra, JSON.stringify(RUN_101_DURATIONS));
    const one = await shardJob({ id: '102', attempt: '1' }, 1, 2, RUN_102_DURATIONS, { extraPath: extra });
    fs.writeFileSync(extra, JSON.stringify(RUN_102_DURATIONS));
    const two = await shardJob({ id: '102', attempt: '1' }, 2, 2, RUN_102_DURATIONS, { extraPath: extra });
    expect(two.note).toMatch(/`timings-path` not read/);
    expect([...one.selection, ...two.selection].sort()).toEqual(IDS);
  });

  it('jobs of a matrix that share the key but collect other tests (a module skipped on one Python) each split as their own first shard did', async () => {
    await wholeSuiteRun('101', RUN_101_DURATIONS);
    const fewer = IDS.filter((id) => id !== 't.h' && id !== 't.a');
    const dirs = ['a', 'b'].map((name) => path.join(path.dirname(dir), name, '.slipway-timings'));
    const run = { id: '102', attempt: '1' };
    // Shard 1 of each job starts at once: neither finds a basis, both save one under the same
    // key (shard 1, attempt 1) and the one with fewer tests is first: it is the basis found later.
    const [fewer1, all1] = await Promise.all([
      shardJob(run, 1, 2, RUN_102_DURATIONS, { dir: dirs[1], ids: fewer }),
      shardJob(run, 1, 2, RUN_102_DURATIONS, { dir: dirs[0] }),
    ]);
    expect(store.saves.filter((k) => k.includes('split'))).toEqual(['k-pytest-split2-102-1-1', 'k-pytest-split2-102-1-1']);
    expect(all1.note).toMatch(/^Split basis: timings of earlier runs/);
    expect(fewer1.note).toMatch(/^Split basis: timings of earlier runs/);
    const all2 = await shardJob(run, 2, 2, RUN_102_DURATIONS);
    const fewer2 = await shardJob(run, 2, 2, RUN_102_DURATIONS, { ids: fewer });
    expect(all2.note).toMatch(/^Split basis: the timings run 102 split by/);
    expect([...all1.selection, ...all2.selection].sort()).toEqual(IDS);
    expect([...fewer1.selection, ...fewer2.selection].sort()).toEqual(fewer);
  });

  it('a record under the basis prefix that is not a basis is ignored with a warning (earlier runs are split by)', async () => {
    await wholeSuiteRun('101', RUN_101_DURATIONS);
    store.entries.push({ key: 'k-pytest-split2-102-1-1', path: versionOf([basisFile(dir, 2)]), data: Buffer.from('{"t.a": 99}') });
    vi.stubEnv('GITHUB_RUN_ID', '102');
    const basis = await resolveBasis({
      key: 'k',
      runner: 'pytest',
      dir,
      shard: { index: 2, total: 2 },
      extraPath: '',
      run: runIdentity(),
    });
    expect(store.warnings).toEqual([expect.stringMatching(/^Ignoring the split basis under k-pytest-split2-102-1-1: format null/)]);
    expect(basis.timings).toEqual(RUN_101_DURATIONS);
    expect(basis.note).toBe(
      'Split basis: timings of earlier runs (8 tests), saved for the other shards of run 102 under k-pytest-split2-102-1-2.',
    );
  });

  it('warns when a record of this run is restored (no basis of the run was found)', async () => {
    vi.stubEnv('GITHUB_RUN_ID', '102');
    await saveTimings({ key: 'k', runner: 'pytest', dir, shard: { index: 1, total: 2 }, results: results(RUN_102_DURATIONS, IDS) });
    await restoreTimings({ key: 'k', runner: 'pytest', dir, total: 2, extraPath: '', runId: '102' });
    expect(store.warnings).toEqual([
      'k-pytest-1of2-102-1 was saved by this run (102): a shard that split before it was saved may have split otherwise.',
    ]);
  });

  it.each([
    ['no run id', undefined, { index: 1, total: 2 }, /not shared with other shards \(no GITHUB_RUN_ID\)\.$/],
    ['one shard', { id: '102', attempt: '1' }, { index: 1, total: 1 }, /not shared with other shards \(one shard\)\.$/],
  ])('%s: no basis is looked up or saved', async (_name, run, shard, note) => {
    await wholeSuiteRun('101', RUN_101_DURATIONS);
    store.saves.length = 0;
    const basis = await resolveBasis({ key: 'k', runner: 'pytest', dir, shard, extraPath: '', run });
    expect(basis.note).toMatch(note);
    expect(basis.timings).toEqual(RUN_101_DURATIONS);
    expect(store.lookups.some((k) => k.includes('split'))).toBe(false);
    expect(store.saves).toEqual([]);
  });

  it('a cache that does not answer: no basis saved, the log says so', async () => {
    store.failLookups = true;
    const basis = await resolveBasis({
      key: 'k',
      runner: 'pytest',
      dir,
      shard: { index: 1, total: 2 },
      extraPath: '',
      run: { id: '102', attempt: '1' },
    });
    expect(basis.note).toBe('Split basis: timings of earlier runs (0 tests); not saved for the other shards: the cache did not answer.');
    expect(store.saves).toEqual([]);
    expect(fs.existsSync(dir)).toBe(false);
  });
});
