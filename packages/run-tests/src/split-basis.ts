import * as fs from 'node:fs';
import * as path from 'node:path';
import * as cache from '@actions/cache';
import * as core from '@actions/core';
import type { Shard } from '@slipway/toolkit/parse';
import type { Timings } from '@slipway/toolkit/sharding';
import { cachePathOf, restoreTimings } from './timings';

/**
 * The timings the shards of one workflow run split by: their "basis". Every shard computes the
 * split on its own, so all of them must split by the same timings. Shards of one run do not
 * start together when jobs queue, under `max-parallel`, or when failed jobs are re-run; a later
 * one restoring the newest records would get a sibling's fresh record of the same run (or
 * another run's) and compute another split: some tests twice, others never.
 *
 * So the first shard of a run to split saves its basis, before running any test, under
 * `<key>-<runner>-split<n>-<run id>-<attempt>-<k>` (a key per shard and attempt: shards that
 * start together never race for one key), and a shard that finds a basis of its run (prefix
 * `<key>-<runner>-split<n>-<run id>-`, any attempt: a re-run of failed jobs must split as the
 * first attempt's shards did) splits by it and restores nothing else. The basis is flat (the
 * merged durations, never a record inside a record) and its own record, so the per-shard records
 * of measured durations keep their format.
 */
export const BASIS_FORMAT = 'slipway-split-basis/1';

export interface RunIdentity {
  id: string;
  attempt: string;
}

export interface BasisRecord {
  format: typeof BASIS_FORMAT;
  run: RunIdentity;
  shard: { index: number; total: number };
  timings: Timings;
}

export interface Basis {
  timings: Timings;
  /** One line for the log: which timings the split is by, and where they came from. */
  note: string;
  /** A few words for the job summary. */
  source: string;
}

/** The workflow run this job belongs to; none outside Actions (no GITHUB_RUN_ID). */
export function runIdentity(env: NodeJS.ProcessEnv = process.env): RunIdentity | undefined {
  const id = env.GITHUB_RUN_ID ?? '';
  if (!/^\d+$/.test(id)) return undefined;
  const attempt = env.GITHUB_RUN_ATTEMPT ?? '';
  return { id, attempt: /^\d+$/.test(attempt) ? attempt : '1' };
}

export function basisKeyPrefix(key: string, runner: string, total: number, runId: string): string {
  return `${key}-${runner}-split${total}-${runId}-`;
}

export function basisFile(dir: string, total: number): string {
  return path.join(dir, `split-basis-of${total}.json`);
}

/**
 * Whether a record found under this run's basis prefix is one to split by: written by a shard
 * of this run (any attempt) for this many shards. Anything else (another format, a plain
 * timings object, another run or layout) is not, and the shard falls back to earlier runs.
 */
export function checkBasisRecord(value: unknown, run: RunIdentity, total: number): BasisRecord | string {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return 'not a JSON object';
  const r = value as Partial<BasisRecord>;
  if (r.format !== BASIS_FORMAT) return `format ${JSON.stringify(r.format ?? null)}, not ${BASIS_FORMAT}`;
  if (r.run?.id !== run.id) return `written by run ${String(r.run?.id)}, not ${run.id}`;
  if (r.shard?.total !== total) return `written for ${String(r.shard?.total)} shards, not ${total}`;
  if (!r.timings || typeof r.timings !== 'object' || Array.isArray(r.timings)) return 'no timings object';
  const bad = Object.entries(r.timings).find(([, s]) => typeof s !== 'number' || !Number.isFinite(s));
  if (bad) return `a duration that is not a number (${bad[0]})`;
  return r as BasisRecord;
}

/**
 * What a shard that computed the split shares with its siblings: every duration it restored, not
 * only those of the tests it collected. Jobs of a matrix that share the key may collect other
 * ids (a module skipped on one Python): a job finding another's basis must split its own ids as
 * its siblings did from the same records. The size stays that of the records restored: a basis
 * is never merged into a later run's timings.
 */
export function basisRecord(timings: Timings, run: RunIdentity, shard: Shard): BasisRecord {
  const kept: Timings = {};
  for (const id of Object.keys(timings).sort()) if (Number.isFinite(timings[id])) kept[id] = timings[id]!;
  return { format: BASIS_FORMAT, run, shard: { index: shard.index, total: shard.total }, timings: kept };
}

/**
 * The timings this shard splits by: this run's basis when a sibling (or an earlier attempt) saved
 * one; otherwise the records of earlier runs and `timings-path`, saved as this run's basis.
 */
export async function resolveBasis(opts: {
  key: string;
  runner: string;
  dir: string;
  shard: Shard;
  extraPath: string;
  run: RunIdentity | undefined;
}): Promise<Basis> {
  const { run, shard } = opts;
  const shared = run !== undefined && shard.total > 1 && cache.isFeatureAvailable();
  let reachable = true;
  if (shared) {
    const prefix = basisKeyPrefix(opts.key, opts.runner, shard.total, run.id);
    const file = basisFile(opts.dir, shard.total);
    fs.rmSync(opts.dir, { recursive: true, force: true });
    try {
      const hit = await cache.restoreCache([cachePathOf(file)], prefix, [prefix]);
      if (hit && fs.existsSync(file)) {
        const found = checkBasisRecord(readJson(file), run, shard.total);
        if (typeof found !== 'string') {
          const count = Object.keys(found.timings).length;
          const by = `shard ${found.shard.index}/${found.shard.total}, attempt ${found.run.attempt}`;
          const unread = opts.extraPath ? '; `timings-path` not read: every shard of a run splits by the same timings' : '';
          return {
            timings: found.timings,
            note: `Split basis: the timings run ${run.id} split by (saved by ${by}, under ${hit}): ${count} tests${unread}.`,
            source: `the timings this run's ${by} split by`,
          };
        }
        core.warning(`Ignoring the split basis under ${hit}: ${found}. Splitting by earlier runs' timings.`);
      }
    } catch (error) {
      reachable = false;
      core.warning(`Could not restore this run's split basis (${prefix}*): ${(error as Error).message}`);
    } finally {
      fs.rmSync(opts.dir, { recursive: true, force: true });
    }
  }

  const earlier = await restoreTimings({
    key: opts.key,
    runner: opts.runner,
    dir: opts.dir,
    total: shard.total,
    extraPath: opts.extraPath,
    runId: run?.id,
  });
  const count = Object.keys(earlier).length;
  const base = `Split basis: timings of earlier runs (${count} tests)`;
  if (!shared) {
    const why = shard.total === 1 ? 'one shard' : !run ? 'no GITHUB_RUN_ID' : 'no Actions cache';
    return { timings: earlier, note: `${base}; not shared with other shards (${why}).`, source: "earlier runs' timings" };
  }
  if (!reachable) {
    return {
      timings: earlier,
      note: `${base}; not saved for the other shards: the cache did not answer.`,
      source: "earlier runs' timings",
    };
  }
  const record = basisRecord(earlier, run, shard);
  const key = `${basisKeyPrefix(opts.key, opts.runner, shard.total, run.id)}${run.attempt}-${shard.index}`;
  const saved = await saveBasis(record, key, basisFile(opts.dir, shard.total), opts.dir);
  return {
    timings: record.timings,
    note: saved
      ? `${base}, saved for the other shards of run ${run.id} under ${key}.`
      : `${base}; not saved under ${key} (the cache took none: a job of the matrix with the same shard number may have saved it first).`,
    source: "earlier runs' timings",
  };
}

async function saveBasis(record: BasisRecord, key: string, file: string, dir: string): Promise<boolean> {
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(file, `${JSON.stringify(record)}\n`);
    return (await cache.saveCache([cachePathOf(file)], key)) !== -1;
  } catch (error) {
    core.warning(`Could not save the split basis (${key}): ${(error as Error).message}`);
    return false;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}
