import * as core from '@actions/core';
import { UserError } from '@slipway/toolkit/errors';
import type { ReleaseMigrations } from '@slipway/toolkit/releases';
import type { MigrationHost } from './host';
import { applyMigrations, closeSession, openSession, planMigrations, withMigrationLock, type Project } from './lib';

const LOCK_TIMEOUT_MS = 300_000;
/** Starting the release's Django once (a container or a remote Python, settings, database connection). */
const SESSION_START_TIMEOUT_MS = 120_000;

/**
 * Deploy's `migrate: true`, wherever the release's Python runs (its image on the runner, its
 * release dir on an ssh target): one helper session (one Django start-up) plans; when something
 * is pending it takes the migration lock on its own connection, applies, and reads the state
 * after. A failed migration is one line naming it; `where` names the host in it. The session
 * ends whatever happened (its lock with it); the caller disposes of the host.
 */
export async function migrateRelease(host: MigrationHost, opts: { where?: string } = {}): Promise<ReleaseMigrations> {
  const project: Project = { host, database: 'default' };
  try {
    await openSession(project, { timeoutMs: SESSION_START_TIMEOUT_MS });
    const plan = await planMigrations(project, { lint: false });
    if (plan.pending.length === 0) return { before: plan.state, after: plan.state, applied: [] };
    core.info(`Pending: ${plan.pending.map((m) => `${m.app}.${m.name}`).join(', ')}`);
    const result = await withMigrationLock(project, LOCK_TIMEOUT_MS, () => applyMigrations(project, plan.pending));
    const applied = result.applied.map((m) => `${m.app}.${m.name}`);
    if (!result.ok) {
      const failed = result.failed ? `${result.failed.app}.${result.failed.name}` : 'a migration';
      throw new UserError(
        `Migration ${failed} failed${opts.where ? ` on ${opts.where}` : ''} (${result.error ?? 'no message'}); applied before it: ${applied.join(', ') || 'none'}. Traffic was not moved.`,
      );
    }
    return { before: plan.state, after: result.state, applied };
  } finally {
    await closeSession(project);
  }
}
