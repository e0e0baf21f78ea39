import { afterEach, describe, expect, it, vi } from 'vitest';
import { readAppEnv, readHealth, readReleaseStore } from '@slipway/targets/common-inputs';

function masks(fn: () => unknown): string[] {
  const writes: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    writes.push(String(chunk));
    return true;
  });
  try {
    fn();
  } finally {
    spy.mockRestore();
  }
  return writes
    .flatMap((w) => w.split('\n'))
    .filter((l) => l.startsWith('::add-mask::'))
    .map((l) => l.slice(12));
}

afterEach(() => vi.unstubAllEnvs());

describe('inputs deploy and rollback share', () => {
  it('masks secret-looking names and credentials inside URL values, whatever the name', () => {
    vi.stubEnv('INPUT_ENV', 'DEBUG=false\nAPI_TOKEN=tok-123\nCACHE_URL=redis://:pw-456@cache:6379/0\nSITE=https://example.com');
    let env = new Map<string, string>();
    const masked = masks(() => (env = readAppEnv()));
    expect(env.get('CACHE_URL')).toBe('redis://:pw-456@cache:6379/0');
    expect(masked).toContain('tok-123');
    expect(masked).toContain('pw-456');
    expect(masked).toContain('redis://:pw-456@cache:6379/0');
    expect(masked).not.toContain('https://example.com');
    expect(masked).not.toContain('false');
  });

  it('validates the health path and reads the release store', () => {
    vi.stubEnv('INPUT_HEALTH-PATH', 'healthz');
    expect(() => readHealth()).toThrow('Input `health-path` must start with / or be an http(s) URL; got "healthz".');
    vi.stubEnv('INPUT_RELEASE-STORE', 'github');
    vi.stubEnv('INPUT_GITHUB-TOKEN', '');
    expect(() => readReleaseStore()).toThrow(/^Input `github-token` is empty/);
  });
});
