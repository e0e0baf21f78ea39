import { describe, expect, it } from 'vitest';
import { mergeTimings, planShards } from '@slipway/toolkit/sharding';

const ids = Array.from({ length: 57 }, (_, i) => `app.tests.T${i % 7}.test_${i}`);

describe('planShards', () => {
  it.each([1, 2, 3, 4, 7, 60])('puts every test in exactly one of %i shards (hash split)', (n) => {
    const plan = planShards(ids, {}, n);
    expect(plan.method).toBe('hash');
    expect(plan.shards).toHaveLength(n);
    const all = plan.shards.flat();
    expect(all.sort()).toEqual([...ids].sort());
    expect(new Set(all).size).toBe(ids.length);
    const sizes = plan.shards.map((s) => s.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  });

  it('is the same whatever order the ids and timings come in', () => {
    const timings = Object.fromEntries(ids.map((id, i) => [id, (i * 37) % 11]));
    const a = planShards(ids, timings, 4);
    const b = planShards([...ids].reverse(), Object.fromEntries(Object.entries(timings).reverse()), 4);
    expect(b.shards).toEqual(a.shards);
  });

  it('balances recorded durations and gives unknown tests the average', () => {
    const timings: Record<string, number> = { a: 10, b: 9, c: 8, d: 3, e: 2, f: 2, g: 1 };
    const plan = planShards([...Object.keys(timings), 'new_test'], timings, 3);
    expect(plan.method).toBe('timings');
    expect(plan.unknown).toBe(1);
    expect(plan.shards.flat().sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'new_test']);
    const avg = 35 / 7;
    expect(plan.estimates.reduce((s, x) => s + x, 0)).toBeCloseTo(35 + avg);
    expect(Math.max(...plan.estimates)).toBeLessThanOrEqual(14);
  });

  it('beats a split by test count on skewed durations', () => {
    const timings = Object.fromEntries(ids.map((id, i) => [id, i < 8 ? 5 : 0.1]));
    const plan = planShards(ids, timings, 4);
    const mean = plan.estimates.reduce((s, x) => s + x, 0) / 4;
    expect(Math.max(...plan.estimates) / mean).toBeLessThan(1.15);
  });

  it('rejects a shard count that is not a positive integer', () => {
    expect(() => planShards(ids, {}, 0)).toThrow(RangeError);
  });
});

describe('mergeTimings', () => {
  it('keeps the later record and drops non-numbers', () => {
    expect(
      mergeTimings([
        { a: 1, b: 2 },
        { b: 3, c: Number.NaN, d: 'x' as unknown as number },
      ]),
    ).toEqual({ a: 1, b: 3 });
  });
});
