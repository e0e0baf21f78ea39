import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DeployContext, DeployResult } from '@slipway/targets/types';
import { UserError } from '@slipway/toolkit/errors';
import type { ReleaseMigrations, ReleaseRecord } from '@slipway/toolkit/releases';

/**
 * deploy's story with a provider that migrates on the target (ssh release-dir): the record
 * begins once the provider says the migrations ran (ctx.migrated), before traffic moves, so a
 * store that keeps the first payload (GitHub Deployments) carries them; a migration that fails
 * first is recorded as a failure; without `migrate: true` the record begins before the deploy.
 */
const M: ReleaseMigrations = { before: { catalog: '0004_slug' }, after: { catalog: '0005_note' }, applied: ['catalog.0005_note'] };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-main-migrated-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const seen: { atCall?: ReleaseRecord[]; afterMigrated?: ReleaseRecord[]; migrated?: boolean } = {};
let behaviour: 'migrates' | 'fails' = 'migrates';

function records(): ReleaseRecord[] {
  const dir = path.join(tmp, 'releases', 'staging');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as ReleaseRecord);
}

vi.mock('@slipway/targets/registry', () => ({
  createProvider: () => ({
    name: 'ssh',
    migratesOnTarget: true,
    validate: () => Promise.resolve(),
    plannedReleaseId: (id: string) => id,
    currentRelease: () => Promise.resolve(undefined),
    activate: () => Promise.reject(new Error('not here')),
    close: () => Promise.resolve(),
    deploy: async (ctx: DeployContext): Promise<DeployResult> => {
      seen.atCall = records();
      seen.migrated = ctx.migrated !== undefined;
      if (ctx.migrate) {
        if (behaviour === 'fails')
          throw new UserError('Migration catalog.0005_note failed on root@h (boom); applied before it: none. Traffic was not moved.');
        await ctx.migrated!(M);
        seen.afterMigrated = records();
      }
      return { providerReleaseId: ctx.releaseId, url: 'http://127.0.0.1:1/', migrations: ctx.migrate ? M : undefined };
    },
  }),
}));

const { main } = await import('../../../packages/deploy/src/main');

function setInputs(inputs: Record<string, string>): void {
  for (const k of Object.keys(process.env)) if (k.startsWith('INPUT_')) delete process.env[k];
  for (const [k, v] of Object.entries(inputs)) process.env[`INPUT_${k.toUpperCase()}`] = v;
}

beforeEach(() => {
  fs.rmSync(path.join(tmp, 'releases'), { recursive: true, force: true });
  for (const k of Object.keys(seen)) delete seen[k as keyof typeof seen];
  behaviour = 'migrates';
  process.env.GITHUB_WORKSPACE = tmp;
  process.env.RUNNER_TEMP = tmp;
  process.env.GITHUB_SHA = 'a'.repeat(40);
  delete process.env.GITHUB_OUTPUT;
  delete process.env.GITHUB_STEP_SUMMARY;
});

const INPUTS = {
  provider: 'ssh',
  'ssh-runtime': 'release-dir',
  environment: 'staging',
  'release-store': 'releases',
  'github-token': '',
};

describe('deploy with a provider that migrates on the target', () => {
  it('migrate: true: nothing recorded before the migrations; the record begins with them, before traffic moves', async () => {
    setInputs({ ...INPUTS, migrate: 'true' });
    await main();
    expect(seen.atCall).toEqual([]);
    expect(seen.afterMigrated).toHaveLength(1);
    expect(seen.afterMigrated![0]).toMatchObject({ outcome: 'in_progress', migrations: M });
    expect(records()).toEqual([expect.objectContaining({ outcome: 'success', migrations: M })]);
  });

  it('a failed migration before any record: recorded as a failure, the step fails with its line', async () => {
    setInputs({ ...INPUTS, migrate: 'true' });
    behaviour = 'fails';
    await expect(main()).rejects.toThrow(/^Migration catalog\.0005_note failed on root@h/);
    expect(records()).toEqual([expect.objectContaining({ outcome: 'failure', migrations: null })]);
  });

  it('without migrate: the record begins before the deploy, and no `migrated` is offered', async () => {
    setInputs({ ...INPUTS, migrate: 'false' });
    await main();
    expect(seen.atCall).toEqual([expect.objectContaining({ outcome: 'in_progress', migrations: null })]);
    expect(seen.migrated).toBe(false);
    expect(records()).toEqual([expect.objectContaining({ outcome: 'success', migrations: null })]);
  });
});
