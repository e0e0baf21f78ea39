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
 * artifact) is read too.
 */
export function timingsFile(dir: string, shard: Shard | undefined): string {
  const { index, total } = shard ?? { index: 1, total: 1 };
  return path.join(dir, `timings-${index}of${total}.json`);
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
}): Promise<Timings> {
  const records: Timings[] = [];
  if (opts.extraPath) records.push(...readTimingsPath(opts.extraPath));
  if (!cache.isFeatureAvailable()) {
    core.info('The Actions cache is not available here; using only `timings-path` for timings.');
    return mergeTimings(records);
  }
  // The shards of an earlier run of the same size, or a whole-suite run (1 of 1).
  const layouts = opts.total === 1 ? [1] : [opts.total, 1];
  for (const total of layouts) {
    for (let index = 1; index <= total; index++) {
      const file = timingsFile(opts.dir, { index, total });
      const prefix = cacheKeyPrefix(opts.key, opts.runner, index, total);
      try {
        const hit = await cache.restoreCache([file], prefix, [prefix]);
        if (hit && fs.existsSync(file)) records.push(readJson(file));
      } catch (error) {
        core.warning(`Could not restore test timings (${prefix}*): ${(error as Error).message}`);
      }
    }
  }
  // Records of a whole-suite run go first: the shards' newer ones win.
  return mergeTimings(records.reverse());
}

export async function saveTimings(opts: {
  key: string;
  runner: string;
  dir: string;
  shard?: Shard;
  results: TestResult[];
}): Promise<string> {
  const timings: Timings = {};
  for (const r of opts.results) if (r.outcome !== 'skipped') timings[r.id] = Number(r.time.toFixed(4));
  fs.mkdirSync(opts.dir, { recursive: true });
  const file = timingsFile(opts.dir, opts.shard);
  fs.writeFileSync(file, `${JSON.stringify(timings, null, 1)}\n`);
  if (!cache.isFeatureAvailable()) return file;
  const { index, total } = opts.shard ?? { index: 1, total: 1 };
  const key = `${cacheKeyPrefix(opts.key, opts.runner, index, total)}${process.env.GITHUB_RUN_ID ?? Date.now()}-${process.env.GITHUB_RUN_ATTEMPT ?? 1}`;
  try {
    await cache.saveCache([file], key);
    core.info(`Saved test timings under cache key ${key}`);
  } catch (error) {
    core.warning(`Could not save test timings (${key}): ${(error as Error).message}`);
  }
  return file;
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
