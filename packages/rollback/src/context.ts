import { readAppEnv, readHealth, readReleaseStore } from '@slipway/targets/common-inputs';
import * as path from 'node:path';
import { PROVIDERS, type HealthCheck, type ProviderName } from '@slipway/targets/types';
import { UserError } from '@slipway/toolkit/errors';
import { getBoolean, getDuration, getRequired, getString } from '@slipway/toolkit/inputs';
import { checkEnvironmentName } from '@slipway/toolkit/releases';
import { runnerTemp, workspaceDir } from '@slipway/toolkit/runner';
import { readSentrySettings, type SentrySettings } from '@slipway/toolkit/sentry';
import { checkAuthor, checkBranch, DEFAULT_AUTHOR, REVERTS, type RevertSettings } from './revert';
import { DATABASE_MODES, parseTo, type DatabaseMode, type TargetSpec } from './target';

export interface Inputs {
  provider: ProviderName;
  environment: string;
  appName: string;
  to: TargetSpec;
  /** undefined: decided from the records (migrate-back when the schema moved, else none). */
  database: DatabaseMode | undefined;
  dryRun: boolean;
  /** The application's environment for the database steps (DATABASE_URL, ...), masked. */
  env: Map<string, string>;
  health: HealthCheck;
  releaseStore: 'github' | { dir: string };
  githubToken: string;
  backupDir: string;
  /** Where the recorded backup is on this runner, when not at its recorded path. */
  backupFile: string | undefined;
  lockTimeoutMs: number;
  sentry: SentrySettings | undefined;
  /** undefined: `revert: false`. */
  revert: RevertSettings | undefined;
}

const APP_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

export function defaultAppName(repository: string | undefined): string {
  const name = (repository?.split('/')[1] ?? 'app')
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '');
  return name.slice(0, 63) || 'app';
}

/** Every input, validated before anything runs. The provider's own inputs are read by the provider. */
export function getInputs(): Inputs {
  const providerName = getRequired('provider', `one of ${PROVIDERS.join(', ')} (the provider the release was deployed with).`);
  if (!(PROVIDERS as readonly string[]).includes(providerName)) {
    throw new UserError(`Input \`provider\` must be one of ${PROVIDERS.join(', ')}; got ${JSON.stringify(providerName)}.`);
  }
  const environment = checkEnvironmentName(getRequired('environment', 'the environment to roll back, e.g. production.'));
  const appName = getString('app-name') || defaultAppName(process.env.GITHUB_REPOSITORY);
  if (!APP_NAME.test(appName)) {
    throw new UserError(`Input \`app-name\` must be lower-case letters, digits, . _ - (up to 63); got ${JSON.stringify(appName)}.`);
  }
  const to = parseTo(getString('to'));
  const databaseText = getString('database');
  if (databaseText && !(DATABASE_MODES as readonly string[]).includes(databaseText)) {
    throw new UserError(
      `Input \`database\` must be one of ${DATABASE_MODES.join(', ')} (or empty for the default); got ${JSON.stringify(databaseText)}.`,
    );
  }
  const revert = getString('revert') || 'false';
  if (!(REVERTS as readonly string[]).includes(revert)) {
    throw new UserError(`Input \`revert\` must be false, commit or pull-request; got ${JSON.stringify(revert)}.`);
  }
  const revertBranch = getString('revert-branch');
  if (revertBranch) checkBranch(revertBranch, 'revert-branch');
  const author = checkAuthor(
    getString('revert-author-name') || DEFAULT_AUTHOR.name,
    getString('revert-author-email') || DEFAULT_AUTHOR.email,
  );

  const env = readAppEnv();
  const health = readHealth();
  const { releaseStore, githubToken } = readReleaseStore();
  const backupFile = getString('backup-file');
  const repository = process.env.GITHUB_REPOSITORY ?? '';
  if (revert === 'pull-request' && !githubToken) {
    throw new UserError('Input `revert: pull-request` needs `github-token` (with contents: write and pull-requests: write).');
  }
  if (revert === 'pull-request' && !/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(repository)) {
    throw new UserError(`\`revert: pull-request\` needs GITHUB_REPOSITORY as owner/name; got ${JSON.stringify(repository)}.`);
  }
  return {
    provider: providerName as ProviderName,
    environment,
    appName,
    to,
    database: (databaseText || undefined) as DatabaseMode | undefined,
    dryRun: getBoolean('dry-run', false),
    env,
    health,
    releaseStore,
    githubToken,
    backupDir: path.resolve(workspaceDir(), getString('backup-dir') || path.join(runnerTemp(), 'slipway-rollback-backups')),
    backupFile: backupFile ? path.resolve(workspaceDir(), backupFile) : undefined,
    lockTimeoutMs: getDuration('lock-timeout', 300_000),
    sentry: readSentrySettings(),
    revert:
      revert === 'false'
        ? undefined
        : {
            mode: revert as 'commit' | 'pull-request',
            branch: revertBranch || undefined,
            authorName: author.name,
            authorEmail: author.email,
            token: githubToken,
            repository,
            repoDir: workspaceDir(),
          },
  };
}
