import * as fs from 'node:fs';
import * as path from 'node:path';
import * as core from '@actions/core';
import { ensureWritableDir, requireBackupTools, type Backup } from '@slipway/toolkit/db-backup';
import { endpoint, waitForTcp } from '@slipway/toolkit/db-clients';
import { findManagePy } from '@slipway/toolkit/django';
import { UserError } from '@slipway/toolkit/errors';
import { annotate, Phases } from '@slipway/toolkit/log';
import { runnerTemp, workspaceDir } from '@slipway/toolkit/runner';
import { looksSecret, maskSecret, maskUrl } from '@slipway/toolkit/secrets';
import { optionalState, requireState, saveState } from '@slipway/toolkit/state';
import { writeSummary, type SummarySection } from '@slipway/toolkit/summary';
import { getInputs, wantsBackup, type Inputs } from './context';
import { imageHost, runnerHost, type MigrationHost } from './host';
import {
  applyMigrations,
  backupDatabase,
  closeSession,
  databaseSettings,
  formatFinding,
  hasApp,
  lintPlan,
  openSession,
  planMigrations,
  stateText,
  withMigrationLock,
  type Finding,
  type Plan,
  type Project,
  type ProjectInfo,
} from './lib';

export async function main(): Promise<void> {
  const inputs = getInputs();
  const root = workspaceDir();
  const phases = new Phases();
  for (const [key, value] of Object.entries(inputs.env)) if (looksSecret(key)) maskSecret(value);
  maskUrl(process.env.DATABASE_URL);
  maskUrl(inputs.env.DATABASE_URL);

  const host = inputs.image ? makeImageHost(inputs) : makeRunnerHost(inputs, root);
  try {
    await run(inputs, host.host, phases, host.settings, root);
  } finally {
    host.dispose();
  }
}

interface Hosted {
  host: MigrationHost;
  /** Where the settings come from when this side knows (the helper reports the rest). */
  settings: { module?: string; from?: string };
  dispose(): void;
}

/** The runner's venv and project, as setup-django found them. */
function makeRunnerHost(inputs: Inputs, root: string): Hosted {
  const setup = requireState('setupDjango', 'migrate');
  const managePy = inputs.workingDirectory ? findManagePy(root, inputs.workingDirectory) : setup.managePy;
  if (!fs.existsSync(managePy)) {
    throw new UserError(
      `No manage.py at ${path.relative(root, managePy) || managePy}: set \`working-directory\` to the folder that holds it.`,
    );
  }
  const host = runnerHost({ python: setup.pythonPath, managePy, settingsModule: setup.settingsModule, env: inputs.env });
  return { host, settings: { module: setup.settingsModule, from: 'setup-django' }, dispose: () => host.dispose() };
}

/**
 * Everything runs in the image, so nothing of the runner's Python (setup-django) is needed: the
 * project is the image's WORKDIR or `working-directory` inside the image, and the settings are
 * DJANGO_SETTINGS_MODULE from the env input or the job (setup-django exports it), else the image's
 * own ENV, else manage.py's default.
 */
function makeImageHost(inputs: Inputs): Hosted {
  // Into the container: the env input, plus DATABASE_URL and DJANGO_* from the job's environment.
  const passed = Object.fromEntries(
    Object.entries(process.env).filter(([k, v]) => v !== undefined && (k === 'DATABASE_URL' || k.startsWith('DJANGO_'))) as [
      string,
      string,
    ][],
  );
  const from = inputs.env.DJANGO_SETTINGS_MODULE
    ? 'the `env` input'
    : passed.DJANGO_SETTINGS_MODULE
      ? "the job's environment (DJANGO_SETTINGS_MODULE; setup-django exports it)"
      : undefined;
  const host = imageHost({
    image: inputs.image,
    projectDir: inputs.workingDirectory || undefined,
    env: { ...passed, ...inputs.env },
    tempDir: runnerTemp(),
    // Only for SQLite copies on the runner: any Python 3 does.
    localPython: optionalState('setupDjango')?.pythonPath ?? 'python3',
  });
  return { host, settings: { from }, dispose: () => host.dispose() };
}

async function run(inputs: Inputs, host: MigrationHost, phases: Phases, settings: Hosted['settings'], root: string): Promise<void> {
  const p: Project = { host, database: inputs.database, settingsModule: settings.module };
  try {
    await runInSession(inputs, p, phases, root, settings);
  } finally {
    await closeSession(p);
  }
}

/**
 * Every Python step (settings, plan and lint, lock, re-plan, apply, state) is a request to one
 * helper process started here, so Django starts once; backups run beside it under its lock.
 */
async function runInSession(inputs: Inputs, p: Project, phases: Phases, root: string, settings: Hosted['settings']): Promise<void> {
  const db = await phases.phase('Connecting to the database', async () => {
    const project = await openSession(p, { timeoutMs: inputs.timeoutMs + 60_000 });
    if (project) logProject(inputs, p.host, project, settings);
    const db = await databaseSettings(p);
    core.info(`Database: ${db.vendor} ${db.vendor === 'sqlite' ? db.name : `${p.where}/${db.name}`} (alias ${db.alias})`);
    if (db.vendor !== 'sqlite') {
      const { host: h, port } = endpoint(db);
      await waitForTcp(h, port, inputs.timeoutMs);
    }
    return db;
  });

  const plan = await phases.phase('Planning and linting', async () => {
    const plan = await planMigrations(p, { lint: true, timeoutMs: inputs.timeoutMs + 60_000 });
    logPlan(plan);
    reportFindings(plan.findings, lintPlan(plan.findings, inputs.failOn).blocking, root);
    return plan;
  });
  const planJson = JSON.stringify(plan.pending);
  core.setOutput('plan', planJson);
  core.setOutput('findings', JSON.stringify(plan.findings));
  core.setOutput('previous-state', JSON.stringify(plan.state));
  const { blocking } = lintPlan(plan.findings, inputs.failOn);
  const sections: SummarySection[] = [];
  const rows: [string, string][] = [
    ['Mode', inputs.mode],
    ['Database', `${db.vendor} (${db.alias})`],
    ['Pending', String(plan.pending.length)],
    ['Lint findings', `${plan.findings.length} (${blocking.length} blocking at fail-on ${inputs.failOn})`],
  ];
  const finish = async (applied: string[], current: Plan['state'], backup?: Backup): Promise<void> => {
    core.setOutput('applied', JSON.stringify(applied));
    core.setOutput('current-state', JSON.stringify(current));
    core.setOutput('backup', backup?.file ?? '');
    saveState('migrate', { previousState: plan.state, currentState: current, applied, ...(backup ? { backup: backup.file } : {}) });
    await summary(rows, phases, plan, applied, sections);
  };

  if (inputs.mode === 'plan') return finish([], plan.state);
  if (inputs.mode === 'check' && plan.pending.length) {
    await finish([], plan.state);
    throw new UserError(
      `${plan.pending.length} migration(s) pending: ${plan.pending.map((m) => `${m.app}.${m.name}`).join(', ')} (${blocking.length} blocking lint finding(s)).`,
    );
  }
  if (blocking.length) {
    await finish([], plan.state);
    throw new UserError(
      `${blocking.length} lint finding(s) at or above \`fail-on: ${inputs.failOn}\` (first: ${formatFinding(blocking[0]!)}); nothing was applied. Fix the migration, or accept it with slipway_allow = ["${blocking[0]!.rule}"] on its Migration class.`,
    );
  }
  if (inputs.mode === 'check') return finish([], plan.state);
  if (!plan.pending.length && inputs.backup !== 'true') {
    core.info('No migrations to apply.');
    return finish([], plan.state);
  }

  const backingUp = wantsBackup(inputs, plan.pending.length);
  const useDbbackup = backingUp && !inputs.image && (await hasApp(p, 'dbbackup'));
  if (backingUp) {
    ensureWritableDir(inputs.backupDir, 'backup-dir');
    if (!useDbbackup) requireBackupTools(db);
  }

  const outcome = await withMigrationLock(p, inputs.lockTimeoutMs, async () => {
    // Another run may have applied some while we waited: plan again under the lock.
    const fresh = await phases.phase('Re-checking the plan under the lock', async () => {
      const now = await planMigrations(p, { lint: false });
      // The same pending list gives the same findings; another run's progress can change them.
      const same = JSON.stringify(now.pending) === planJson;
      return { ...now, findings: same ? plan.findings : (await planMigrations(p, { lint: true })).findings };
    });
    const { blocking: late } = lintPlan(fresh.findings, inputs.failOn);
    if (late.length)
      throw new UserError(`Lint finding at or above \`fail-on\` after taking the lock: ${formatFinding(late[0]!)}; nothing was applied.`);
    if (!fresh.pending.length && inputs.backup !== 'true')
      return { backup: undefined, result: { ok: true, applied: [], state: fresh.state } };
    const backup = backingUp
      ? await phases.phase('Backing up', async () => {
          const b = await backupDatabase(p, db, { dir: inputs.backupDir, useDbbackup });
          core.info(`Backup: ${b.file} (${b.bytes} bytes, ${b.tool})`);
          core.setOutput('backup', b.file);
          return b;
        })
      : undefined;
    if (!fresh.pending.length) return { backup, result: { ok: true, applied: [], state: fresh.state } };
    const result = await phases.phase('Applying migrations', () => applyMigrations(p, fresh.pending, { timeoutMs: inputs.applyTimeoutMs }));
    return { backup, result };
  });

  const { backup, result } = outcome;
  if (backup) {
    rows.push(['Backup', `${backup.file} (${backup.bytes} bytes, ${backup.tool})`]);
    await uploadBackup(backup, inputs, rows);
  }
  const applied = result.applied.map((m) => `${m.app}.${m.name}`);
  if (!('failed' in result) || result.ok) {
    core.info(`Applied ${applied.length}: ${applied.join(', ') || '(none)'}`);
    return finish(applied, result.state, backup);
  }
  await finish(applied, result.state, backup);
  const failed = result.failed ? `${result.failed.app}.${result.failed.name}` : 'a migration';
  const left =
    db.vendor === 'mysql'
      ? 'MySQL/MariaDB cannot roll back schema changes, so the failed migration may be partly applied'
      : 'the failed migration was rolled back (transactional DDL) unless it is atomic = False';
  throw new UserError(
    `Migration ${failed} failed (${result.error}). The database is at ${stateText(result.state)}; ${left}.${backup ? ` Backup from just before: ${backup.file}.` : ''}`,
  );
}

/** Where the project and its settings were found: the image has no setup-django to say so. */
function logProject(inputs: Inputs, host: MigrationHost, project: ProjectInfo, settings: Hosted['settings']): void {
  const where =
    host.kind === 'image'
      ? `${project.projectDir} in the image (${inputs.workingDirectory ? `\`working-directory: ${inputs.workingDirectory}\`` : 'its WORKDIR'})`
      : project.projectDir;
  const from =
    project.settingsFrom === 'manage.py'
      ? `the default ${path.posix.join(project.projectDir, 'manage.py')} sets (DJANGO_SETTINGS_MODULE unset)`
      : (settings.from ?? "the image's environment (ENV DJANGO_SETTINGS_MODULE)");
  core.info(`Project: ${where}${project.managePy ? '' : ' (no manage.py there)'}`);
  core.info(`Settings: ${project.settingsModule}, from ${from}`);
}

function logPlan(plan: Plan): void {
  if (!plan.pending.length) core.info('No pending migrations.');
  else {
    core.info(`Pending migrations (${plan.pending.length}), in order:`);
    for (const m of plan.pending) core.info(`  ${m.app}.${m.name}`);
  }
  core.info(`Applied state: ${stateText(plan.state)}`);
}

/** Annotations: blocking findings as errors, the rest as warnings, accepted ones as notices. */
function reportFindings(findings: Finding[], blocking: Finding[], root: string): void {
  for (const f of findings) {
    const file = f.file && f.file.startsWith(root) ? path.relative(root, f.file) : undefined;
    const level = f.allowed ? 'notice' : blocking.includes(f) ? 'error' : 'warning';
    annotate(level, formatFinding(f), { file, line: f.line ?? undefined, title: `migration lint: ${f.rule}` });
  }
}

/**
 * The artifact's name: unique per job of a run attempt (a CD workflow migrates staging and then
 * production in two jobs of one run, and the service refuses a second artifact of a name in a
 * run), and per database alias when it is not `default`.
 */
export function backupArtifactName(env: NodeJS.ProcessEnv, database: string): string {
  const parts = [env.GITHUB_RUN_ID || 'local', env.GITHUB_RUN_ATTEMPT || '1', env.GITHUB_JOB, database === 'default' ? '' : database];
  return `slipway-db-backup-${parts.filter(Boolean).join('-')}`;
}

/**
 * Uploads the backup as a workflow artifact. It runs after the migrations (and after a failed
 * one, to keep the backup): a refused or failed upload is a warning naming where the backup is,
 * never a failed step, so the outputs and the state for deploy and rollback are still recorded.
 */
async function uploadBackup(backup: Backup, inputs: Inputs, rows: [string, string][]): Promise<void> {
  // The artifact service exists only on a GitHub runner; elsewhere the backup stays in backup-dir.
  if (!process.env.ACTIONS_RUNTIME_TOKEN) {
    core.info('No artifact service here (ACTIONS_RUNTIME_TOKEN unset): the backup stays in backup-dir.');
    rows.push(['Backup artifact', 'not uploaded (no artifact service)']);
    return;
  }
  const name = backupArtifactName(process.env, inputs.database);
  // The repository's retention limit (the runner sets it) caps the days, as the client does.
  const limit = Number(process.env.GITHUB_RETENTION_DAYS);
  const days = limit > 0 ? Math.min(inputs.backupRetentionDays, limit) : inputs.backupRetentionDays;
  try {
    const { DefaultArtifactClient } = await import('@actions/artifact');
    const res = await new DefaultArtifactClient().uploadArtifact(name, [backup.file], path.dirname(backup.file), {
      retentionDays: inputs.backupRetentionDays,
    });
    rows.push(['Backup artifact', `${name} (id ${res.id ?? '?'}, ${days} days)`]);
  } catch (error) {
    const reason = (error instanceof Error ? error.message : String(error)).split('\n')[0]!.trim();
    core.warning(`Backup artifact ${name} not uploaded (${reason}): the backup is only on this runner, at ${backup.file}.`);
    rows.push(['Backup artifact', `not uploaded: ${reason}`]);
  }
}

async function summary(rows: [string, string][], phases: Phases, plan: Plan, applied: string[], sections: SummarySection[]): Promise<void> {
  await writeSummary('migrate', [
    { heading: '', rows: [...rows, ['Applied', applied.join(', ') || 'none'], ...phases.rows()] },
    ...(plan.pending.length
      ? [{ heading: 'Plan', table: { header: ['App', 'Migration'], rows: plan.pending.map((m) => [m.app, m.name]) } }]
      : []),
    ...(plan.findings.length
      ? [
          {
            heading: 'Lint findings',
            table: {
              header: ['Migration', 'Operation', 'Rule', 'Severity', 'Why'],
              rows: plan.findings.map((f) => [
                f.migration,
                f.operation,
                f.rule,
                f.allowed ? `${f.severity} (accepted)` : f.severity,
                f.reason,
              ]),
            },
          },
        ]
      : []),
    ...sections,
  ]);
}
