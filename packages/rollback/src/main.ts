import * as fs from 'node:fs';
import * as path from 'node:path';
import * as core from '@actions/core';
import { stateText } from '@slipway/migrate/lib';
import { createCloudProvider } from '@slipway/targets/cloud';
import { createProvider } from '@slipway/targets/registry';
import { HealthCheckError, type DeployResult, type Provider } from '@slipway/targets/types';
import { UserError } from '@slipway/toolkit/errors';
import { GitHubDeploymentsStore } from '@slipway/toolkit/github-deployments';
import { healthUrl, waitForHealthy, type HealthResult } from '@slipway/toolkit/health';
import { formatMs, Phases } from '@slipway/toolkit/log';
import { DirectoryStore, newReleaseId, type ReleaseRecord, type ReleaseStore } from '@slipway/toolkit/releases';
import { runnerTemp } from '@slipway/toolkit/runner';
import { recordSentryDeploy, sentryReleaseFor } from '@slipway/toolkit/sentry';
import { writeSummary, type SummarySection } from '@slipway/toolkit/summary';
import { getInputs, type Inputs } from './context';
import {
  imageHosts,
  irreversibleStep,
  planDatabase,
  runDatabase,
  type DatabasePlan,
  type DatabaseResult,
  type ReleaseHosts,
} from './database';
import { imageText, planRows, restoreSection, stepsText } from './report';
import { runRevert, type RevertResult } from './revert';
import { defaultDatabaseMode, resolveTarget, type Resolution } from './target';

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

function makeProvider(inputs: Inputs, lockOwner: string): Provider {
  if (inputs.provider === 'ssh') return createProvider('ssh', { appName: inputs.appName, lockOwner, activateOnly: true });
  return createCloudProvider(inputs.provider);
}

/** Where a recorded release's Python runs for the database steps: where the provider keeps it (ssh release-dir), else its image on the runner. */
function releaseHosts(inputs: Inputs, provider: Provider): ReleaseHosts {
  const own = provider.migrationHost?.bind(provider);
  return own ? { needsEnv: false, open: own } : imageHosts(inputs.env);
}

/** Directory store: the environment whose folder holds a record id (for a clear refusal). */
function findElsewhere(inputs: Inputs): ((id: string) => string | undefined) | undefined {
  if (inputs.releaseStore === 'github') return undefined;
  const dir = inputs.releaseStore.dir;
  return (id) => {
    if (!fs.existsSync(dir)) return undefined;
    return fs.readdirSync(dir).find((env) => env !== inputs.environment && fs.existsSync(path.join(dir, env, `${id}.json`)));
  };
}

export async function main(): Promise<void> {
  const inputs = getInputs();
  const phases = new Phases();
  const actor = process.env.GITHUB_ACTOR ?? 'unknown';
  const store = makeStore(inputs);
  const records = await phases.phase(`Reading the release records of ${inputs.environment} (${store.kind})`, () =>
    store.list(inputs.environment),
  );
  const res = resolveTarget(records, inputs.to, {
    environment: inputs.environment,
    provider: inputs.provider,
    findElsewhere: findElsewhere(inputs),
  });
  const mode = inputs.database ?? defaultDatabaseMode(res);
  const releaseId = newReleaseId(res.target.gitSha);
  const lockOwner = `${actor} ${process.env.GITHUB_REPOSITORY ?? ''} run ${process.env.GITHUB_RUN_ID ?? '?'} rollback ${releaseId} since ${new Date().toISOString()}`;
  const provider = makeProvider(inputs, lockOwner);
  core.setOutput('rolled-back-release-id', res.current.id);
  core.setOutput('target-release-id', res.target.id);
  try {
    await phases.phase(`Checking the ${inputs.provider} target`, () => provider.validate());
    const plan = await phases.phase(`Planning the database (${mode})`, () =>
      planDatabase(mode, res, {
        hosts: releaseHosts(inputs, provider),
        env: inputs.env,
        backupFile: inputs.backupFile,
        backupDir: inputs.backupDir,
      }),
    );
    const rows = planRows(res, plan);
    if (inputs.revert) rows.push(['Revert', revertPlanText(inputs, res)]);
    core.info(`Rollback plan for ${inputs.environment}:\n${rows.map(([k, v]) => `  ${k}: ${v}`).join('\n')}`);
    const refusal = irreversibleStep(plan);
    if (refusal) {
      await writeSummary(`rollback: refused for ${inputs.environment}`, [{ heading: 'Plan', rows }]);
      throw new UserError(
        `Rollback refused: migrating back would unapply ${refusal.app}.${refusal.name}, which cannot be unapplied (${refusal.irreversible}). ` +
          'Use `database: restore-backup` (the backup recorded before it) or `database: none`; nothing was changed.',
      );
    }
    if (inputs.dryRun) {
      core.info('dry-run: stopping before anything changes.');
      await writeSummary(`rollback plan (dry run): ${inputs.environment}`, [{ heading: 'Plan', rows }]);
      return;
    }
    await execute(inputs, res, plan, { provider, store, phases, releaseId, actor, rows });
  } finally {
    await provider.close();
  }
}

interface Run {
  provider: Provider;
  store: ReleaseStore;
  phases: Phases;
  releaseId: string;
  actor: string;
  rows: [string, string][];
}

async function execute(inputs: Inputs, res: Resolution, plan: DatabasePlan, run: Run): Promise<void> {
  const { store, phases, releaseId } = run;
  const target = res.target;
  const recordedBefore = plan.liveState ?? res.current.migrations?.after ?? null;
  // GitHub Deployments keep the payload written at begin(): fill in now what is already known.
  const planned = plan.mode === 'migrate-back' ? (plan.targetState ?? recordedBefore) : recordedBefore;
  // ssh deploys use the release id as the provider's release id; a record written at begin() may lack it.
  const activation = { ...target, providerReleaseId: target.providerReleaseId || (target.provider === 'ssh' ? target.id : '') };
  const record: ReleaseRecord = {
    id: releaseId,
    environment: inputs.environment,
    provider: inputs.provider,
    providerReleaseId: activation.providerReleaseId,
    gitSha: target.gitSha,
    gitRef: target.gitRef,
    image: target.image,
    imageDigest: target.imageDigest,
    url: target.url,
    migrations: recordedBefore ? { before: recordedBefore, after: planned ?? recordedBefore, applied: [] } : null,
    backup: null,
    actor: run.actor,
    createdAt: new Date().toISOString(),
    outcome: 'in_progress',
    rollbackOf: res.current.id,
    details: { rollback: { to: target.id, database: plan.mode } },
  };
  core.setOutput('release-id', releaseId);
  await phases.phase(`Recording rollback ${releaseId} (${store.kind})`, () => store.begin(record));
  let activated: DeployResult | undefined;
  let db: DatabaseResult | undefined;
  let health: HealthResult | undefined;
  let failure: Error | undefined;
  let switchedUnhealthy = false;
  const started = Date.now();
  try {
    // The order rule: the old code serves first, then the schema goes back (docs/rollback.md).
    activated = await phases.phase(`Serving ${target.id} again (${inputs.provider})`, () =>
      run.provider.activate(activation, {
        environment: inputs.environment,
        appName: inputs.appName,
        health: inputs.health,
        log: core.info,
      }),
    );
    core.info(`Old release serving ${formatMs(Date.now() - started)} after the switch began.`);
    record.providerReleaseId = activated.providerReleaseId;
    record.url = activated.url;
    record.details = { ...activated.details, ...record.details };
    if (plan.mode !== 'none') {
      db = await phases.phase(plan.mode === 'migrate-back' ? 'Migrating the database back' : 'Restoring the backup', () =>
        runDatabase(plan, { hosts: releaseHosts(inputs, run.provider), backupDir: inputs.backupDir, lockTimeoutMs: inputs.lockTimeoutMs }),
      );
      record.backup = db.freshBackup.file;
      record.migrations = { before: recordedBefore ?? db.state, after: db.state, applied: [] };
      record.details = { ...record.details, unapplied: plan.steps.filter((s) => s.backwards).map((s) => `${s.app}.${s.name}`) };
    }
    health = await phases.phase('Checking health', async () => {
      const url = healthUrl(inputs.health.path, activated!.url);
      const result = await waitForHealthy({
        url,
        expectedStatus: inputs.health.expectedStatus,
        timeoutMs: inputs.health.timeoutMs,
        headers: inputs.health.hostHeader ? { Host: inputs.health.hostHeader } : undefined,
      });
      if (!result.ok)
        throw new UserError(
          `After the rollback ${url} did not answer ${inputs.health.expectedStatus} (last: ${result.lastProblem ?? 'no answer'}).`,
        );
      return result;
    });
    record.outcome = 'success';
  } catch (error) {
    failure = error instanceof Error ? error : new Error(String(error));
    record.outcome = 'failure';
    // A cloud provider's activate has already switched (Heroku's rollback release, Cloud Run's
    // traffic, the EB version) when its health check fails: nothing "keeps serving" the previous one.
    if (!activated && error instanceof HealthCheckError && inputs.provider !== 'ssh') {
      switchedUnhealthy = true;
      const r = error.result;
      failure = new UserError(
        `Health check of ${error.where} failed after ${r.attempts} attempt(s) in ${(r.elapsedMs / 1000).toFixed(1)} s ` +
          `(expected ${inputs.health.expectedStatus}; last: ${r.lastProblem ?? 'no answer'}). ${inputs.provider} already serves it: ` +
          `the rollback is recorded as failed and not undone; roll back to another release or fix forward.`,
      );
    }
  }
  await phases.phase('Recording the outcome', async () => {
    await store.finish(record);
    // GitHub marks the replaced deployment inactive (auto_inactive, or explicitly for production);
    // the directory store notes it in the replaced record, whose outcome stays what it was.
    if (record.outcome === 'success' && store.kind === 'directory') {
      await store.finish({ ...res.current, details: { ...res.current.details, rolledBackBy: record.id, inactive: true } });
    }
  });
  if (record.outcome === 'success' && inputs.sentry) {
    await phases
      .phase('Recording the deploy in Sentry', () =>
        recordSentryDeploy(inputs.sentry!, sentryReleaseFor(inputs.sentry!, record, res.current)),
      )
      .catch((e: unknown) => core.warning(`Sentry: ${e instanceof Error ? e.message : String(e)}; the rollback itself is done.`));
  }
  let revert: RevertResult | undefined;
  let revertFailure: string | undefined;
  if (record.outcome === 'success' && inputs.revert) {
    const settings = inputs.revert;
    try {
      revert = await phases.phase(`Reverting ${res.target.gitSha.slice(0, 7)}..${res.current.gitSha.slice(0, 7)} (${settings.mode})`, () =>
        runRevert(
          settings,
          {
            fromSha: target.gitSha,
            toSha: res.current.gitSha,
            releaseId: record.id,
            environment: inputs.environment,
            rolledBackId: res.current.id,
            targetId: target.id,
            gitRef: res.current.gitRef,
          },
          runnerTemp(),
        ),
      );
      if (revert.revertSha) core.setOutput('revert-sha', revert.revertSha);
      if (revert.pullRequest) core.setOutput('revert-pull-request-url', revert.pullRequest.url);
    } catch (e) {
      revertFailure = e instanceof Error ? e.message : String(e);
      core.info(`Revert failed: ${revertFailure}`);
    }
  }
  if (activated) core.setOutput('url', activated.url);
  const sections: SummarySection[] = [
    { heading: 'Plan', rows: run.rows },
    {
      heading: 'Result',
      rows: [
        ['Rollback release', `${record.id} (rollback of ${res.current.id})`],
        [
          'Serving',
          activated
            ? `${imageText(target.image)} at ${activated.url}`
            : switchedUnhealthy
              ? `${imageText(target.image)} (unhealthy)`
              : `${imageText(res.current.image)} (unchanged)`,
        ],
        [
          'Health',
          health
            ? `${inputs.health.path} → ${inputs.health.expectedStatus} after ${health.attempts} attempt(s), ${formatMs(health.elapsedMs)}`
            : record.outcome,
        ],
        ['Database', db ? `${plan.mode}: now ${stateText(db.state)}` : plan.mode === 'none' ? 'unchanged' : 'not changed'],
        ...(db ? ([['Backup taken before', `${db.freshBackup.file} (${db.freshBackup.bytes} bytes)`]] as [string, string][]) : []),
        ...(plan.mode === 'migrate-back' && db ? ([['Migrations run', stepsText(plan)]] as [string, string][]) : []),
        ['Record', store.kind === 'github' ? 'GitHub Deployments' : 'directory'],
        ...(inputs.revert && record.outcome === 'success' ? ([['Revert', revertText(revert, revertFailure)]] as [string, string][]) : []),
      ],
    },
  ];
  if (db?.countsAfter && plan.countsNow) sections.push(restoreSection(plan.countsNow, db.countsAfter));
  sections.push({ heading: 'Timings', rows: phases.rows() });
  const title =
    record.outcome === 'success' ? `rollback: ${inputs.environment} back on ${target.id}` : `rollback: FAILED for ${inputs.environment}`;
  await writeSummary(title, sections);
  if (failure) {
    if (activated && plan.mode !== 'none' && !db) {
      throw new UserError(
        `${failure.message} The old release serves; the database was not moved back (still ${stateText(recordedBefore ?? {})}).`,
      );
    }
    throw failure;
  }
  if (revertFailure) {
    throw new UserError(
      `The rollback is done (${inputs.environment} serves ${target.id} again, recorded as ${record.id}), but the revert failed: ${revertFailure} ` +
        `Revert by hand: git revert --no-edit ${target.gitSha.slice(0, 12)}..${res.current.gitSha.slice(0, 12)}`,
    );
  }
}

function revertPlanText(inputs: Inputs, res: Resolution): string {
  const range = `git revert --no-edit ${res.target.gitSha.slice(0, 7)}..${res.current.gitSha.slice(0, 7)}`;
  const branch = inputs.revert!.branch ?? (/^refs\/heads\/(.+)$/.exec(res.current.gitRef)?.[1] || '(set revert-branch)');
  return inputs.revert!.mode === 'commit' ? `${range}, pushed to ${branch}` : `${range}, pull request into ${branch}`;
}

function revertText(revert: RevertResult | undefined, failure: string | undefined): string {
  if (failure || !revert) return `FAILED: ${failure ?? 'not run'}`;
  if (revert.note) return revert.note;
  const what = `${revert.commits.length} commit(s) reverted (${revert.revertSha.slice(0, 7)})`;
  return revert.pullRequest
    ? `${what} on ${revert.pushedTo}: pull request #${revert.pullRequest.number} ${revert.pullRequest.url}`
    : `${what}, pushed to ${revert.pushedTo}`;
}
