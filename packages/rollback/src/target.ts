import { UserError } from '@slipway/toolkit/errors';
import { RELEASE_ID, type ReleaseRecord } from '@slipway/toolkit/releases';
import type { MigrationState } from '@slipway/toolkit/state';

/**
 * Which recorded release to go back to, from the release records of one environment (newest
 * first) and the `to` input — pure, so every refusal is unit-tested. Nothing here touches a
 * target or a database.
 */
export type TargetSpec = { kind: 'previous' } | { kind: 'id'; id: string } | { kind: 'sha'; sha: string } | { kind: 'image'; ref: string };

export const DATABASE_MODES = ['none', 'migrate-back', 'restore-backup'] as const;
export type DatabaseMode = (typeof DATABASE_MODES)[number];

const SHA = /^[0-9a-f]{7,40}$/i;
const IMAGE = /^[a-z0-9][a-z0-9._/:-]*(?:@sha256:[0-9a-f]{64})?$/;

export function parseTo(value: string): TargetSpec {
  const to = value.trim() || 'previous';
  if (to === 'previous') return { kind: 'previous' };
  if (RELEASE_ID.test(to)) return { kind: 'id', id: to };
  if (SHA.test(to)) return { kind: 'sha', sha: to.toLowerCase() };
  if (IMAGE.test(to) && /[/:@]/.test(to)) return { kind: 'image', ref: to };
  throw new UserError(
    `Input \`to\` must be previous, a release id (e.g. 20261122-023400-0123456-a1f), a git sha (7-40 hex) or an image reference; got ${JSON.stringify(value)}.`,
  );
}

export interface Resolution {
  /** The release serving now: the one rolled back. */
  current: ReleaseRecord;
  /** The release to serve again. */
  target: ReleaseRecord;
  /** Releases after the target up to and including the current one, oldest first. */
  undone: ReleaseRecord[];
}

export interface ResolveOptions {
  environment: string;
  provider: string;
  /** For an unknown id: the environment whose records hold it, if the store can tell. */
  findElsewhere?: (id: string) => string | undefined;
}

const served = (r: ReleaseRecord): boolean => r.outcome === 'success';

export function resolveTarget(records: ReleaseRecord[], spec: TargetSpec, o: ResolveOptions): Resolution {
  const mine = records.filter((r) => r.environment === o.environment);
  const current = mine.find(served);
  if (!current)
    throw new UserError(
      `No release of \`${o.environment}\` has served yet (no successful record in the release store): nothing to roll back.`,
    );
  if (current.provider !== o.provider) {
    throw new UserError(
      `Input \`provider\` is ${o.provider}, but ${o.environment} runs release ${current.id}, deployed with ${current.provider}: roll back with \`provider: ${current.provider}\`.`,
    );
  }
  const older = mine.filter((r) => served(r) && r !== current && isOlder(r, current));
  let target: ReleaseRecord | undefined;
  switch (spec.kind) {
    case 'previous':
      target = older[0];
      if (!target)
        throw new UserError(`No earlier release of \`${o.environment}\` to roll back to: ${current.id} is the only one that served.`);
      break;
    case 'id': {
      target = records.find((r) => r.id === spec.id);
      const elsewhere =
        target && target.environment !== o.environment ? target.environment : target ? undefined : o.findElsewhere?.(spec.id);
      if (elsewhere) {
        throw new UserError(
          `Input \`to\`: release ${spec.id} is a record of environment \`${elsewhere}\`, not \`${o.environment}\`; nothing was changed.`,
        );
      }
      if (!target)
        throw new UserError(`Input \`to\`: no release ${spec.id} in the records of \`${o.environment}\` (newest: ${known(mine)}).`);
      break;
    }
    case 'sha':
      target = [current, ...older].find((r) => r.gitSha.toLowerCase().startsWith(spec.sha));
      if (!target) throw new UserError(`Input \`to\`: no release of \`${o.environment}\` that served was built from commit ${spec.sha}.`);
      break;
    case 'image':
      target = [current, ...older].find((r) => sameImage(r, spec.ref));
      if (!target) throw new UserError(`Input \`to\`: no release of \`${o.environment}\` that served ran image ${spec.ref}.`);
      break;
  }
  if (target.id === current.id)
    throw new UserError(`Input \`to\`: ${target.id} is the release serving ${o.environment} now; nothing to roll back.`);
  if (!served(target))
    throw new UserError(`Input \`to\`: release ${target.id} ended ${target.outcome}; only a release that served can serve again.`);
  if (target.provider !== o.provider) {
    throw new UserError(
      `Input \`provider\` is ${o.provider}, but release ${target.id} was deployed with ${target.provider}; nothing was changed.`,
    );
  }
  const undone = mine.filter((r) => served(r) && isOlder(target, r) && !isOlder(current, r)).reverse();
  return { current, target, undone };
}

function isOlder(a: ReleaseRecord, b: ReleaseRecord): boolean {
  return a.createdAt < b.createdAt || (a.createdAt === b.createdAt && a.id < b.id);
}

function known(records: ReleaseRecord[]): string {
  return (
    records
      .slice(0, 5)
      .map((r) => r.id)
      .join(', ') || 'none'
  );
}

function sameImage(r: ReleaseRecord, ref: string): boolean {
  const digest = /@(sha256:[0-9a-f]{64})$/.exec(ref)?.[1];
  if (digest) return r.imageDigest === digest || r.image.endsWith(`@${digest}`);
  return r.image === ref;
}

/** The migration state the target served with: its own record, else what the next release found. */
export function targetState(res: Resolution): MigrationState | null {
  return res.target.migrations?.after ?? res.undone.find((r) => r.migrations?.before)?.migrations?.before ?? null;
}

/** The database state the current release recorded. */
export function recordedState(res: Resolution): MigrationState | null {
  return res.current.migrations?.after ?? null;
}

/** `database` left empty: migrate back when the undone releases moved the schema, else none. */
export function defaultDatabaseMode(res: Resolution): DatabaseMode {
  const to = targetState(res);
  const now = recordedState(res);
  const applied = res.undone.some((r) => (r.migrations?.applied.length ?? 0) > 0);
  if (applied) return 'migrate-back';
  if (to && now && !sameState(to, now)) return 'migrate-back';
  return 'none';
}

export function sameState(a: MigrationState, b: MigrationState): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((k) => (a[k] ?? null) === (b[k] ?? null));
}

/**
 * The backup that holds the database as the target left it: the oldest undone release that
 * recorded one (taken just before that release changed the schema).
 */
export function recordedBackup(res: Resolution): { file: string; by: ReleaseRecord } | undefined {
  const by = res.undone.find((r) => r.backup);
  return by?.backup ? { file: by.backup, by } : undefined;
}
