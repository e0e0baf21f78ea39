import { UserError } from './errors';

/**
 * Pure parsers for input values. Each takes the input's name so that its error names the input
 * and says what is allowed. The readers in inputs.ts feed them from the runner's INPUT_* vars.
 */

const q = (name: string): string => `\`${name}\``;

export function parseBoolean(value: string, name: string): boolean {
  if (/^true$/i.test(value)) return true;
  if (/^false$/i.test(value)) return false;
  throw new UserError(`Input ${q(name)} must be true or false, got ${JSON.stringify(value)}.`);
}

export function parseChoice<T extends string>(value: string, name: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UserError(`Input ${q(name)} must be one of ${allowed.join(', ')}; got ${JSON.stringify(value)}.`);
}

/** Items separated by newlines or commas (or newlines only), trimmed, empty ones dropped. */
export function parseList(value: string, opts: { commas?: boolean } = {}): string[] {
  const separator = opts.commas === false ? /\r?\n/ : /\r?\n|,/;
  return value
    .split(separator)
    .map((item) => item.trim())
    .filter((item) => item !== '' && !item.startsWith('#'));
}

export function parseInteger(value: string, name: string, range: { min?: number; max?: number } = {}): number {
  const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = range;
  const n = /^[+-]?\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UserError(`Input ${q(name)} must be a whole number${describeRange(min, max)}; got ${JSON.stringify(value)}.`);
  }
  return n;
}

export function parseNumber(value: string, name: string, range: { min?: number; max?: number } = {}): number {
  const { min = -Infinity, max = Infinity } = range;
  const n = /^[+-]?(\d+\.?\d*|\.\d+)$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new UserError(`Input ${q(name)} must be a number${describeRange(min, max)}; got ${JSON.stringify(value)}.`);
  }
  return n;
}

function describeRange(min: number, max: number): string {
  const hasMin = Number.isFinite(min) && min > Number.MIN_SAFE_INTEGER;
  const hasMax = Number.isFinite(max) && max < Number.MAX_SAFE_INTEGER;
  if (hasMin && hasMax) return ` from ${min} to ${max}`;
  if (hasMin) return ` of at least ${min}`;
  if (hasMax) return ` of at most ${max}`;
  return '';
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `90s`, `5m`, `1h30m`, `250ms`, or a bare number of seconds; returns milliseconds. */
export function parseDuration(value: string, name: string): number {
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (text === '' || parts.map((p) => p[0]).join('') !== text) {
    throw new UserError(`Input ${q(name)} must be a duration such as 90s, 5m or 1h30m; got ${JSON.stringify(value)}.`);
  }
  return Math.round(parts.reduce((ms, p) => ms + Number(p[1]) * UNIT_MS[p[2]!]!, 0));
}

export interface Shard {
  /** 1-based index of this shard. */
  index: number;
  total: number;
}

/** `k/n` with 1 ≤ k ≤ n. */
export function parseShard(value: string, name: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(value);
  const index = m ? Number(m[1]) : NaN;
  const total = m ? Number(m[2]) : NaN;
  if (!m || total < 1 || index < 1 || index > total) {
    throw new UserError(`Input ${q(name)} must be k/n with 1 ≤ k ≤ n (for example 2/4); got ${JSON.stringify(value)}.`);
  }
  return { index, total };
}

/** Fails unless exactly one of the named inputs has a value. */
export function exactlyOneOf(values: Record<string, unknown>): void {
  const set = Object.entries(values).filter(([, v]) => v !== undefined && v !== '');
  if (set.length !== 1) {
    const names = Object.keys(values).map(q);
    throw new UserError(
      `Exactly one of ${names.join(' or ')} inputs must be set${set.length ? ` (got ${set.map(([k]) => q(k)).join(', ')})` : ''}.`,
    );
  }
}

/** Fails when more than one of the named inputs has a value. */
export function atMostOneOf(values: Record<string, unknown>): void {
  const set = Object.entries(values).filter(([, v]) => v !== undefined && v !== '');
  if (set.length > 1) {
    throw new UserError(`Only one of ${Object.keys(values).map(q).join(' or ')} inputs can be set.`);
  }
}
