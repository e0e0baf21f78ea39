import { describe, expect, it } from 'vitest';
import { UserError } from '@slipway/toolkit/errors';
import {
  atMostOneOf,
  exactlyOneOf,
  parseBoolean,
  parseChoice,
  parseDuration,
  parseInteger,
  parseList,
  parseNumber,
  parseShard,
} from '@slipway/toolkit/parse';

describe('parseBoolean', () => {
  it.each([
    ['true', true],
    ['True', true],
    ['TRUE', true],
    ['false', false],
    ['False', false],
  ])('%s → %s', (value, expected) => expect(parseBoolean(value, 'cache')).toBe(expected));

  it.each(['yes', 'no', '1', '0', 'on', 'tru'])('rejects %s naming the input', (value) => {
    expect(() => parseBoolean(value, 'cache')).toThrow(new UserError(`Input \`cache\` must be true or false, got "${value}".`));
  });
});

describe('parseList', () => {
  it.each([
    ['a,b', ['a', 'b']],
    ['a\nb\n', ['a', 'b']],
    [' a , b \n c ', ['a', 'b', 'c']],
    ['', []],
    ['a\n# comment\nb', ['a', 'b']],
    ['a,,b', ['a', 'b']],
  ])('%j → %j', (value, expected) => expect(parseList(value)).toEqual(expected));

  it('keeps commas when told to split on newlines only', () => {
    expect(parseList('a,b\nc', { commas: false })).toEqual(['a,b', 'c']);
  });
});

describe('parseDuration', () => {
  it.each([
    ['90s', 90_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['250ms', 250],
    ['1m30s', 90_000],
    ['45', 45_000],
    ['1.5s', 1500],
  ])('%s → %d ms', (value, ms) => expect(parseDuration(value, 'wait-timeout')).toBe(ms));

  it.each(['', 'soon', '5 minutes', '-3s', '5x', 's5', '1h 30m'])('rejects %j', (value) => {
    expect(() => parseDuration(value, 'wait-timeout')).toThrow(/^Input `wait-timeout` must be a duration such as 90s, 5m or 1h30m/);
  });
});

describe('parseShard', () => {
  it.each([
    ['1/1', { index: 1, total: 1 }],
    ['2/4', { index: 2, total: 4 }],
    [' 3 / 3 ', { index: 3, total: 3 }],
  ])('%s', (value, expected) => expect(parseShard(value, 'shard')).toEqual(expected));

  it.each(['0/3', '4/3', 'a/b', '1/0', '2', '', '1/2/3', '-1/2'])('rejects %j', (value) => {
    expect(() => parseShard(value, 'shard')).toThrow(/^Input `shard` must be k\/n with 1 ≤ k ≤ n/);
  });
});

describe('numbers', () => {
  it('parses integers in range', () => {
    expect(parseInteger('3', 'retries', { min: 0 })).toBe(3);
    expect(() => parseInteger('-1', 'retries', { min: 0 })).toThrow('Input `retries` must be a whole number of at least 0; got "-1".');
    expect(() => parseInteger('1.5', 'retries')).toThrow(/whole number/);
    expect(() => parseInteger('2x', 'retries')).toThrow(/whole number/);
  });

  it('parses numbers in range', () => {
    expect(parseNumber('87.5', 'coverage-fail-under', { min: 0, max: 100 })).toBe(87.5);
    expect(() => parseNumber('101', 'coverage-fail-under', { min: 0, max: 100 })).toThrow(
      'Input `coverage-fail-under` must be a number from 0 to 100; got "101".',
    );
    expect(() => parseNumber('abc', 'coverage-fail-under')).toThrow(/must be a number/);
  });
});

describe('choices and combinations', () => {
  it('accepts an allowed choice and names the allowed ones otherwise', () => {
    expect(parseChoice('uv', 'installer', ['uv', 'pip'])).toBe('uv');
    expect(() => parseChoice('conda', 'installer', ['uv', 'pip'])).toThrow('Input `installer` must be one of uv, pip; got "conda".');
  });

  it('exactlyOneOf / atMostOneOf', () => {
    expect(() => exactlyOneOf({ source: 'x', image: '' })).not.toThrow();
    expect(() => exactlyOneOf({ source: '', image: '' })).toThrow('Exactly one of `source` or `image` inputs must be set.');
    expect(() => exactlyOneOf({ source: 'a', image: 'b' })).toThrow(/got `source`, `image`/);
    expect(() => atMostOneOf({ source: 'a', image: 'b' })).toThrow('Only one of `source` or `image` inputs can be set.');
    expect(() => atMostOneOf({ source: 'a', image: undefined })).not.toThrow();
  });
});
