import { createHash } from 'node:crypto';

/**
 * Splitting a test suite across `total` shards so they finish close together. With recorded
 * durations: greedy longest-first onto the least-loaded shard (LPT, within 4/3 of optimal); a
 * test with no record is assumed to take the average. With no durations at all: ids ordered by
 * a stable hash and dealt in turn (equal counts), so every shard of a matrix computes the same
 * split on its own. Either way
 * every test lands in exactly one shard, and the split depends only on the ids and timings
 * (never on their order), so all shards agree.
 */
export type Timings = Record<string, number>;

export interface ShardPlan {
  shards: string[][];
  /** Estimated seconds per shard (by timings; test counts when split by hash). */
  estimates: number[];
  method: 'timings' | 'hash';
  /** Tests with no recorded duration. */
  unknown: number;
}

export function planShards(ids: readonly string[], timings: Timings, total: number): ShardPlan {
  if (!Number.isInteger(total) || total < 1) throw new RangeError(`shard count must be a positive integer, got ${total}`);
  const unique = [...new Set(ids)].sort();
  const known = unique.filter((id) => Number.isFinite(timings[id]) && timings[id]! >= 0);
  if (known.length === 0) return hashSplit(unique, total);
  const average = known.reduce((s, id) => s + timings[id]!, 0) / known.length;
  const cost = (id: string): number => (id in timings && Number.isFinite(timings[id]) ? timings[id]! : average);
  const order = [...unique].sort((a, b) => cost(b) - cost(a) || (a < b ? -1 : 1));
  const shards: string[][] = Array.from({ length: total }, () => []);
  const load = new Array<number>(total).fill(0);
  for (const id of order) {
    let best = 0;
    for (let i = 1; i < total; i++) if (load[i]! < load[best]!) best = i;
    shards[best]!.push(id);
    load[best]! += cost(id);
  }
  for (const shard of shards) shard.sort();
  return { shards, estimates: load, method: 'timings', unknown: unique.length - known.length };
}

/** Ids ordered by a stable hash, then dealt round-robin: shards differ by at most one test. */
function hashSplit(ids: string[], total: number): ShardPlan {
  const shards: string[][] = Array.from({ length: total }, () => []);
  const order = ids.map((id) => ({ id, h: stableHash(id) })).sort((a, b) => a.h - b.h || (a.id < b.id ? -1 : 1));
  order.forEach(({ id }, i) => shards[i % total]!.push(id));
  for (const shard of shards) shard.sort();
  return { shards, estimates: shards.map((s) => s.length), method: 'hash', unknown: ids.length };
}

/** A 32-bit hash of the id that is the same on every machine and Node version. */
export function stableHash(id: string): number {
  return createHash('sha1').update(id).digest().readUInt32BE(0);
}

/** Timings from several records merged; later records win for the same test. */
export function mergeTimings(records: Timings[]): Timings {
  const merged: Timings = {};
  for (const record of records) {
    for (const [id, seconds] of Object.entries(record)) if (typeof seconds === 'number' && Number.isFinite(seconds)) merged[id] = seconds;
  }
  return merged;
}
