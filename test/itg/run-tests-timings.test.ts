/**
 * Shard timings kept through the Actions cache (service v2, as on hosted runners; the stand-in
 * in test/stand-ins/cache-v2.ts records what @actions/cache sends). A first, whole-suite run
 * saves its durations; a later sharded run, on other runners, restores them by key prefix and
 * splits by them. Every job has its own checkout path, RUNNER_TEMP and HOME, as on other runners.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyProject, Job, REPO_ROOT } from '../harness/job';
import { preparedVenv, seedSetupDjango } from '../harness/python-env';
import { CacheV2StandIn } from '../stand-ins/cache-v2';

const req = (p: string): string => path.join(REPO_ROOT, p);
// Six tests of known, different lengths beside the fixture's seven quick ones.
const SLEEPS = [1.6, 1.2, 0.9, 0.7, 0.5, 0.3];
const DURATIONS_PY = `import time

import pytest


@pytest.mark.parametrize("seconds", [${SLEEPS.join(', ')}])
def test_sleeps(seconds):
    time.sleep(seconds)
`;

let venv = '';
let service: CacheV2StandIn;
const scratch: string[] = [];

beforeAll(async () => {
  // The same venv as run-tests.test.ts (its marker requirements make it so).
  venv = preparedVenv([
    req('example/requirements.txt'),
    req('test/fixtures/failing-pytest/requirements.txt'),
    req('test/fixtures/run-tests-tools/requirements.txt'),
  ]);
  service = await new CacheV2StandIn().start();
});
afterAll(async () => {
  await service?.stop();
  for (const dir of scratch.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

// Six tests named a to f whose lengths come from tests/durations.json: a commit that changes
// what each test costs (the same ids, other durations).
const NAMED_PY = `import json
import pathlib
import time

import pytest

SECONDS = json.loads((pathlib.Path(__file__).parent / "durations.json").read_text())


@pytest.mark.parametrize("name", ${JSON.stringify([...'abcdef'])})
def test_named(name):
    time.sleep(SECONDS[name])
`;

/** A job on a runner of its own: a fresh checkout at another path, its own RUNNER_TEMP and HOME. */
function runnerJob(runId: string, opts: { attempt?: string; durations?: Record<string, number> } = {}): Job {
  const workspace = copyProject('test/fixtures/pytest-project');
  scratch.push(workspace);
  if (opts.durations) {
    fs.writeFileSync(path.join(workspace, 'tests', 'test_named.py'), NAMED_PY);
    fs.writeFileSync(path.join(workspace, 'tests', 'durations.json'), JSON.stringify(opts.durations));
  } else {
    fs.writeFileSync(path.join(workspace, 'tests', 'test_durations.py'), DURATIONS_PY);
  }
  const job = new Job({ workspace, env: { ...service.env(), GITHUB_RUN_ID: runId, GITHUB_RUN_ATTEMPT: opts.attempt ?? '1' } });
  scratch.push(path.dirname(job.home));
  seedSetupDjango(job, { venv, projectDir: workspace, settingsModule: 'mysite.settings' });
  return job;
}

function cacheVersion(paths: string[]): string {
  let zstd = true;
  try {
    execFileSync('zstd', ['--quiet', '--version'], { stdio: 'ignore' });
  } catch {
    zstd = false;
  }
  return createHash('sha256')
    .update([...paths, zstd ? 'zstd-without-long' : 'gzip', '1.0'].join('|'))
    .digest('hex');
}

function shardIds(log: string, shard: string): string[] {
  const lines = log.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`::group::Shard ${shard}: `));
  if (start < 0) throw new Error(`no shard listing for ${shard}`);
  const end = lines.indexOf('::endgroup::', start);
  return lines.slice(start + 2, end).filter(Boolean);
}

const INPUTS = { parallel: '1', 'check-migrations': 'false', 'system-check': 'false', collectstatic: 'false' };
const PREFIX = 'slipway-test-timings-pytest-';

describe('run-tests timings through the Actions cache (v2)', () => {
  it('a whole-suite run saves its timings; the next sharded run restores them and splits by them into balanced shards', async () => {
    // Run 101: the whole suite, no shard. Its durations are saved as the 1-of-1 record.
    const first = runnerJob('101');
    const whole = await first.run('run-tests', INPUTS);
    expect(whole.failure).toBeUndefined();
    expect(whole.outputs.passed).toBe('13');
    const savedKey = `${PREFIX}1of1-101-1`;
    expect(whole.log).toContain(`Saved test timings under cache key ${savedKey}`);
    const version = cacheVersion(['.slipway-timings/timings-1of1.json']);
    expect(service.calls('CreateCacheEntry').map((c) => c.body)).toEqual([{ key: savedKey, version }]);
    const upload = service.blobs.find((b) => b.op === 'PutBlob')!;
    expect(service.calls('FinalizeCacheEntryUpload').map((c) => c.body)).toEqual([
      { key: savedKey, version, size_bytes: String(upload.bodyBytes) },
    ]);
    expect(service.violations).toEqual([]);
    expect(fs.existsSync(path.join(first.workspace, '.slipway-timings'))).toBe(false);

    // Run 102: a matrix of two shards started together, each on another runner (other
    // absolute paths, same layout). Their saves are held until both have looked up, as when
    // matrix jobs start at once (neither finds a basis of this run: each saves its own).
    service.reset();
    let open = (): void => undefined;
    service.options.createGate = new Promise<void>((resolve) => (open = resolve));
    const watch = setInterval(() => {
      if (service.calls('GetCacheEntryDownloadURL').length >= 8) open();
    }, 100);
    const steps = await Promise.all(
      [1, 2].map(async (k) => {
        const job = runnerJob('102');
        return { job, step: await job.run('run-tests', { ...INPUTS, shard: `${k}/2` }) };
      }),
    ).finally(() => {
      clearInterval(watch);
      open();
      service.options.createGate = undefined;
    });
    // Each looked up this run's split basis (none yet), this layout's records (none yet for 2
    // shards), then the whole-suite record.
    const lookups = service
      .calls('GetCacheEntryDownloadURL')
      .map((c) => [c.body.key, c.body.restore_keys, c.body.version, c.response.matched_key]);
    const expected = [
      [`${PREFIX}split2-102-`, [`${PREFIX}split2-102-`], cacheVersion(['.slipway-timings/split-basis-of2.json']), undefined],
      [`${PREFIX}1of2-`, [`${PREFIX}1of2-`], cacheVersion(['.slipway-timings/timings-1of2.json']), undefined],
      [`${PREFIX}2of2-`, [`${PREFIX}2of2-`], cacheVersion(['.slipway-timings/timings-2of2.json']), undefined],
      [`${PREFIX}1of1-`, [`${PREFIX}1of1-`], version, savedKey],
    ];
    expect(lookups.sort()).toEqual([...expected, ...expected].sort());
    // Each shard saved the basis it split by (for shards of this run that start later; one key
    // each, so shards that start together never race for one) and its own record for the next run.
    expect(
      service
        .calls('CreateCacheEntry')
        .map((c) => c.body.key)
        .sort(),
    ).toEqual([`${PREFIX}1of2-102-1`, `${PREFIX}2of2-102-1`, `${PREFIX}split2-102-1-1`, `${PREFIX}split2-102-1-2`]);
    expect(service.calls('FinalizeCacheEntryUpload').map((c) => c.response.ok)).toEqual([true, true, true, true]);
    expect(service.violations).toEqual([]);

    const seen: string[] = [];
    const estimates: number[][] = [];
    const slept: number[] = [];
    for (const [i, { job, step }] of steps.entries()) {
      const k = i + 1;
      expect(step.failure).toBeUndefined();
      expect(fs.existsSync(path.join(job.workspace, '.slipway-timings'))).toBe(false);
      expect(step.log).toContain(`Timings of shard 1/1: 13 tests from ${savedKey}`);
      expect(step.log).toContain(
        `Split basis: timings of earlier runs (13 tests), saved for the other shards of run 102 under ${PREFIX}split2-102-1-${k}.`,
      );
      const split =
        /Split by recorded durations \((\d+) known, (\d+) at the average\); estimated seconds per shard: ([\d.]+), ([\d.]+)/.exec(step.log);
      expect(split, step.log).not.toBeNull();
      expect([split![1], split![2]]).toEqual(['13', '0']);
      estimates.push([Number(split![3]), Number(split![4])]);
      expect(step.summary).toMatch(new RegExp(`${k}/2, split by recorded durations`));
      const mine = shardIds(step.log, `${k}/2`);
      expect(Number(step.outputs.passed)).toBe(mine.length);
      seen.push(...mine);
      slept.push(
        mine
          .map((id) => /test_sleeps\[([\d.]+)\]$/.exec(id)?.[1])
          .filter(Boolean)
          .reduce((s, v) => s + Number(v), 0),
      );
    }
    // Both shards computed the same plan, and together ran every test once.
    expect(estimates[0]).toEqual(estimates[1]);
    expect(seen).toHaveLength(13);
    expect(new Set(seen).size).toBe(13);
    // Balanced by the recorded durations (longest first onto the lighter shard): the two longest
    // tests on different shards and the estimates within the smallest sleep of each other, where
    // a split by hash deals by count alone.
    const longest = (name: string): number => seen.findIndex((id) => id.endsWith(`test_sleeps[${name}]`));
    const firstShardSize = Number(steps[0]!.step.outputs.passed);
    expect(longest('1.6') < firstShardSize).not.toBe(longest('1.2') < firstShardSize);
    expect(Math.abs(estimates[0]![0]! - estimates[0]![1]!)).toBeLessThan(0.3);
    expect(slept[0]! + slept[1]!).toBeCloseTo(5.2, 5);
  });

  it('a shard that starts after its sibling saved (max-parallel, queueing, a re-run) splits as the sibling did: every test in exactly one shard', async () => {
    // Its own key, so the first test's records play no part.
    const key = 'slipway-late';
    const prefix = `${key}-pytest-`;
    const inputs = { ...INPUTS, 'timings-key': key };
    const before = { a: 1.6, b: 1.2, c: 0.9, d: 0.7, e: 0.5, f: 0.3 };
    // The commit under test made the tests cost otherwise: its shards measure other durations.
    const after = { a: 0.3, b: 0.5, c: 0.7, d: 0.9, e: 1.2, f: 1.6 };
    const whole = await runnerJob('301', { durations: before }).run('run-tests', inputs);
    expect(whole.failure).toBeUndefined();
    expect(whole.log).toContain(`Saved test timings under cache key ${prefix}1of1-301-1`);

    // Run 302, one shard at a time: shard 1 restores run 301's record, splits, runs and saves;
    // only then does shard 2 start (and shard 1's fresh record is the newest 1of2 one).
    service.reset();
    const one = await runnerJob('302', { durations: after }).run('run-tests', { ...inputs, shard: '1/2' });
    expect(one.failure).toBeUndefined();
    const two = await runnerJob('302', { durations: after }).run('run-tests', { ...inputs, shard: '2/2' });
    expect(two.failure).toBeUndefined();
    // Together the two shards ran the whole suite, each test once.
    const first = shardIds(one.log, '1/2');
    const second = shardIds(two.log, '2/2');
    expect([...first, ...second].sort()).toEqual([...new Set([...first, ...second])].sort());
    expect(first.length + second.length).toBe(13);
    expect(Number(one.outputs.passed) + Number(two.outputs.passed)).toBe(13);

    expect(one.log).toContain(`Timings of shard 1/1: 13 tests from ${prefix}1of1-301-1`);
    expect(one.log).toContain(
      `Split basis: timings of earlier runs (13 tests), saved for the other shards of run 302 under ${prefix}split2-302-1-1`,
    );
    expect(one.log).toContain(`Saved test timings under cache key ${prefix}1of2-302-1`);
    expect(two.log).toContain(
      `Split basis: the timings run 302 split by (saved by shard 1/2, attempt 1, under ${prefix}split2-302-1-1): 13 tests`,
    );
    // Shard 1 looked up this run's basis (none yet), then the earlier records, and saved the
    // basis before running; shard 2 found that basis and needed no other record.
    expect(service.calls('GetCacheEntryDownloadURL').map((c) => [c.body.key, c.body.restore_keys, c.response.matched_key])).toEqual([
      [`${prefix}split2-302-`, [`${prefix}split2-302-`], undefined],
      [`${prefix}1of2-`, [`${prefix}1of2-`], undefined],
      [`${prefix}2of2-`, [`${prefix}2of2-`], undefined],
      [`${prefix}1of1-`, [`${prefix}1of1-`], `${prefix}1of1-301-1`],
      [`${prefix}split2-302-`, [`${prefix}split2-302-`], `${prefix}split2-302-1-1`],
    ]);
    expect(service.calls('CreateCacheEntry').map((c) => c.body.key)).toEqual([
      `${prefix}split2-302-1-1`,
      `${prefix}1of2-302-1`,
      `${prefix}2of2-302-1`,
    ]);
    expect(service.violations).toEqual([]);

    // Run 303 (shard 1 only so far) saves newer records of the same layout; then shard 2 of run
    // 302 is re-run (attempt 2): it splits as attempt 1 did, by run 302's basis.
    expect((await runnerJob('303', { durations: after }).run('run-tests', { ...inputs, shard: '1/2' })).failure).toBeUndefined();
    const rerun = await runnerJob('302', { durations: after, attempt: '2' }).run('run-tests', { ...inputs, shard: '2/2' });
    expect(rerun.failure).toBeUndefined();
    expect(rerun.log).toContain(`Split basis: the timings run 302 split by (saved by shard 1/2, attempt 1, under ${prefix}split2-302-1-1)`);
    expect(shardIds(rerun.log, '2/2')).toEqual(second);
    expect(rerun.log).toContain(`Saved test timings under cache key ${prefix}2of2-302-2`);
  });
});
