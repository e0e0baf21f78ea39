import { describe, expect, it } from 'vitest';
import { parseDotenv } from '@slipway/toolkit/dotenv';

const parse = (text: string): Record<string, string> => Object.fromEntries(parseDotenv(text, 'env-file'));

describe('parseDotenv', () => {
  it.each([
    ['A=1', { A: '1' }],
    ['export A=1', { A: '1' }],
    ['# c\n\nA = 1 # note', { A: '1' }],
    [`A='x # y $Z'`, { A: 'x # y $Z' }],
    [`A="a\\nb \\"q\\""`, { A: 'a\nb "q"' }],
    ['A="line1\nline2"', { A: 'line1\nline2' }],
    ['A=\nB=2', { A: '', B: '2' }],
    ['URL=postgres://u:p@h:5432/db?sslmode=require', { URL: 'postgres://u:p@h:5432/db?sslmode=require' }],
    ['A=1\r\nB=2\r\n', { A: '1', B: '2' }],
    ['A=$(touch X)', { A: '$(touch X)' }],
  ])('%j', (text, expected) => expect(parse(text)).toEqual(expected));

  it.each([
    ['NOEQUALS', 'env-file line 1: expected KEY=value.'],
    ['1A=2', 'env-file line 1: `1A` is not a valid variable name (letters, digits, _).'],
    ['A=1\nB="open', 'env-file line 2: unterminated " quote for `B`.'],
    [`A='x' trailing`, 'env-file line 1: unexpected text after the closing quote of `A`.'],
    ['=value', 'env-file line 1: expected KEY=value.'],
  ])('rejects %j', (text, message) => expect(() => parse(text)).toThrow(message));
});
