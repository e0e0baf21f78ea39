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
import { runnerTemp } from '@slipway/toolkit/runner';
import type { MigrationState } from '@slipway/toolkit/state';
import { PLAN_SCRIPT } from './plan-script';
import { recordedBackup, targetState, type DatabaseMode, type Resolution } from './target';

/**
 * The database side of a rollback: planned (read-only) before anything changes, run after the
 * old code serves (docs/rollback.md, "the order rule"). Every step runs the project's own Django
 * inside a release image on the runner (docker run --network host, env from a 0600 file).
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
  /** The image whose migrations know the whole path (the current one; the target's when going forward). */
  image?: string;
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

function hostFor(image: string, env: Map<string, string>): MigrationHost {
  return imageHost({ image, env: Object.fromEntries(env), tempDir: runnerTemp(), localPython: 'python3' });
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

async function pathIn(image: string, env: Map<string, string>, state: MigrationState): Promise<PathAnswer> {
  const host = hostFor(image, env);
  try {
    return await ask<PathAnswer>(host, { cmd: 'path', state }, 'Planning the migrations back');
  } finally {
    host.dispose();
  }
}

export async function tableCounts(image: string, env: Map<string, string>): Promise<Record<string, number | null>> {
  const host = hostFor(image, env);
  try {
    return (await ask<{ counts: Record<string, number | null> }>(host, { cmd: 'counts' }, 'Counting rows')).counts;
  } finally {
    host.dispose();
  }
}

/** Read-only: what the database step will do, or a refusal before anything changed. */
export async function planDatabase(
  mode: DatabaseMode,
  res: Resolution,
  opts: { env: Map<string, string>; backupFile?: string; backupDir: string },
): Promise<DatabasePlan> {
  if (mode === 'none') return { mode, steps: [] };
  if (opts.env.size === 0) {
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
    const host = hostFor(res.current.image, opts.env);
    try {
      const db = await databaseSettings({ host, database: 'default' });
      requireBackupTools(db);
      if (db.vendor === 'postgresql') requireClient('pg_restore', 'restoring a PostgreSQL backup');
      if (db.vendor === 'mysql') requireClient('mysql', 'restoring a MySQL backup');
    } finally {
      host.dispose();
    }
    const countsNow = await tableCounts(res.current.image, opts.env);
    return {
      mode,
      image: res.current.image,
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
  // Going back, the current image knows every migration to unapply; going forward (a rollback
  // of a rollback), the target's image knows the ones to apply again.
  let image = res.current.image;
  let answer = await pathIn(image, opts.env, wanted);
  if (!answer.known && res.target.image !== image) {
    image = res.target.image;
    answer = await pathIn(image, opts.env, wanted);
  }
  if (!answer.known) {
    throw new UserError(
      `Input \`database: migrate-back\`: neither release's image has the migrations ${answer.missing.join(', ')}; nothing was changed.`,
    );
  }
  return { mode, image, liveState: answer.state, targetState: wanted, steps: answer.steps };
}

/** The irreversible migration on the path, if any: the rollback refuses before changing anything. */
export function irreversibleStep(plan: DatabasePlan): Step | undefined {
  return plan.steps.find((s) => s.backwards && s.irreversible);
}

/** Fresh backup, then migrate back or restore, all under migrate's lock. */
export async function runDatabase(
  plan: DatabasePlan,
  opts: { env: Map<string, string>; backupDir: string; lockTimeoutMs: number },
): Promise<DatabaseResult> {
  const host = hostFor(plan.image!, opts.env);
  const project: Project = { host, database: 'default' };
  try {
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
      return { freshBackup, state, countsAfter: await tableCounts(plan.image!, opts.env) };
    });
  } finally {
    host.dispose();
  }
}
