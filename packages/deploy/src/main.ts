import * as core from '@actions/core';
import { createProvider } from '@slipway/targets/registry';
import type { DeployResult } from '@slipway/targets/types';
import { GitHubDeploymentsStore } from '@slipway/toolkit/github-deployments';
import { formatMs, Phases } from '@slipway/toolkit/log';
import { DirectoryStore, newReleaseId, type ReleaseRecord, type ReleaseStore } from '@slipway/toolkit/releases';
import { publishSentryRelease, sentryReleaseFor } from '@slipway/toolkit/sentry';
import { writeSummary } from '@slipway/toolkit/summary';
import { getInputs, type Inputs } from './context';
import { migrateOnce, migrationsFromState } from './migrations';

function makeStore(inputs: Inputs): ReleaseStore {
  if (inputs.releaseStore === 'github') {
    const server = process.env.GITHUB_SERVER_URL ?? 'https://github.com';
    const repository = process.env.GITHUB_REPOSITORY ?? '';
    return new GitHubDeploymentsStore({
      token: inputs.githubToken,
      repository,
      logUrl: process.env.GITHUB_RUN_ID ? `${server}/${repository}/actions/runs/${process.env.GITHUB_RUN_ID}` : undefined,
    });
  }
  return new DirectoryStore(inputs.releaseStore.dir);
}

export async function main(): Promise<void> {
  const inputs = getInputs();
  const phases = new Phases();
  const gitSha = process.env.GITHUB_SHA ?? '';
  const releaseId = newReleaseId(gitSha);
  const actor = process.env.GITHUB_ACTOR ?? 'unknown';
  const lockOwner = `${actor} ${process.env.GITHUB_REPOSITORY ?? ''} run ${process.env.GITHUB_RUN_ID ?? '?'} release ${releaseId} since ${new Date().toISOString()}`;
  const provider = createProvider(inputs.provider, { appName: inputs.appName, lockOwner });
  const store = makeStore(inputs);
  core.setOutput('release-id', releaseId);
  try {
    await phases.phase(`Checking the ${inputs.provider} target`, () => provider.validate());
    const previous = await phases.phase('Reading the previous release', () => store.current(inputs.environment));
    core.setOutput('previous-release-id', previous?.id ?? '');
    const fromState = migrationsFromState();
    const record: ReleaseRecord = {
      id: releaseId,
      environment: inputs.environment,
      provider: inputs.provider,
      providerReleaseId: provider.plannedReleaseId?.(releaseId) ?? '',
      gitSha,
      gitRef: process.env.GITHUB_REF ?? '',
      image: inputs.image,
      imageDigest: inputs.imageDigest,
      url: '',
      migrations: fromState.migrations,
      backup: fromState.backup,
      actor,
      createdAt: new Date().toISOString(),
      outcome: 'in_progress',
      rollbackOf: null,
    };
    // GitHub Deployments keep the payload a deployment is created with: the record begins once
    // the migrations are known, just before traffic moves (see github-deployments.ts).
    let begun = false;
    let beginError: unknown;
    const begin = async (): Promise<void> => {
      await phases
        .phase(`Recording release ${releaseId} (${store.kind})`, () => store.begin({ ...record, outcome: 'in_progress' }))
        .catch((error: unknown) => {
          beginError = error;
          throw error;
        });
      begun = true;
    };
    let result: DeployResult | undefined;
    let failure: Error | undefined;
    // A provider that migrates on the target (ssh release-dir) begins the record through
    // `migrated`, once its migrations ran and before traffic moves.
    const onTarget = inputs.migrate && provider.migratesOnTarget === true;
    try {
      if (inputs.migrate && !onTarget)
        record.migrations = await phases.phase('Migrating the database', () => migrateOnce(inputs.image, inputs.env));
      if (!onTarget) await begin();
      result = await phases.phase(`Deploying to ${inputs.provider}`, () =>
        provider.deploy({
          releaseId,
          environment: inputs.environment,
          appName: inputs.appName,
          image: inputs.image,
          imageDigest: inputs.imageDigest,
          env: inputs.env,
          health: inputs.health,
          keepReleases: inputs.keepReleases,
          rollbackOnFailure: inputs.rollbackOnFailure,
          migrate: inputs.migrate,
          migrated: onTarget
            ? async (migrations) => {
                record.migrations = migrations;
                await begin();
              }
            : undefined,
          previous,
          log: core.info,
        }),
      );
      if (result.migrations) record.migrations = result.migrations;
      record.providerReleaseId = result.providerReleaseId;
      record.url = result.url;
      record.details = result.details;
      record.outcome = 'success';
    } catch (error) {
      failure = error instanceof Error ? error : new Error(String(error));
      record.outcome = (error as { rolledBack?: boolean }).rolledBack ? 'rolled-back' : 'failure';
    }
    // A failure before the record began (the migration) is recorded too; a store that refused to begin is not asked again.
    if (!begun && beginError === undefined) {
      await begin().catch((error: unknown) =>
        core.warning(`The failed release could not be recorded: ${error instanceof Error ? error.message : String(error)}`),
      );
    }
    if (!begun) throw failure ?? new Error('the release record could not begin');
    await phases.phase('Recording the outcome', () => store.finish(record));
    if (result) core.setOutput('url', result.url);
    let sentryState = inputs.sentry ? 'not published (deploy failed)' : 'not configured';
    if (inputs.sentry && record.outcome === 'success') {
      // The release serves and is recorded: a Sentry outage must not fail the step (a warning says so).
      const settings = inputs.sentry;
      const release = sentryReleaseFor(settings, record, previous);
      sentryState = await phases
        .phase('Publishing the release to Sentry', () => publishSentryRelease(settings, release))
        .then(
          () => `release ${release.version}, deploy to ${release.environment} (${settings.projects.join(', ')})`,
          (error: unknown) => {
            const message = error instanceof Error ? error.message : String(error);
            core.warning(`${message}; the deploy itself succeeded and is recorded.`);
            return 'failed (see warning)';
          },
        );
    }
    await writeSummary(`deploy: ${record.outcome === 'success' ? 'released' : record.outcome} ${inputs.environment}`, [
      {
        heading: '',
        rows: [
          ['Target', `${inputs.provider} · ${inputs.appName}`],
          ['Release', releaseId],
          ['Previous release', previous?.id ?? '(none)'],
          ['Image', inputs.image],
          ['URL', record.url || '(not serving)'],
          [
            'Health',
            result?.health
              ? `${inputs.health.path} → ${inputs.health.expectedStatus} after ${result.health.attempts} attempt(s), ${formatMs(result.health.elapsedMs)}`
              : record.outcome,
          ],
          ['Migrations', record.migrations ? `${record.migrations.applied.length} applied` : 'not run'],
          ['Record', store.kind === 'github' ? 'GitHub Deployments' : 'directory'],
          ['Sentry', sentryState],
        ],
      },
      { heading: 'Timings', rows: phases.rows() },
    ]);
    if (failure) throw failure;
  } finally {
    await provider.close();
  }
}
