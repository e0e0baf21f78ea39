import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

/**
 * deploy's `migrate: true` (migrateOnce) over a recording stand-in of @slipway/migrate/lib: one
 * helper session spans the plan, the lock and the apply, and it ends (before the image host's
 * temp files go) whatever happened.
 */
const calls: string[] = [];
const behaviour = {
  pending: [{ app: 'catalog', name: '0002_price' }] as { app: string; name: string }[],
  openFails: false,
  applyOk: true,
};

vi.mock('@slipway/migrate/lib', () => {
  type P = { session?: unknown };
  return {
    imageHost: () => ({ dispose: () => calls.push('dispose') }),
    openSession: async (p: P, opts: { timeoutMs?: number }) => {
      calls.push(`open ${opts.timeoutMs ?? 'no timeout'}`);
      if (behaviour.openFails) throw new Error('Settings module `shop.settings` failed to load: boom');
      p.session = {};
    },
    closeSession: async (p: P) => {
      calls.push(p.session ? 'close' : 'close (none open)');
      p.session = undefined;
    },
    planMigrations: async (p: P) => {
      calls.push(`plan${p.session ? ' in session' : ''}`);
      return { state: { catalog: '0001_initial' }, pending: behaviour.pending, findings: [] };
    },
    withMigrationLock: async (p: P, _timeout: number, fn: () => Promise<unknown>) => {
      calls.push(`lock${p.session ? ' in session' : ''}`);
      try {
        return await fn();
      } finally {
        calls.push('unlock');
      }
    },
    applyMigrations: async (p: P, pending: { app: string; name: string }[]) => {
      calls.push(`apply${p.session ? ' in session' : ''} ${pending.length}`);
      return behaviour.applyOk
        ? { ok: true, applied: pending, state: { catalog: '0002_price' } }
        : { ok: false, applied: [], state: { catalog: '0001_initial' }, failed: pending[0], error: 'IntegrityError' };
    },
  };
});

const { migrateOnce } = await import('../../../packages/deploy/src/migrations');

beforeEach(() => {
  calls.length = 0;
  behaviour.pending = [{ app: 'catalog', name: '0002_price' }];
  behaviour.openFails = false;
  behaviour.applyOk = true;
  process.env.RUNNER_TEMP ??= '/tmp';
});

afterEach(() => vi.clearAllMocks());

describe('migrateOnce', () => {
  it('plans, locks and applies in one session, closed before the host is disposed', async () => {
    const result = await migrateOnce('registry/shop@sha256:abc', new Map([['DATABASE_URL', 'postgres://x']]));
    expect(result).toEqual({ before: { catalog: '0001_initial' }, after: { catalog: '0002_price' }, applied: ['catalog.0002_price'] });
    expect(calls).toEqual(['open 120000', 'plan in session', 'lock in session', 'apply in session 1', 'unlock', 'close', 'dispose']);
  });

  it('nothing pending: the session still ends', async () => {
    behaviour.pending = [];
    const result = await migrateOnce('registry/shop@sha256:abc', new Map());
    expect(result.applied).toEqual([]);
    expect(calls).toEqual(['open 120000', 'plan in session', 'close', 'dispose']);
  });

  it('a failed migration fails the deploy and the session ends', async () => {
    behaviour.applyOk = false;
    await expect(migrateOnce('registry/shop@sha256:abc', new Map())).rejects.toThrow(
      /^Migration catalog\.0002_price failed \(IntegrityError\); applied before it: none\. Traffic was not moved\.$/,
    );
    expect(calls.slice(-3)).toEqual(['unlock', 'close', 'dispose']);
  });

  it('a session that cannot start fails before any plan, and the host is still disposed', async () => {
    behaviour.openFails = true;
    await expect(migrateOnce('registry/shop@sha256:abc', new Map())).rejects.toThrow(/failed to load: boom/);
    expect(calls).toEqual(['open 120000', 'close (none open)', 'dispose']);
  });
});
