import * as fs from 'node:fs';
import * as path from 'node:path';
import * as cache from '@actions/cache';
import * as core from '@actions/core';
import { parseJUnit, type TestResult } from '@slipway/toolkit/junit';
import type { Shard } from '@slipway/toolkit/parse';
import { mergeTimings, type Timings } from '@slipway/toolkit/sharding';

/**
 * Test durations kept between runs. Each shard k of n saves its own record under
 * `<key>-<runner>-<k>of<n>-<run id>-<attempt>` (cache entries are immutable, so every run adds
 * one); the next run restores the newest record of every shard by prefix and merges them. A
 * `timings-path` (a file or folder of earlier JUnit XML or timings JSON, e.g. a downloaded
 * artifact) is read too. The shards of one run split by the same timings: see split-basis.ts.
 *
 * The cache service matches an entry only under the same `version`, a hash of the paths as
 * given to @actions/cache, and @actions/cache takes no path with `..` in it: so the records
 * pass through a folder in the workspace (`.slipway-timings/`, given relative), the same on
 * every runner, hosted, self-hosted or in a container, and are removed once read or saved.
 */
export function timingsDir(workspace: string): string {
  return path.join(workspace, '.slipway-timings');
}

export function timingsFile(dir: string, shard: Shard | undefined): string {
  const { index, total } = shard ?? { index: 1, total: 1 };
  return path.join(dir, `timings-${index}of${total}.json`);
}

/** The path handed to the cache: relative to the working directory (the workspace on a runner). */
export function cachePathOf(file: string): string {
  return path.relative(process.cwd(), file);
}

function cacheKeyPrefix(key: string, runner: string, index: number, total: number): string {
  return `${key}-${runner}-${index}of${total}-`;
}

export async function restoreTimings(opts: {
  key: string;
  runner: string;
  dir: string;
  total: number;
  extraPath: string;
  /** This run: a record of it found here is a sibling's fresh one, not an earlier run's. */
  runId?: string;
}): Promise<Timings> {
  const records: Timings[] = [];
  if (opts.extraPath) records.push(...readTimingsPath(opts.extraPath));
  if (!cache.isFeatureAvailable()) {
    core.info('The Actions cache is not available here; using only `timings-path` for timings.');
    return mergeTimings(records);
  }
  // The shards of an earlier run of the same size, or a whole-suite run (1 of 1).
  const layouts = opts.total === 1 ? [1] : [opts.total, 1];
  // Records left by an earlier step of this job must not pass for restored ones.
  fs.rmSync(opts.dir, { recursive: true, force: true });
  for (const total of layouts) {
    for (let index = 1; index <= total; index++) {
      const file = timingsFile(opts.dir, { index, total });
      const prefix = cacheKeyPrefix(opts.key, opts.runner, index, total);
      try {
        const hit = await cache.restoreCache([cachePathOf(file)], prefix, [prefix]);
        if (hit && fs.existsSync(file)) {
          const record = readJson(file);
          records.push(record);
          core.info(`Timings of shard ${index}/${total}: ${Object.keys(record).length} tests from ${hit}`);
          if (opts.runId && hit.startsWith(`${prefix}${opts.runId}-`)) {
            core.warning(`${hit} was saved by this run (${opts.runId}): a shard that split before it was saved may have split otherwise.`);
          }
        }
      } catch (error) {
        core.warning(`Could not restore test timings (${prefix}*): ${(error as Error).message}`);
      }
    }
  }
  fs.rmSync(opts.dir, { recursive: true, force: true });
  // Records of a whole-suite run go first: the shards' newer ones win.
  return mergeTimings(records.reverse());
}

export async function saveTimings(opts: {
  key: string;
  runner: string;
  dir: string;
  shard?: Shard;
  results: TestResult[];
}): Promise<boolean> {
  if (!cache.isFeatureAvailable()) return false;
  const timings: Timings = {};
  for (const r of opts.results) if (r.outcome !== 'skipped') timings[r.id] = Number(r.time.toFixed(4));
  const { index, total } = opts.shard ?? { index: 1, total: 1 };
  const key = `${cacheKeyPrefix(opts.key, opts.runner, index, total)}${process.env.GITHUB_RUN_ID ?? Date.now()}-${process.env.GITHUB_RUN_ATTEMPT ?? 1}`;
  const file = timingsFile(opts.dir, opts.shard);
  try {
    fs.mkdirSync(opts.dir, { recursive: true });
    fs.writeFileSync(file, `${JSON.stringify(timings, null, 1)}\n`);
    const id = await cache.saveCache([cachePathOf(file)], key);
    if (id === -1) core.info(`Test timings were not saved (${key}): the cache service did not take them.`);
    else core.info(`Saved test timings under cache key ${key}`);
    return id !== -1;
  } catch (error) {
    core.warning(`Could not save test timings (${key}): ${(error as Error).message}`);
    return false;
  } finally {
    fs.rmSync(opts.dir, { recursive: true, force: true });
  }
}

/** Timings from a file or folder of JUnit XML (.xml) and timings JSON (.json). */
export function readTimingsPath(target: string): Timings[] {
  if (!fs.existsSync(target)) {
    core.warning(`\`timings-path\` ${target} does not exist; splitting without it.`);
    return [];
  }
  const files = fs.statSync(target).isDirectory()
    ? fs
        .readdirSync(target)
        .sort()
        .map((f) => path.join(target, f))
    : [target];
  const out: Timings[] = [];
  for (const file of files) {
    if (file.endsWith('.json')) out.push(readJson(file));
    else if (file.endsWith('.xml')) {
      const timings: Timings = {};
      for (const r of parseJUnit(fs.readFileSync(file, 'utf8'))) if (r.outcome !== 'skipped') timings[r.id] = r.time;
      out.push(timings);
    }
  }
  return out;
}

function readJson(file: string): Timings {
  try {
    const value = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Timings) : {};
  } catch {
    core.warning(`Ignoring ${file}: not a JSON object of test durations.`);
    return {};
  }
}
