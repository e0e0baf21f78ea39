import { imageHost } from '@slipway/migrate/lib';
import { migrateRelease } from '@slipway/migrate/release';
import type { ReleaseMigrations } from '@slipway/toolkit/releases';
import { runnerTemp } from '@slipway/toolkit/runner';
import { optionalState } from '@slipway/toolkit/state';

/**
 * `migrate: true` for targets that run the image: the migrate action's logic (migrateRelease),
 * once per deploy (not per host), before traffic moves, in the release's own image with the
 * target's environment (docker on the runner, host network). A failed migration stops the
 * deploy; the previous release keeps serving. One helper container serves the plan, the lock,
 * the apply and the state after it; the lock lives on its connection, so a container that dies
 * releases it. (ssh release-dir migrates on the target itself: packages/targets.)
 */
export async function migrateOnce(image: string, env: Map<string, string>): Promise<ReleaseMigrations> {
  const host = imageHost({ image, env: Object.fromEntries(env), tempDir: runnerTemp(), localPython: 'python3' });
  try {
    return await migrateRelease(host);
  } finally {
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
