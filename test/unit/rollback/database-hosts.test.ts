import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { MigrationHost } from '@slipway/migrate/lib';
import { planDatabase, type ReleaseHosts } from '@slipway/rollback/database';
import type { Resolution } from '@slipway/rollback/target';
import type { ReleaseRecord } from '@slipway/toolkit/releases';

/**
 * Rollback's database plan asks a recorded release's own Python, wherever the provider keeps it
 * (ssh release-dir: on the target, with the release's env file; else the image on the runner with
 * `env`): which release is asked, in which order, and when `env` is required.
 */
const rec = (id: string, after: Record<string, string | null>, image = `git:${id}`): ReleaseRecord => ({
  id,
  environment: 'prod',
  provider: 'ssh',
  providerReleaseId: id,
  gitSha: id.padEnd(40, '0'),
  gitRef: 'refs/heads/main',
  image,
  imageDigest: null,
  url: '',
  migrations: { before: null, after, applied: [] },
  backup: null,
  actor: 't',
  createdAt: `2026-12-04T00:00:0${id}Z`,
  outcome: 'success',
  rollbackOf: null,
});

const target = rec('1', { catalog: '0004_slug' });
const current = rec('2', { catalog: '0005_note' });
const res: Resolution = { current, target, undone: [current] };

/** Hosts whose Python answers the plan script's `path` request: `knows` says which releases have the migrations. */
function fakeHosts(knows: string[], needsEnv: boolean, sqliteFile = dbFile): ReleaseHosts & { asked: string[]; closed: string[] } {
  const asked: string[] = [];
  const closed: string[] = [];
  return {
    asked,
    closed,
    needsEnv,
    open: (release) => {
      const host: MigrationHost = {
        kind: 'ssh',
        managePy: 'manage.py',
        localPython: 'python3',
        python: (args) => {
          const cmd = (JSON.parse(args.at(-1)!) as { cmd: string }).cmd;
          asked.push(`${release.id} ${cmd}`);
          const known = knows.includes(release.id);
          const settings = {
            databases: [{ alias: 'default', engine: 'django.db.backends.sqlite3', vendor: 'sqlite3', name: sqliteFile, options: {} }],
          };
          const answer =
            cmd === 'settings'
              ? settings
              : known
                ? {
                    known,
                    missing: [],
                    state: { catalog: '0005_note' },
                    steps: [{ app: 'catalog', name: '0005_note', backwards: true, irreversible: null, losses: [] }],
                  }
                : { known, missing: ['catalog.0005_note'], state: {}, steps: [] };
          return Promise.resolve({ exitCode: 0, stdout: `SLIPWAY_JSON:${JSON.stringify(answer)}\n`, stderr: '', durationMs: 1 });
        },
        pythonCommand: () => ({ tool: 'false', args: [] }),
        dispose: () => undefined,
      };
      return Promise.resolve({ host, close: () => Promise.resolve(void closed.push(release.id)) });
    },
  };
}

const backupDir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-rb-unit-'));
/** The database as the runner sees it (the fresh backup is taken there). */
const dbFile = path.join(backupDir, 'db.sqlite3');
fs.writeFileSync(dbFile, '');
afterAll(() => fs.rmSync(backupDir, { recursive: true, force: true }));

describe('migrate-back plan through the release hosts', () => {
  it('a provider host (release dir on the target) needs no `env`: the current release is asked, and closed', async () => {
    const hosts = fakeHosts(['2'], false);
    const plan = await planDatabase('migrate-back', res, { hosts, env: new Map(), backupDir });
    expect(plan).toMatchObject({
      mode: 'migrate-back',
      release: { id: '2' },
      targetState: { catalog: '0004_slug' },
      liveState: { catalog: '0005_note' },
    });
    expect(hosts.asked).toEqual(['2 path', '2 settings']);
    expect(hosts.closed).toEqual(['2', '2']);
  });

  it("going forward (the current release lacks the migrations): the target's release is asked next", async () => {
    const hosts = fakeHosts(['1'], false);
    const plan = await planDatabase('migrate-back', res, { hosts, env: new Map(), backupDir });
    expect(plan.release?.id).toBe('1');
    expect(hosts.asked).toEqual(['2 path', '1 path', '1 settings']);
    expect(hosts.closed).toEqual(['2', '1', '1']);
  });

  it('neither release knows them: refused in one line, nothing changed', async () => {
    await expect(planDatabase('migrate-back', res, { hosts: fakeHosts([], false), env: new Map(), backupDir })).rejects.toThrow(
      /^Input `database: migrate-back`: neither release has the migrations catalog\.0005_note; nothing was changed\.$/,
    );
  });

  it('a SQLite file the runner does not see (it is on the host): refused before anything changes, no empty backup', async () => {
    const missing = path.join(backupDir, 'on-the-host', 'db.sqlite3');
    await expect(planDatabase('migrate-back', res, { hosts: fakeHosts(['2'], false, missing), env: new Map(), backupDir })).rejects.toThrow(
      /^The rollback backs the database up from this runner before changing it, but the SQLite database \S+ is not on this runner .*nothing was changed\./,
    );
    expect(fs.existsSync(missing)).toBe(false);
  });

  it('image hosts (the runner runs the image with `env`): an empty `env` is refused before any host is opened', async () => {
    const hosts = fakeHosts(['2'], true);
    await expect(planDatabase('migrate-back', res, { hosts, env: new Map(), backupDir })).rejects.toThrow(/^Input `env` \(or `env-file`\)/);
    expect(hosts.asked).toEqual([]);
  });
});
