import { getOctokit } from '@actions/github';
import { UserError } from './errors';
import { checkEnvironmentName, sortNewestFirst, type ReleaseOutcome, type ReleaseRecord, type ReleaseStore } from './releases';

/**
 * Release records in GitHub Deployments: one deployment per release (ref = git sha, the record
 * in its payload under `slipway`), statuses for its progress (in_progress, then success with
 * environment_url and auto_inactive so GitHub marks earlier deployments inactive, or failure).
 * The Environments page of the repository shows them; rollback finds them with `list`.
 *
 * A deployment's payload cannot change after it is created, and a status has no payload: the
 * deploy action therefore begins the record once everything rollback needs from it is known
 * (image, migrations, backup; the provider release id when the provider names it up front),
 * before traffic moves. What only the end knows is in the end status, where GitHub keeps it:
 * the URL in `environment_url`, the outcome (rolled-back too) and the provider release id in
 * its `description` (`success: <id> (sha256:…); provider release <id>`), read back by `list`.
 */
type Octokit = ReturnType<typeof getOctokit>;

const STATE_FOR: Record<ReleaseOutcome, 'in_progress' | 'success' | 'failure' | 'error'> = {
  in_progress: 'in_progress',
  success: 'success',
  failure: 'failure',
  'rolled-back': 'failure',
};

const PAGE = 100;
const MAX_LISTED = 300;
/** Statuses read per deployment: ours are in_progress and an end state, then GitHub's inactive ones. */
const STATUSES_READ = 30;
const DESCRIPTION_MAX = 140;
const ENDED = new Set(['success', 'failure', 'error']);

export interface GitHubStoreOptions {
  token: string;
  repository: string;
  /** The run's URL, shown as the statuses' log_url. */
  logUrl?: string;
}

export class GitHubDeploymentsStore implements ReleaseStore {
  readonly kind = 'github' as const;
  private readonly octokit: Octokit;
  private readonly owner: string;
  private readonly repo: string;
  /** Deployment ids of the records this process created, by record id. */
  private readonly deploymentIds = new Map<string, number>();

  constructor(private readonly options: GitHubStoreOptions) {
    if (!options.token) {
      throw new UserError(
        'Input `github-token` is empty: GitHub Deployments need a token with `deployments: write`, or set `release-store` to a directory.',
      );
    }
    const [owner, repo] = options.repository.split('/');
    if (!owner || !repo) throw new UserError(`GITHUB_REPOSITORY must be owner/name; got ${JSON.stringify(options.repository)}.`);
    this.owner = owner;
    this.repo = repo;
    // Read at call time (not module load) so GHES and local stand-ins are honoured.
    this.octokit = getOctokit(options.token, { baseUrl: process.env.GITHUB_API_URL || 'https://api.github.com' });
  }

  async begin(record: ReleaseRecord): Promise<void> {
    const response = await this.call('create a deployment', () =>
      this.octokit.rest.repos.createDeployment({
        owner: this.owner,
        repo: this.repo,
        ref: record.gitSha,
        task: 'deploy',
        environment: checkEnvironmentName(record.environment),
        description: `Slipway release ${record.id}`.slice(0, 140),
        auto_merge: false,
        required_contexts: [],
        payload: { slipway: record } as unknown as Record<string, unknown>,
        production_environment: isProduction(record.environment),
        transient_environment: false,
      }),
    );
    const data = response.data as { id?: number; message?: string };
    if (response.status !== 201 || typeof data.id !== 'number') {
      throw new UserError(`GitHub did not create the deployment: ${data.message ?? `status ${response.status}`}.`);
    }
    this.deploymentIds.set(record.id, data.id);
    await this.status(data.id, record);
  }

  async finish(record: ReleaseRecord): Promise<void> {
    const id = this.deploymentIds.get(record.id);
    if (id === undefined) throw new Error(`finish() before begin() for release ${record.id}`);
    await this.status(id, record);
    // GitHub's auto_inactive skips production environments: mark earlier ones there ourselves.
    if (record.outcome === 'success' && isProduction(record.environment)) await this.markEarlierInactive(record.environment, id);
  }

  private async markEarlierInactive(environment: string, keep: number): Promise<void> {
    const { data } = await this.call('list deployments', () =>
      this.octokit.rest.repos.listDeployments({ owner: this.owner, repo: this.repo, environment, per_page: PAGE }),
    );
    for (const deployment of data) {
      if (deployment.id === keep) continue;
      const { data: statuses } = await this.call('list deployment statuses', () =>
        this.octokit.rest.repos.listDeploymentStatuses({ owner: this.owner, repo: this.repo, deployment_id: deployment.id, per_page: 1 }),
      );
      if (statuses[0]?.state !== 'success') continue;
      await this.call('mark a deployment inactive', () =>
        this.octokit.rest.repos.createDeploymentStatus({
          owner: this.owner,
          repo: this.repo,
          deployment_id: deployment.id,
          state: 'inactive',
          description: 'superseded by a newer release',
        }),
      );
    }
  }

  async list(environment: string): Promise<ReleaseRecord[]> {
    const records: ReleaseRecord[] = [];
    for (let page = 1; records.length < MAX_LISTED; page++) {
      const { data } = await this.call('list deployments', () =>
        this.octokit.rest.repos.listDeployments({
          owner: this.owner,
          repo: this.repo,
          environment: checkEnvironmentName(environment),
          per_page: PAGE,
          page,
        }),
      );
      for (const deployment of data) {
        const payload = (typeof deployment.payload === 'string' ? safeJson(deployment.payload) : deployment.payload) as
          { slipway?: ReleaseRecord } | undefined;
        const record = payload?.slipway;
        if (!record || typeof record.id !== 'string') continue; // not a Slipway deployment
        const { data: statuses } = await this.call('list deployment statuses', () =>
          this.octokit.rest.repos.listDeploymentStatuses({
            owner: this.owner,
            repo: this.repo,
            deployment_id: deployment.id,
            per_page: STATUSES_READ,
          }),
        );
        const latest = statuses[0];
        // The status this store wrote at the end; later ones (inactive) carry no facts of their own.
        const ended = statuses.find((s) => ENDED.has(s.state));
        const facts = parseDescription(ended?.description ?? '', record.id);
        this.deploymentIds.set(record.id, deployment.id);
        records.push({
          ...record,
          outcome: outcomeOf(latest?.state, facts.outcome ?? record.outcome),
          url: ended?.environment_url || latest?.environment_url || record.url,
          providerReleaseId: record.providerReleaseId || facts.providerReleaseId || '',
        });
      }
      if (data.length < PAGE) break;
    }
    return sortNewestFirst(records);
  }

  async current(environment: string): Promise<ReleaseRecord | undefined> {
    return (await this.list(environment)).find((r) => r.outcome === 'success');
  }

  private async status(deploymentId: number, record: ReleaseRecord): Promise<void> {
    const state = STATE_FOR[record.outcome];
    await this.call('post a deployment status', () =>
      this.octokit.rest.repos.createDeploymentStatus({
        owner: this.owner,
        repo: this.repo,
        deployment_id: deploymentId,
        state,
        description: statusDescription(record),
        environment: record.environment,
        ...(record.url ? { environment_url: record.url } : {}),
        ...(this.options.logUrl ? { log_url: this.options.logUrl } : {}),
        auto_inactive: state === 'success',
      }),
    );
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      const status = (error as { status?: number }).status;
      const message = error instanceof Error ? error.message : String(error);
      if (status === 401 || status === 403 || status === 404) {
        throw new UserError(
          `GitHub refused to ${what} (${status}: ${message}): the token needs \`deployments: write\` on ${this.owner}/${this.repo}.`,
        );
      }
      throw new UserError(`Could not ${what} on GitHub: ${message}`);
    }
  }
}

/** GitHub's own rule for the default: production environments are named so. */
function isProduction(environment: string): boolean {
  return /^prod(uction)?$/i.test(environment);
}

function outcomeOf(state: string | undefined, fallback: ReleaseOutcome): ReleaseOutcome {
  if (state === 'success' || state === 'inactive') return 'success';
  if (state === 'failure' || state === 'error') return fallback === 'rolled-back' ? 'rolled-back' : 'failure';
  if (state === 'in_progress' || state === 'queued' || state === 'pending') return 'in_progress';
  return fallback;
}

/**
 * A status description: `<outcome>: <release id> (<digest, short>); provider release <id>`,
 * the digest left out first when it would not fit in GitHub's 140 characters.
 */
export function statusDescription(record: ReleaseRecord): string {
  const what = record.outcome === 'in_progress' ? 'deploying' : record.outcome;
  const head = `${what}: ${record.id}`;
  const digest = record.imageDigest ? ` (${record.imageDigest.slice(0, 19)})` : '';
  const provider =
    record.providerReleaseId && /^\S+$/.test(record.providerReleaseId) ? `; provider release ${record.providerReleaseId}` : '';
  const fits = [head + digest + provider, head + provider, head + digest, head].find((d) => d.length <= DESCRIPTION_MAX);
  return fits ?? head.slice(0, DESCRIPTION_MAX);
}

const DESCRIPTION = /^(deploying|success|failure|rolled-back): (\S+)(?: \(sha256:[0-9a-f]*\))?(?:; provider release (\S+))?$/;

/** What an end status's description says about record `id` (nothing when it is not ours). */
export function parseDescription(description: string, id: string): { outcome?: ReleaseOutcome; providerReleaseId?: string } {
  const m = DESCRIPTION.exec(description.trim());
  if (!m || m[2] !== id) return {};
  const outcome = m[1] === 'deploying' ? undefined : (m[1] as ReleaseOutcome);
  return { outcome, providerReleaseId: m[3] };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
