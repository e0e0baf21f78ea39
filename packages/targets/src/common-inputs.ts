import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseDotenv } from '@slipway/toolkit/dotenv';
import { UserError } from '@slipway/toolkit/errors';
import { getDotenv, getDuration, getInteger, getString } from '@slipway/toolkit/inputs';
import { workspaceDir } from '@slipway/toolkit/runner';
import { looksSecret, maskSecret, maskUrl } from '@slipway/toolkit/secrets';

/** Inputs deploy and rollback share: the application's environment, the health check, the release store. */

/**
 * `env-file` then `env` (later wins). Values of secret-looking names are masked, and so are
 * credentials inside URL values (REDIS_URL=redis://:pw@host) whatever the name.
 */
export function readAppEnv(): Map<string, string> {
  const env = new Map<string, string>();
  const envFile = getString('env-file');
  if (envFile) {
    const file = path.resolve(workspaceDir(), envFile);
    if (!fs.existsSync(file)) throw new UserError(`Input \`env-file\`: ${envFile} does not exist.`);
    for (const [k, v] of parseDotenv(fs.readFileSync(file, 'utf8'), `Input \`env-file\` (${envFile})`)) env.set(k, v);
  }
  for (const [k, v] of getDotenv('env')) env.set(k, v);
  for (const [k, v] of env) {
    if (looksSecret(k)) maskSecret(v);
    else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) maskUrl(v);
  }
  return env;
}

export interface HealthSettings {
  path: string;
  expectedStatus: number;
  timeoutMs: number;
  hostHeader: string | undefined;
}

export function readHealth(): HealthSettings {
  const healthPath = getString('health-path') || '/healthz';
  if (!/^\//.test(healthPath) && !/^https?:\/\/[^\s]+$/i.test(healthPath)) {
    throw new UserError(`Input \`health-path\` must start with / or be an http(s) URL; got ${JSON.stringify(healthPath)}.`);
  }
  return {
    path: healthPath,
    expectedStatus: getInteger('health-status', 200, { min: 100, max: 599 }),
    timeoutMs: getDuration('health-timeout', 60_000),
    hostHeader: getString('health-host') || undefined,
  };
}

/** `release-store` (github or a directory) and the token GitHub Deployments need, masked. */
export function readReleaseStore(): { releaseStore: 'github' | { dir: string }; githubToken: string } {
  const store = getString('release-store') || 'github';
  const githubToken = getString('github-token');
  if (store === 'github' && !githubToken) {
    throw new UserError(
      'Input `github-token` is empty: GitHub Deployments need it (`deployments: write`), or set `release-store` to a directory.',
    );
  }
  if (githubToken) maskSecret(githubToken);
  return { releaseStore: store === 'github' ? 'github' : { dir: path.resolve(workspaceDir(), store) }, githubToken };
}
