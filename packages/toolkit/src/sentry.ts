import * as core from '@actions/core';
import { UserError } from './errors';
import { getString } from './inputs';
import type { ReleaseRecord } from './releases';
import { maskSecret } from './secrets';

/**
 * Sentry releases (docs.sentry.io/api/releases/): create the release for the deployed version,
 * associate its commits, record a deploy for the environment, finalize it. Works with sentry.io
 * and self-hosted Sentry (`sentry-url`). Configured by `sentry-auth-token` (or SENTRY_AUTH_TOKEN),
 * `sentry-org`, `sentry-project` (or SENTRY_ORG / SENTRY_PROJECT); nothing happens without a token.
 */

export interface SentrySettings {
  url: string;
  token: string;
  org: string;
  projects: string[];
  /** `sentry-release`: the version the app reports to Sentry; default the git sha. */
  release?: string;
}

export interface SentryRelease {
  /** The release version, usually the git sha. */
  version: string;
  environment: string;
  /** owner/repo as Sentry's repository integration names it. */
  repository?: string;
  commit?: string;
  previousCommit?: string;
  /** Deploy name and URL shown in Sentry. */
  deployName?: string;
  deployUrl?: string;
  startedAt?: Date;
  finishedAt?: Date;
}

const SLUG = /^[a-z0-9][a-z0-9_-]{0,49}$/i;

/** Reads and validates the Sentry inputs; undefined when no token is configured. */
export function readSentrySettings(env: NodeJS.ProcessEnv = process.env): SentrySettings | undefined {
  const token = getString('sentry-auth-token') || env.SENTRY_AUTH_TOKEN?.trim() || '';
  if (!token) return undefined;
  maskSecret(token);
  const org = getString('sentry-org') || env.SENTRY_ORG?.trim() || '';
  const projectText = getString('sentry-project') || env.SENTRY_PROJECT?.trim() || '';
  if (!org) throw new UserError('Input `sentry-org` is required with `sentry-auth-token` (the organization slug, or set SENTRY_ORG).');
  if (!projectText)
    throw new UserError('Input `sentry-project` is required with `sentry-auth-token` (project slugs, or set SENTRY_PROJECT).');
  if (!SLUG.test(org)) throw new UserError(`Input \`sentry-org\`: \`${org}\` is not a Sentry organization slug.`);
  const projects = projectText.split(/[\s,]+/).filter(Boolean);
  for (const p of projects) if (!SLUG.test(p)) throw new UserError(`Input \`sentry-project\`: \`${p}\` is not a Sentry project slug.`);
  const rawUrl = getString('sentry-url') || env.SENTRY_URL?.trim() || 'https://sentry.io';
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new UserError(`Input \`sentry-url\`: \`${rawUrl}\` is not a URL (e.g. https://sentry.example.com).`);
  }
  if (!/^https?:$/.test(url.protocol)) throw new UserError('Input `sentry-url` must be an http(s) URL.');
  const release = getString('sentry-release') || undefined;
  if (release && (release.length > 200 || /[\n/\\]/.test(release) || release === '.' || release === '..')) {
    throw new UserError('Input `sentry-release` must be up to 200 characters, without slashes or newlines.');
  }
  return { url: url.toString().replace(/\/+$/, ''), token, org, projects, ...(release ? { release } : {}) };
}

export class SentryClient {
  constructor(private readonly s: SentrySettings) {}

  private async call(method: string, path: string, body: unknown, what: string): Promise<unknown> {
    const url = `${this.s.url}/api/0/organizations/${encodeURIComponent(this.s.org)}${path}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { Authorization: `Bearer ${this.s.token}`, 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (error) {
      const cause = (error as { cause?: { message?: string } }).cause?.message ?? (error as Error).message;
      throw new UserError(`Sentry: ${what}: could not reach ${new URL(url).host} (${cause}).`);
    }
    const text = await res.text();
    if (!res.ok) {
      let detail = text.slice(0, 300);
      try {
        const parsed = JSON.parse(text) as { detail?: unknown };
        detail = typeof parsed.detail === 'string' ? parsed.detail : JSON.stringify(parsed).slice(0, 300);
      } catch {
        // not JSON
      }
      throw new UserError(`Sentry: ${what}: HTTP ${res.status} — ${detail}`);
    }
    return text ? (JSON.parse(text) as unknown) : undefined;
  }

  private releasePath(version: string): string {
    return `/releases/${encodeURIComponent(version)}/`;
  }

  createRelease(r: SentryRelease): Promise<unknown> {
    return this.call('POST', '/releases/', { version: r.version, projects: this.s.projects }, `create release ${r.version}`);
  }

  setCommits(r: SentryRelease): Promise<unknown> {
    const ref: Record<string, string> = { repository: r.repository!, commit: r.commit! };
    if (r.previousCommit) ref.previousCommit = r.previousCommit;
    return this.call('PUT', this.releasePath(r.version), { refs: [ref] }, 'associate commits');
  }

  recordDeploy(r: SentryRelease): Promise<unknown> {
    const body: Record<string, string> = { environment: r.environment };
    if (r.deployName) body.name = r.deployName;
    if (r.deployUrl) body.url = r.deployUrl;
    if (r.startedAt) body.dateStarted = r.startedAt.toISOString();
    if (r.finishedAt) body.dateFinished = r.finishedAt.toISOString();
    return this.call('POST', `${this.releasePath(r.version)}deploys/`, body, `record deploy to ${r.environment}`);
  }

  finalize(r: SentryRelease): Promise<unknown> {
    return this.call('PUT', this.releasePath(r.version), { dateReleased: (r.finishedAt ?? new Date()).toISOString() }, 'finalize release');
  }
}

/**
 * The four steps for a deploy. Commits are associated only when repository and commit are known;
 * a repository Sentry has no integration for is a warning, not a failed deploy.
 */
export async function publishSentryRelease(settings: SentrySettings, release: SentryRelease): Promise<void> {
  const sentry = new SentryClient(settings);
  await sentry.createRelease(release);
  if (release.repository && release.commit) {
    try {
      await sentry.setCommits(release);
    } catch (error) {
      core.warning(`${(error as Error).message} (is ${release.repository} connected to Sentry?); the release is recorded without commits.`);
    }
  }
  await sentry.recordDeploy(release);
  await sentry.finalize(release);
  core.info(`Sentry: release ${release.version} created, deploy to ${release.environment} recorded, finalized.`);
}

/** For a rollback: the release exists already; record that it serves the environment again. */
export async function recordSentryDeploy(settings: SentrySettings, release: SentryRelease): Promise<void> {
  const sentry = new SentryClient(settings);
  await sentry.createRelease(release); // idempotent in Sentry: an existing version is answered 208
  await sentry.recordDeploy(release);
  core.info(`Sentry: deploy of ${release.version} to ${release.environment} recorded.`);
}

/**
 * The Sentry release for a release record: version `sentry-release` or the git sha, commits from
 * the previous record's sha to this one in GITHUB_REPOSITORY, the deploy named by the record id.
 */
export function sentryReleaseFor(
  settings: SentrySettings,
  record: ReleaseRecord,
  previous?: ReleaseRecord,
  env: NodeJS.ProcessEnv = process.env,
): SentryRelease {
  return {
    version: settings.release ?? (record.gitSha || record.id),
    environment: record.environment,
    repository: env.GITHUB_REPOSITORY || undefined,
    commit: record.gitSha || undefined,
    previousCommit: previous?.gitSha && previous.gitSha !== record.gitSha ? previous.gitSha : undefined,
    deployName: record.id,
    deployUrl: record.url || undefined,
    startedAt: new Date(record.createdAt),
    finishedAt: new Date(),
  };
}
