import * as fs from 'node:fs';
import * as path from 'node:path';
import * as core from '@actions/core';
import {
  backupDatabase,
  databaseSettings,
  imageHost,
  migrateBackTo,
  migrationState,
  parseAnswer,
  restoreBackup,
  withMigrationLock,
  type Backup,
  type MigrationHost,
  type Project,
} from '@slipway/migrate/lib';
import { ensureWritableDir, requireBackupTools } from '@slipway/toolkit/db-backup';
import { requireClient } from '@slipway/toolkit/db-clients';
import { CommandError, UserError, tail } from '@slipway/toolkit/errors';
import type { DatabaseSettings } from '@slipway/toolkit/django';
import type { ReleaseRecord } from '@slipway/toolkit/releases';
import { runnerTemp } from '@slipway/toolkit/runner';
import type { MigrationState } from '@slipway/toolkit/state';
import { PLAN_SCRIPT } from './plan-script';
import { recordedBackup, targetState, type DatabaseMode, type Resolution } from './target';

/**
 * The database side of a rollback: planned (read-only) before anything changes, run after the
 * old code serves (docs/rollback.md, "the order rule"). Every step runs the project's own Django
 * of a recorded release: inside its image on the runner (docker run --network host, env from a
 * 0600 file), or where the provider keeps it (ssh release-dir: its release dir on the target,
 * with its own env file).
 */
export interface Loss {
  what: string;
  rows: number | null;
}

export interface Step {
  app: string;
  name: string;
  backwards: boolean;
  irreversible: string | null;
  losses: Loss[];
}

export interface DatabasePlan {
  mode: DatabaseMode;
  /** The release whose migrations know the whole path (the current one; the target's when going forward). */
  release?: ReleaseRecord;
  liveState?: MigrationState;
  targetState?: MigrationState;
  steps: Step[];
  /** restore-backup: the backup that goes back in, and who recorded it. */
  restore?: { file: string; tool: string; recordedBy: string; takenAt: string };
  /** restore-backup: rows per table now; everything written after the backup goes. */
  countsNow?: Record<string, number | null>;
}

export interface DatabaseResult {
  freshBackup: Backup;
  state: MigrationState;
  countsAfter?: Record<string, number | null>;
}

interface PathAnswer {
  known: boolean;
  missing: string[];
  state: MigrationState;
  steps: Step[];
}

/** A release's Python, opened for a few requests; `close` frees what it holds (temp files, pid files on a host). */
export interface OpenedHost {
  host: MigrationHost;
  close(): Promise<void>;
}

/** Where a recorded release's Python runs against the database. */
export interface ReleaseHosts {
  open(release: ReleaseRecord): Promise<OpenedHost>;
  /** The `env` input gives that Python its database settings (image hosts); false: the release brings its own. */
  needsEnv: boolean;
}

/** The release's image on the runner, with the `env` input as its environment. */
export function imageHosts(env: Map<string, string>): ReleaseHosts {
  return {
    needsEnv: true,
    open: (release) => {
      const host = imageHost({ image: release.image, env: Object.fromEntries(env), tempDir: runnerTemp(), localPython: 'python3' });
      return Promise.resolve({ host, close: () => Promise.resolve(host.dispose()) });
    },
  };
}

async function withHost<T>(hosts: ReleaseHosts, release: ReleaseRecord, fn: (host: MigrationHost) => Promise<T>): Promise<T> {
  const opened = await hosts.open(release);
  try {
    return await fn(opened.host);
  } finally {
    await opened.close();
  }
}

async function ask<T>(host: MigrationHost, request: Record<string, unknown>, label: string): Promise<T> {
  const result = await host.python(['-c', PLAN_SCRIPT, JSON.stringify({ database: 'default', ...request })], {
    silent: true,
    allowFailure: true,
    label,
  });
  const answer = parseAnswer(result.stdout);
  if (!answer)
    throw new CommandError(
      `python <slipway rollback plan> ${String(request.cmd)}`,
      result.exitCode,
      tail(result.stderr || result.stdout),
      label,
    );
  if (answer.error) {
    if (typeof answer.trace === 'string') core.debug(answer.trace);
    const why =
      answer.error === 'connect'
        ? 'could not connect to the database'
        : answer.error === 'setup'
          ? 'the Django project failed to load'
          : 'failed';
    throw new UserError(`Planning the database rollback: ${why}: ${String(answer.message)} (check the \`env\` input).`);
  }
  return answer as T;
}

function pathIn(hosts: ReleaseHosts, release: ReleaseRecord, state: MigrationState): Promise<PathAnswer> {
  return withHost(hosts, release, (host) => ask<PathAnswer>(host, { cmd: 'path', state }, 'Planning the migrations back'));
}

export function tableCounts(hosts: ReleaseHosts, release: ReleaseRecord): Promise<Record<string, number | null>> {
  return withHost(
    hosts,
    release,
    async (host) => (await ask<{ counts: Record<string, number | null> }>(host, { cmd: 'counts' }, 'Counting rows')).counts,
  );
}

/** Read-only: what the database step will do, or a refusal before anything changed. */
export async function planDatabase(
  mode: DatabaseMode,
  res: Resolution,
  opts: { hosts: ReleaseHosts; env: Map<string, string>; backupFile?: string; backupDir: string },
): Promise<DatabasePlan> {
  if (mode === 'none') return { mode, steps: [] };
  const hosts = opts.hosts;
  if (hosts.needsEnv && opts.env.size === 0) {
    throw new UserError(
      `Input \`env\` (or \`env-file\`) must give the application's database settings (e.g. DATABASE_URL) for \`database: ${mode}\`; nothing was changed.`,
    );
  }
  ensureWritableDir(opts.backupDir, 'backup-dir');
  if (mode === 'restore-backup') {
    const recorded = recordedBackup(res);
    if (!recorded) {
      throw new UserError(
        `Input \`database: restore-backup\`: no backup was recorded by ${res.undone.map((r) => r.id).join(', ')} (deploy with the migrate action's backup); nothing was changed.`,
      );
    }
    const file = opts.backupFile ?? recorded.file;
    if (!fs.existsSync(file)) {
      throw new UserError(
        `Input \`database: restore-backup\`: the backup ${file} (recorded by ${recorded.by.id}) is not on this runner: download it and give its path in \`backup-file\`; nothing was changed.`,
      );
    }
    const tool = file.endsWith('.dbbackup') ? 'dbbackup' : 'vendor';
    const db = await checkFreshBackup(hosts, res.current);
    if (db.vendor === 'postgresql') requireClient('pg_restore', 'restoring a PostgreSQL backup');
    if (db.vendor === 'mysql') requireClient('mysql', 'restoring a MySQL backup');
    const countsNow = await tableCounts(hosts, res.current);
    return {
      mode,
      release: res.current,
      steps: [],
      restore: { file, tool, recordedBy: recorded.by.id, takenAt: fs.statSync(file).mtime.toISOString() },
      countsNow,
    };
  }
  const wanted = targetState(res);
  if (!wanted) {
    throw new UserError(
      `Input \`database: migrate-back\`: no record holds the migration state release ${res.target.id} served with (deployed without migrate); use \`database: restore-backup\` or \`none\`. Nothing was changed.`,
    );
  }
  // Going back, the current release knows every migration to unapply; going forward (a rollback
  // of a rollback), the target's release knows the ones to apply again.
  let release = res.current;
  let answer = await pathIn(hosts, release, wanted);
  if (!answer.known && res.target.image !== release.image) {
    release = res.target;
    answer = await pathIn(hosts, release, wanted);
  }
  if (!answer.known) {
    throw new UserError(
      `Input \`database: migrate-back\`: neither release has the migrations ${answer.missing.join(', ')}; nothing was changed.`,
    );
  }
  await checkFreshBackup(hosts, release);
  return { mode, release, liveState: answer.state, targetState: wanted, steps: answer.steps };
}

/**
 * The fresh backup before the database step is taken on the runner: refused now, before anything
 * changes, when it cannot be (no pg_dump / mysqldump; a SQLite file the runner does not see, as
 * on an ssh release-dir host: Python's sqlite3 would back up a new empty file instead).
 */
async function checkFreshBackup(hosts: ReleaseHosts, release: ReleaseRecord): Promise<DatabaseSettings> {
  const db = await withHost(hosts, release, (host) => databaseSettings({ host, database: 'default' }));
  requireBackupTools(db);
  if (db.vendor === 'sqlite' && !fs.existsSync(db.name)) {
    throw new UserError(
      `The rollback backs the database up from this runner before changing it, but the SQLite database ${db.name} is not on this runner (it is on the host); nothing was changed. Use \`database: none\` and move the schema on the host.`,
    );
  }
  return db;
}

/** The irreversible migration on the path, if any: the rollback refuses before changing anything. */
export function irreversibleStep(plan: DatabasePlan): Step | undefined {
  return plan.steps.find((s) => s.backwards && s.irreversible);
}

/** Fresh backup, then migrate back or restore, all under migrate's lock. */
export async function runDatabase(
  plan: DatabasePlan,
  opts: { hosts: ReleaseHosts; backupDir: string; lockTimeoutMs: number },
): Promise<DatabaseResult> {
  return withHost(opts.hosts, plan.release!, async (host) => {
    const project: Project = { host, database: 'default' };
    const db = await databaseSettings(project);
    return await withMigrationLock(project, opts.lockTimeoutMs, async () => {
      const freshBackup = await backupDatabase(project, db, { dir: opts.backupDir });
      core.info(`Backed up the database as it is now: ${freshBackup.file} (${freshBackup.bytes} bytes)`);
      if (plan.mode === 'migrate-back') {
        const moved = await migrateBackTo(project, plan.targetState!);
        return { freshBackup, state: moved.state ?? (await migrationState(project)) };
      }
      await restoreBackup(project, db, { file: plan.restore!.file, tool: plan.restore!.tool });
      core.info(`Restored ${path.basename(plan.restore!.file)}`);
      const state = await migrationState(project);
      return { freshBackup, state, countsAfter: await tableCounts(opts.hosts, plan.release!) };
    });
  });
}
