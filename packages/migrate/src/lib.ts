/**
 * The migration library deploy (migrate: true) and rollback (migrate-back, restore-backup) call:
 * plan, lint, back up, lock, apply, record, and the way back. Every function takes a
 * MigrationHost (where the project's Python runs) and the database alias.
 */
import * as core from '@actions/core';
import { backupDatabase as dumpDatabase, restoreDatabase, type Backup } from '@slipway/toolkit/db-backup';
import { endpoint } from '@slipway/toolkit/db-clients';
import { withHeldLock } from '@slipway/toolkit/db-lock';
import { inspectDjango, type DatabaseSettings } from '@slipway/toolkit/django';
import { CommandError, UserError, tail } from '@slipway/toolkit/errors';
import { maskSecret } from '@slipway/toolkit/secrets';
import type { MigrationState } from '@slipway/toolkit/state';
import { HELPER_SCRIPT } from './helper-script';
import type { MigrationHost } from './host';
import { MigrationSession } from './session';

export type { Backup } from '@slipway/toolkit/db-backup';
export type { MigrationHost } from './host';
export { imageHost, runnerHost } from './host';
export type { MigrationSession } from './session';

export interface Project {
  host: MigrationHost;
  /** Database alias in settings.DATABASES. */
  database: string;
  /** Used in error messages: where the database is. */
  where?: string;
  /**
   * The helper process started by openSession: while it runs, every function below asks it
   * (one Django start-up for the whole run) instead of starting Python again.
   */
  session?: MigrationSession;
  /** Named in the message when the settings fail to load. */
  settingsModule?: string;
}

export interface MigrationRef {
  app: string;
  name: string;
}

export type Severity = 'error' | 'warning';

export interface Finding {
  migration: string;
  app: string;
  name: string;
  operation: string;
  rule: string;
  severity: Severity;
  reason: string;
  /** Accepted for this migration by `slipway_allow = [...]` on its Migration class. */
  allowed: boolean;
  file: string | null;
  line: number | null;
}

export interface Plan {
  vendor: string;
  pending: MigrationRef[];
  state: MigrationState;
  findings: Finding[];
}

export const FAIL_ON = ['error', 'warning', 'never'] as const;
export type FailOn = (typeof FAIL_ON)[number];

interface HelperAnswer {
  error?: string;
  message?: string;
  trace?: string;
  [key: string]: unknown;
}

/** Where the helper found the project and its settings (the image host has no setup-django to ask). */
export interface ProjectInfo {
  projectDir: string;
  managePy: boolean;
  settingsModule: string;
  /** `environment`: DJANGO_SETTINGS_MODULE was set; `manage.py`: its os.environ.setdefault. */
  settingsFrom: 'environment' | 'manage.py';
}

/**
 * Starts the project's Django once for the rest of the run (p.session); end it with closeSession
 * before host.dispose(). Fails in one line when the settings do not load.
 */
export async function openSession(p: Project, opts: { timeoutMs?: number } = {}): Promise<ProjectInfo | undefined> {
  const { session, answer } = await MigrationSession.start(p.host, p.database, opts.timeoutMs);
  if (answer.error) {
    await session.close();
    if (answer.trace) core.debug(answer.trace);
    throw new UserError(helperMessage(p, answer));
  }
  p.session = session;
  return answer.project as ProjectInfo | undefined;
}

/** Ends p.session (releasing any lock it still holds); later calls start Python per call again. */
export async function closeSession(p: Project): Promise<void> {
  const session = p.session;
  p.session = undefined;
  await session?.close();
}

/** Runs one helper command and returns its JSON answer; refusals become one-line UserErrors. */
async function helper<T>(p: Project, request: Record<string, unknown>, label: string, timeoutMs?: number): Promise<T> {
  if (p.session) {
    const answer = await p.session.request(request, { label, timeoutMs });
    if (answer.error) {
      if (answer.trace) core.debug(answer.trace);
      throw new UserError(helperMessage(p, answer));
    }
    return answer as T;
  }
  const args = ['-c', HELPER_SCRIPT, JSON.stringify({ database: p.database, ...request })];
  const result = await p.host.python(args, { silent: true, allowFailure: true, label, timeoutMs });
  const answer = parseAnswer(result.stdout);
  if (!answer) {
    throw new CommandError(
      `python <slipway migrate helper> ${String(request.cmd)}`,
      result.exitCode,
      tail(result.stderr || result.stdout),
      label,
    );
  }
  if (answer.error) {
    if (answer.trace) core.debug(answer.trace);
    throw new UserError(helperMessage(p, answer));
  }
  return answer as T;
}

export function parseAnswer(stdout: string): HelperAnswer | undefined {
  const line = stdout
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('SLIPWAY_JSON:'));
  return line ? (JSON.parse(line.slice('SLIPWAY_JSON:'.length)) as HelperAnswer) : undefined;
}

function helperMessage(p: Project, a: HelperAnswer): string {
  const where = p.where ? ` at ${p.where}` : '';
  switch (a.error) {
    case 'import-django':
      return `Django is not installed in the environment (${a.message}): add it to the project's dependencies.`;
    case 'setup': {
      const module = p.settingsModule ?? (typeof a.module === 'string' ? a.module : undefined);
      return module ? `Settings module \`${module}\` failed to load: ${a.message}` : `The Django project failed to load: ${a.message}`;
    }
    case 'settings':
      return `No settings module for the project: ${a.message}. Set DJANGO_SETTINGS_MODULE (the \`env\` input, or ENV in the image), or point \`working-directory\` at the folder whose manage.py sets it.`;
    case 'project-dir':
      return `Input \`working-directory\`: ${a.message}.`;
    case 'connect':
      return `Could not connect to the database${where}: ${a.message}`;
    case 'lock-timeout':
      return `Another migration holds the migration lock on the database${where} (${a.message}); gave up waiting: raise \`lock-timeout\` or retry when it is done. Nothing was applied.`;
    case 'alias':
      return `Input \`database\`: ${a.message}.`;
    default:
      return `${a.message}`;
  }
}

/** Database settings for the alias, as Django resolves them (password masked). */
export async function databaseSettings(
  p: Project,
  local?: { python: string; projectDir: string; settingsModule: string; env: Record<string, string> },
): Promise<DatabaseSettings> {
  let dbs: DatabaseSettings[];
  if (local && !p.session) {
    dbs = (await inspectDjango(local)).databases;
  } else {
    dbs = (await helper<{ databases: DatabaseSettings[] }>(p, { cmd: 'settings' }, 'Reading the database settings')).databases;
    for (const db of dbs) {
      maskSecret(db.password);
      if (db.vendor === 'sqlite3' || db.vendor === 'spatialite') db.vendor = 'sqlite';
      if (db.vendor === 'postgis') db.vendor = 'postgresql';
    }
  }
  const db = dbs.find((d) => d.alias === p.database);
  if (!db) {
    throw new UserError(
      `Input \`database\`: alias ${JSON.stringify(p.database)} is not in settings.DATABASES (have: ${dbs.map((d) => d.alias).join(', ') || 'none'}).`,
    );
  }
  if (!p.where) p.where = describeDatabase(db);
  return db;
}

export function describeDatabase(db: DatabaseSettings): string {
  if (db.vendor === 'sqlite') return db.name;
  const { host, port } = endpoint(db);
  return `${host}:${port}`;
}

/** Pending migrations in the order `migrate` applies them, the applied state, and (with lint) findings. */
export async function planMigrations(p: Project, opts: { lint: boolean; timeoutMs?: number }): Promise<Plan> {
  const answer = await helper<Plan>(p, { cmd: 'plan', lint: opts.lint }, 'Planning migrations', opts.timeoutMs);
  return { vendor: answer.vendor, pending: answer.pending, state: answer.state, findings: answer.findings ?? [] };
}

/** Whether `app` (e.g. "dbbackup") is in INSTALLED_APPS. */
export async function hasApp(p: Project, app: string): Promise<boolean> {
  return (await helper<{ installed: boolean }>(p, { cmd: 'has-app', app }, `Looking for ${app}`)).installed;
}

export async function migrationState(p: Project): Promise<MigrationState> {
  return (await helper<{ state: MigrationState }>(p, { cmd: 'state' }, 'Reading the applied migrations')).state;
}

/** The findings that stop a migration under `failOn` (accepted ones never do). */
export function lintPlan(findings: Finding[], failOn: FailOn): { blocking: Finding[]; accepted: Finding[] } {
  const accepted = findings.filter((f) => f.allowed);
  if (failOn === 'never') return { blocking: [], accepted };
  const blocking = findings.filter((f) => !f.allowed && (failOn === 'warning' || f.severity === 'error'));
  return { blocking, accepted };
}

export function formatFinding(f: Finding): string {
  return `${f.migration} ${f.operation}: [${f.severity} ${f.rule}] ${f.reason}${f.allowed ? ' (accepted by slipway_allow)' : ''}`;
}

/**
 * Backs the database up: django-dbbackup's `dbbackup` when the project has it installed,
 * else the vendor's own tool (pg_dump -Fc, mysqldump --single-transaction, SQLite online copy).
 */
export async function backupDatabase(
  p: Project,
  db: DatabaseSettings,
  opts: { dir: string; useDbbackup?: boolean; file?: string },
): Promise<Backup> {
  if (opts.useDbbackup) {
    const file = opts.file ?? `${opts.dir}/${db.alias}-${new Date().toISOString().replace(/[-:.]/g, '')}.dbbackup`;
    await p.host.python([p.host.managePy, 'dbbackup', '--noinput', '--database', db.alias, '--output-path', file], {
      label: 'Backing up with django-dbbackup',
    });
    const { statSync } = await import('node:fs');
    return { file, vendor: db.vendor, tool: 'dbbackup', bytes: statSync(file).size };
  }
  return dumpDatabase(db, { dir: opts.dir, python: p.host.localPython, file: opts.file });
}

/** Puts the database back to the backup's exact content (rollback's restore-backup). */
export async function restoreBackup(p: Project, db: DatabaseSettings, backup: Pick<Backup, 'file' | 'tool'>): Promise<void> {
  if (backup.tool === 'dbbackup') {
    await p.host.python([p.host.managePy, 'dbrestore', '--noinput', '--database', db.alias, '--input-path', backup.file], {
      label: 'Restoring with django-dbbackup',
    });
    return;
  }
  await restoreDatabase(db, backup.file, { python: p.host.localPython });
}

/** Runs `fn` while this job holds the database's migration lock; waits up to `timeoutMs` for it. */
export async function withMigrationLock<T>(p: Project, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  if (p.session) return withSessionLock(p, p.session, timeoutMs, fn);
  const cmd = p.host.pythonCommand(['-c', HELPER_SCRIPT, JSON.stringify({ cmd: 'lock', database: p.database, timeout: timeoutMs / 1000 })]);
  core.info(`Taking the migration lock (waiting up to ${Math.round(timeoutMs / 1000)}s)`);
  return withHeldLock(
    {
      ...cmd,
      readyLine: 'SLIPWAY_LOCKED',
      explain: (stdout) => {
        const answer = parseAnswer(stdout);
        return answer?.error ? helperMessage(p, answer) : undefined;
      },
    },
    fn,
  );
}

/** The lock on the session's own connection: the helper that plans and applies also holds it. */
async function withSessionLock<T>(p: Project, session: MigrationSession, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  core.info(`Taking the migration lock (waiting up to ${Math.round(timeoutMs / 1000)}s)`);
  await helper(p, { cmd: 'lock', timeout: timeoutMs / 1000 }, 'Taking the migration lock', timeoutMs + 60_000);
  core.info('Lock taken.');
  try {
    return await fn();
  } finally {
    // A helper that died (or was stopped on a timeout) took its connection, and the lock, with it.
    if (session.alive) await helper(p, { cmd: 'unlock' }, 'Releasing the migration lock', 60_000).catch(() => session.close());
    core.info('Lock released.');
  }
}

export interface ApplyResult {
  ok: boolean;
  applied: MigrationRef[];
  state: MigrationState;
  /** The migration that failed, when one did. */
  failed?: MigrationRef;
  error?: string;
}

/** `manage.py migrate --noinput`, streamed; then what was applied and the state now. */
export async function applyMigrations(p: Project, pending: MigrationRef[], opts: { timeoutMs?: number } = {}): Promise<ApplyResult> {
  if (p.session) return applyInSession(p, p.session, pending, opts);
  const result = await p.host.python([p.host.managePy, 'migrate', '--noinput', '--database', p.database], {
    label: 'Applying migrations',
    allowFailure: true,
    timeoutMs: opts.timeoutMs,
  });
  const after = await planMigrations(p, { lint: false });
  const stillPending = new Set(after.pending.map((m) => `${m.app}.${m.name}`));
  const applied = pending.filter((m) => !stillPending.has(`${m.app}.${m.name}`));
  if (result.exitCode === 0) return { ok: true, applied, state: after.state };
  const failed = pending.find((m) => stillPending.has(`${m.app}.${m.name}`));
  const lines = (result.stderr || result.stdout).trim().split('\n');
  return { ok: false, applied, state: after.state, failed, error: lines.at(-1) ?? `exit code ${result.exitCode}` };
}

/** The same `migrate --noinput` inside the session's Django (call_command), its output streamed. */
async function applyInSession(
  p: Project,
  session: MigrationSession,
  pending: MigrationRef[],
  opts: { timeoutMs?: number },
): Promise<ApplyResult> {
  core.info(`[command]manage.py migrate --noinput --database ${p.database} (in the migrate helper's Django)`);
  let answer;
  try {
    answer = await session.request({ cmd: 'apply' }, { label: 'Applying migrations', timeoutMs: opts.timeoutMs, stream: true });
  } catch (error) {
    if (!(error instanceof CommandError) || session.alive) throw error;
    // Stopped at apply-timeout, or died mid-apply: a failed migration, as when manage.py ran
    // on its own. Where the database is now comes from a fresh helper.
    const after = await planMigrations({ ...p, session: undefined }, { lint: false });
    const lines = error.stderrTail.split('\n');
    const why = lines[0]?.startsWith('timed out') ? lines[0] : (lines.at(-1) ?? `exit code ${error.exitCode}`);
    return outcome(pending, { ok: false, failure: why, pending: after.pending, state: after.state });
  }
  if (answer.error) {
    if (answer.trace) core.debug(answer.trace);
    throw new UserError(helperMessage(p, answer));
  }
  // `failure`, not `error`: `error` is the helper's own refusal, handled above.
  return outcome(pending, answer as unknown as ApplyAnswer);
}

interface ApplyAnswer {
  ok: boolean;
  failure: string | null;
  pending: MigrationRef[];
  state: MigrationState;
}

function outcome(pending: MigrationRef[], after: ApplyAnswer): ApplyResult {
  const stillPending = new Set(after.pending.map((m) => `${m.app}.${m.name}`));
  const applied = pending.filter((m) => !stillPending.has(`${m.app}.${m.name}`));
  if (after.ok) return { ok: true, applied, state: after.state };
  const failed = pending.find((m) => stillPending.has(`${m.app}.${m.name}`));
  return { ok: false, applied, state: after.state, failed, error: after.failure ?? 'migrate failed' };
}

/** Moves the database back to a recorded state (rollback's migrate-back); refuses irreversible steps. */
export async function migrateBackTo(
  p: Project,
  state: MigrationState,
  opts: { dryRun?: boolean } = {},
): Promise<{ steps: (MigrationRef & { backwards: boolean })[]; state?: MigrationState }> {
  return helper(p, { cmd: 'migrate-to', state, dry: Boolean(opts.dryRun) }, 'Migrating back');
}

export function stateText(state: MigrationState): string {
  return Object.entries(state)
    .map(([app, name]) => `${app}: ${name ?? '(none)'}`)
    .join(', ');
}
