import { describe, expect, it } from 'vitest';
import { inputVar, parseCommands, parseKeyValueFile } from '../harness/job';

describe('harness', () => {
  it('names inputs as the runner does', () => {
    expect(inputVar('python-version')).toBe('INPUT_PYTHON-VERSION');
    expect(inputVar('my input')).toBe('INPUT_MY_INPUT');
  });

  it('reads file commands in both forms', () => {
    expect(parseKeyValueFile('a=1\nb<<EOF_x\nline1\nline2\nEOF_x\nc=x=y\n')).toEqual({ a: '1', b: 'line1\nline2', c: 'x=y' });
    expect(() => parseKeyValueFile('b<<D\nnever closed')).toThrow(/unterminated/);
  });

  it('reads masks and annotations, and masks the shown log', () => {
    const log = [
      '::add-mask::hunter2',
      'password is hunter2',
      '::error file=app/tests.py,line=12,title=Failed::assert 1 == 2%0Adetail',
      '::error::setup-django failed: bad',
    ].join('\n');
    const parsed = parseCommands(log);
    expect(parsed.masks).toEqual(['hunter2']);
    expect(parsed.annotations).toEqual([
      { level: 'error', message: 'assert 1 == 2\ndetail', file: 'app/tests.py', line: 12, title: 'Failed' },
      { level: 'error', message: 'setup-django failed: bad', file: undefined, line: undefined, title: undefined },
    ]);
    expect(parsed.shown).toContain('password is ***');
    expect(parsed.shown).not.toContain('hunter2');
  });
});
