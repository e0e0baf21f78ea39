import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { shellQuote, shellQuoteWord } from '@slipway/toolkit/ssh';

/**
 * The remote side of ssh always runs the command line through the login shell: each argv word
 * must reach the program unchanged, and nothing in it may run. Checked with real shells (dash,
 * which Debian's sh is, and bash): each payload is printed back by printf and compared, and a
 * canary file proves nothing executed.
 */
const PAYLOADS = [
  '',
  'plain',
  'with space',
  "it's",
  "'",
  "''",
  '"',
  '\\',
  "\\\\'",
  '$(touch CANARY)',
  '`touch CANARY`',
  '; touch CANARY',
  '&& touch CANARY',
  '| touch CANARY',
  '> CANARY',
  "'; touch CANARY; '",
  "'\"'\"'$(touch CANARY)",
  '$HOME',
  '${IFS}touch${IFS}CANARY',
  '~',
  '*',
  '?',
  '[a-z]*',
  '!!',
  '#comment',
  '-e',
  '--',
  'line1\nline2',
  '\ntouch CANARY\n',
  '\ttab',
  'ünïcødé ✓',
  '{a,b}',
  '$((1+1))',
  'a=b',
  'PORT=8000',
  '%s',
];

const SHELLS = ['/bin/dash', '/bin/bash'].filter((s) => fs.existsSync(s));

describe('shellQuote', () => {
  it.each(SHELLS)('round-trips every payload through %s without running anything', (shell) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-quote-'));
    try {
      for (const payload of PAYLOADS) {
        const line = shellQuote(['printf', '%s\\0', payload, 'after']);
        const out = execFileSync(shell, ['-c', line], { cwd: dir }).toString('utf8');
        expect(out.split('\0').slice(0, 2)).toEqual([payload, 'after']);
      }
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ['plain', 'plain'],
    ['/var/lib/slipway/app', '/var/lib/slipway/app'],
    ['label=slipway.app=shop', 'label=slipway.app=shop'],
    ['', "''"],
    ['a b', "'a b'"],
    ["it's", "'it'\\''s'"],
    ['$x', "'$x'"],
  ])('%j → %s', (word, quoted) => expect(shellQuoteWord(word)).toBe(quoted));

  it('refuses NUL bytes and empty argv', () => {
    expect(() => shellQuoteWord('a\0b')).toThrow('NUL');
    expect(() => shellQuote([])).toThrow();
  });
});
