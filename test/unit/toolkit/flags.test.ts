import { describe, expect, it } from 'vitest';
import { tokenize } from '@slipway/toolkit/flags';

describe('tokenize', () => {
  it.each([
    ['', []],
    ['-k smoke', ['-k', 'smoke']],
    ['  --failfast\n--keepdb ', ['--failfast', '--keepdb']],
    [`-k 'a and b'`, ['-k', 'a and b']],
    [`-k "a and \\"b\\""`, ['-k', 'a and "b"']],
    [`a\\ b`, ['a b']],
    [`''`, ['']],
    [`x"y"'z'`, ['xyz']],
    // Nothing is expanded or executed: these are plain data.
    ['$(touch X)', ['$(touch', 'X)']],
    ['`touch X`', ['`touch', 'X`']],
    ['$HOME ~ *.py', ['$HOME', '~', '*.py']],
    ['a;b && c | d', ['a;b', '&&', 'c', '|', 'd']],
    [`'$(touch X)'`, ['$(touch X)']],
  ])('%j → %j', (input, expected) => expect(tokenize(input, 'args')).toEqual(expected));

  it.each([
    [`'unterminated`, "Input `args` has an unterminated ' quote."],
    [`"unterminated`, 'Input `args` has an unterminated " quote.'],
    ['trailing\\', 'Input `args` ends with a lone backslash.'],
  ])('rejects %j', (input, message) => expect(() => tokenize(input, 'args')).toThrow(message));
});
