import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from './errors';
import type { MigrationState } from './state';

/**
 * The record of one release, the same for every provider and every store: what was deployed
 * (git sha and ref, image digest), where (environment, provider and its own release id, URL),
 * with which database state, by whom, when, and how it ended. Rollback reads these.
 * docs/deploy.md describes the contract.
 */
export type ReleaseOutcome = 'in_progress' | 'success' | 'failure' | 'rolled-back';

export interface ReleaseMigrations {
  before: MigrationState | null;
  after: MigrationState | null;
  applied: string[];
}

export interface ReleaseRecord {
  id: string;
  environment: string;
  provider: string;
  providerReleaseId: string;
  gitSha: string;
  gitRef: string;
  image: string;
  imageDigest: string | null;
  url: string;
  migrations: ReleaseMigrations | null;
  backup: string | null;
  actor: string;
  createdAt: string;
  outcome: ReleaseOutcome;
  rollbackOf: string | null;
  details?: Record<string, unknown>;
}

export interface ReleaseStore {
  readonly kind: 'github' | 'directory';
  /** Records a release that has started (outcome in_progress). */
  begin(record: ReleaseRecord): Promise<void>;
  /** Records how it ended (outcome, url, provider release id). */
  finish(record: ReleaseRecord): Promise<void>;
  /** Every release of an environment, newest first, with the outcome last reported. */
  list(environment: string): Promise<ReleaseRecord[]>;
  /** The newest successful release of an environment. */
  current(environment: string): Promise<ReleaseRecord | undefined>;
}

/** `20261122-023400-0123456-a1f`: UTC time, short sha, random; sorts by time; safe in names. */
export function newReleaseId(gitSha: string, now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/\.\d+Z$/, '')
    .replace(/[-:]/g, '')
    .replace('T', '-');
  const sha = (gitSha.match(/^[0-9a-f]+/i)?.[0] ?? 'nosha').slice(0, 7).toLowerCase();
  return `${stamp}-${sha}-${crypto.randomBytes(2).toString('hex').slice(0, 3)}`;
}

export const RELEASE_ID = /^[0-9]{8}-[0-9]{6}-[0-9a-z]{1,7}-[0-9a-f]{3}$/;

const ENVIRONMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function checkEnvironmentName(name: string, input = 'environment'): string {
  if (!ENVIRONMENT.test(name)) {
    throw new UserError(`Input \`${input}\` must be letters, digits, . _ - (up to 128); got ${JSON.stringify(name)}.`);
  }
  return name;
}

/** Newest first by createdAt, then id. */
export function sortNewestFirst(records: ReleaseRecord[]): ReleaseRecord[] {
  return [...records].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
}

/** One JSON file per record: <dir>/<environment>/<id>.json, written atomically. */
export class DirectoryStore implements ReleaseStore {
  readonly kind = 'directory' as const;

  constructor(readonly dir: string) {}

  async begin(record: ReleaseRecord): Promise<void> {
    this.write(record);
  }

  async finish(record: ReleaseRecord): Promise<void> {
    this.write(record);
  }

  async list(environment: string): Promise<ReleaseRecord[]> {
    const dir = path.join(this.dir, checkEnvironmentName(environment));
    if (!fs.existsSync(dir)) return [];
    const records: ReleaseRecord[] = [];
    for (const name of fs.readdirSync(dir)) {
      if (!name.endsWith('.json')) continue;
      try {
        records.push(JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as ReleaseRecord);
      } catch {
        throw new UserError(`Release record ${path.join(dir, name)} is not valid JSON.`);
      }
    }
    return sortNewestFirst(records);
  }

  async current(environment: string): Promise<ReleaseRecord | undefined> {
    return (await this.list(environment)).find((r) => r.outcome === 'success');
  }

  private write(record: ReleaseRecord): void {
    const dir = path.join(this.dir, checkEnvironmentName(record.environment));
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${record.id}.json`);
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`);
    fs.renameSync(tmp, file);
  }
}
