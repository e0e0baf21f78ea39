import type { MigrationHost } from '@slipway/migrate/lib';
import { UserError } from '@slipway/toolkit/errors';
import type { HealthResult } from '@slipway/toolkit/health';
import type { ReleaseMigrations, ReleaseRecord } from '@slipway/toolkit/releases';

/**
 * The contract every deploy target keeps (docs/deploy.md): deploy an image with its environment,
 * health-gated, to a release id and a URL; make a recorded release serve again; say what serves
 * now. The deploy and rollback actions only ever talk to targets through this interface.
 */
export const PROVIDERS = ['ssh', 'heroku', 'aws-eb', 'cloud-run'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

export interface HealthCheck {
  /** A path on the release (`/healthz`) or a full URL. */
  path: string;
  expectedStatus: number;
  timeoutMs: number;
  /** Sent as the Host header when set (name-based routing, ALLOWED_HOSTS). */
  hostHeader?: string;
}

export interface DeployContext {
  releaseId: string;
  environment: string;
  appName: string;
  /** name@sha256:… when the digest is known, else the reference given. */
  image: string;
  imageDigest: string | null;
  /** Application environment; every secret value is already masked. */
  env: Map<string, string>;
  health: HealthCheck;
  keepReleases: number;
  rollbackOnFailure: boolean;
  /** `migrate: true`, for a provider that migrates on the target itself (`migratesOnTarget`). */
  migrate?: boolean;
  /**
   * Called by a provider that migrates on the target, once the migrations ran (or none were
   * pending) and before any traffic moves: the release record begins here with them (GitHub
   * Deployments keep the payload a deployment is created with). Also returned in DeployResult.
   */
  migrated?: (migrations: ReleaseMigrations) => Promise<void>;
  /** The release serving before this deploy, from the release store. */
  previous?: ReleaseRecord;
  /** Progress lines for the log (providers never print secrets). */
  log: (line: string) => void;
}

export interface ActivateContext {
  environment: string;
  appName: string;
  health: HealthCheck;
  log: (line: string) => void;
}

export interface DeployResult {
  providerReleaseId: string;
  url: string;
  /** Set when the release went out but was rolled back (several hosts, rollback-on-failure). */
  rolledBack?: boolean;
  health?: HealthResult;
  /** Provider specifics kept in the release record (hosts, slot, region…). Never secrets. */
  details?: Record<string, unknown>;
  /** The migration state before and after, and what was applied, when the provider migrated on the target. */
  migrations?: ReleaseMigrations;
}

export interface Provider {
  readonly name: ProviderName;
  /** Runs `migrate: true` itself, on the target, before traffic moves (ssh release-dir); else deploy migrates in the image. */
  readonly migratesOnTarget?: boolean;
  /** Checks credentials and settings without side effects; throws UserError naming the input. */
  validate(): Promise<void>;
  /**
   * The provider release id a deploy of `releaseId` will get, when the provider names it itself
   * (so the release record can carry it from the start: GitHub Deployments keep the first payload).
   */
  plannedReleaseId?(releaseId: string): string;
  /** The provider release id serving now, read from the target itself. */
  currentRelease(): Promise<string | undefined>;
  /** Health-gated deploy. On failure the previous release keeps serving, and it throws. */
  deploy(ctx: DeployContext): Promise<DeployResult>;
  /** Serves a recorded release again (rollback). */
  activate(record: ReleaseRecord, ctx: ActivateContext): Promise<DeployResult>;
  /**
   * A recorded release's own Python against the target's database, for rollback's database steps,
   * when the provider keeps the release where only it can run it (ssh release-dir: the release
   * dir on the first host, with its env file). Without it, rollback runs the release's image on
   * the runner. Refuses (UserError) a release that is no longer kept.
   */
  migrationHost?(record: ReleaseRecord): Promise<{ host: MigrationHost; close(): Promise<void> }>;
  /** Frees connections and temporary files. Always called, also after a failure. */
  close(): Promise<void>;
}

/** A health check that never passed: the new release got no traffic. */
export class HealthCheckError extends UserError {
  override name = 'HealthCheckError';

  constructor(
    readonly where: string,
    readonly result: HealthResult,
    expected: number,
  ) {
    super(
      `Health check of ${where} failed after ${result.attempts} attempt(s) in ${(result.elapsedMs / 1000).toFixed(1)} s ` +
        `(expected ${expected}; last: ${result.lastProblem ?? 'no answer'}). The previous release keeps serving.`,
    );
  }
}
