import { describe, expect, it } from 'vitest';
import { CommandError, describeError, tail, UserError } from '@slipway/toolkit/errors';
import { derivedForms, looksSecret, redactUrl } from '@slipway/toolkit/secrets';

describe('errors', () => {
  it('keeps the last lines of stderr, capped', () => {
    const text = Array.from({ length: 50 }, (_, i) => `line ${i}`).join('\n');
    expect(tail(text, 3)).toBe('line 47\nline 48\nline 49');
    expect(tail('x'.repeat(10_000), 5, 100)).toHaveLength(101);
  });

  it('a command failure names the command, its exit code and its stderr tail', () => {
    const e = new CommandError('pip install -r requirements.txt', 1, 'ERROR: No matching distribution', 'Installing dependencies');
    expect(e.message).toBe(
      'Installing dependencies: `pip install -r requirements.txt` exited with code 1\nERROR: No matching distribution',
    );
    expect(new CommandError('nope', null, 'nope was not found').message).toBe('`nope` could not run\nnope was not found');
  });

  it('user mistakes have no stack; bugs keep theirs for the debug log', () => {
    expect(describeError(new UserError('bad'))).toEqual({ message: 'bad' });
    expect(describeError(new TypeError('x')).stack).toContain('TypeError');
    expect(describeError('str')).toEqual({ message: 'str' });
  });
});

describe('secrets', () => {
  it('masks derived forms of a secret', () => {
    const forms = derivedForms('p@ss w/rd\nline2');
    expect(forms).toEqual(
      expect.arrayContaining([
        'p@ss w/rd\nline2',
        'p@ss w/rd',
        'line2',
        Buffer.from('p@ss w/rd\nline2').toString('base64'),
        encodeURIComponent('p@ss w/rd\nline2'),
        'p@ss w/rd\\nline2',
      ]),
    );
  });

  it('redacts URL passwords', () => {
    expect(redactUrl('postgres://app:s3cret@db:5432/shop')).toBe('postgres://app:***@db:5432/shop');
    expect(redactUrl('redis://db:6379')).toBe('redis://db:6379');
  });

  it.each([
    ['SECRET_KEY', true],
    ['DB_PASSWORD', true],
    ['GITHUB_TOKEN', true],
    ['DATABASE_URL', true],
    ['SENTRY_DSN', true],
    ['DEBUG', false],
    ['ALLOWED_HOSTS', false],
  ])('%s looks secret: %s', (name, expected) => expect(looksSecret(name)).toBe(expected));
});
