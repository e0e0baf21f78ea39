import {
  applyMigrations,
  closeSession,
  imageHost,
  openSession,
  planMigrations,
  withMigrationLock,
  type Project,
} from '@slipway/migrate/lib';
import { UserError } from '@slipway/toolkit/errors';
import type { ReleaseMigrations } from '@slipway/toolkit/releases';
import { runnerTemp } from '@slipway/toolkit/runner';
import { optionalState } from '@slipway/toolkit/state';

const LOCK_TIMEOUT_MS = 300_000;
/** Starting the image's Django once (docker run, settings, database connection). */
const SESSION_START_TIMEOUT_MS = 120_000;

/**
 * `migrate: true`: the migrate action's logic, once per deploy (not per host), before traffic
 * moves, in the release's own image with the target's environment (docker on the runner,
 * host network). A failed migration stops the deploy; the previous release keeps serving.
 * One helper container (one Django start-up) serves the plan, the lock, the apply and the state
 * after it; the lock lives on its connection, so a container that dies releases it.
 */
export async function migrateOnce(image: string, env: Map<string, string>): Promise<ReleaseMigrations> {
  const host = imageHost({ image, env: Object.fromEntries(env), tempDir: runnerTemp(), localPython: 'python3' });
  const project: Project = { host, database: 'default' };
  try {
    await openSession(project, { timeoutMs: SESSION_START_TIMEOUT_MS });
    const plan = await planMigrations(project, { lint: false });
    if (plan.pending.length === 0) return { before: plan.state, after: plan.state, applied: [] };
    const result = await withMigrationLock(project, LOCK_TIMEOUT_MS, () => applyMigrations(project, plan.pending));
    const applied = result.applied.map((m) => `${m.app}.${m.name}`);
    if (!result.ok) {
      const failed = result.failed ? `${result.failed.app}.${result.failed.name}` : 'a migration';
      throw new UserError(
        `Migration ${failed} failed (${result.error ?? 'no message'}); applied before it: ${applied.join(', ') || 'none'}. Traffic was not moved.`,
      );
    }
    return { before: plan.state, after: result.state, applied };
  } finally {
    await closeSession(project);
    host.dispose();
  }
}

/** What the migrate action recorded earlier in this job, if it ran. */
export function migrationsFromState(): { migrations: ReleaseMigrations | null; backup: string | null } {
  const state = optionalState('migrate');
  if (!state) return { migrations: null, backup: null };
  return {
    migrations: { before: state.previousState, after: state.currentState, applied: state.applied },
    backup: state.backup ?? null,
  };
}
