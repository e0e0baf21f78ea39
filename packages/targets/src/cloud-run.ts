import { UserError } from '@slipway/toolkit/errors';
import { healthUrl, waitForHealthy, type HealthResult } from '@slipway/toolkit/health';
import { getBoolean, getDuration, getList, getString } from '@slipway/toolkit/inputs';
import type { ReleaseRecord } from '@slipway/toolkit/releases';
import { maskSecret } from '@slipway/toolkit/secrets';
import {
  CloudRunApi,
  pinnedTraffic,
  servingRevision,
  type Container,
  type EnvVar,
  type Service,
  type TrafficTarget,
} from './cloud-run-api';
import { googleAccessToken } from './gcp-auth';
import { HealthCheckError, type ActivateContext, type DeployContext, type DeployResult, type HealthCheck, type Provider } from './types';

/**
 * cloud-run: a new revision of a Cloud Run service (Admin API v2) with the image, `env` and
 * Secret Manager references (`secrets`), created with no traffic and a tag, health-checked on
 * the tag's own URL, then given 100% of the traffic — so a revision that fails its check never
 * serves. `no-traffic: true` stops after the check and leaves the tagged revision for a later
 * promotion. Rollback sends 100% to the recorded revision and clears the tags.
 */

export interface SecretRef {
  env: string;
  secret: string;
  version: string;
}

export interface CloudRunSettings {
  project: string;
  region: string;
  service: string;
  noTraffic: boolean;
  revisionTag: string;
  secrets: SecretRef[];
  tokenInput: string;
  apiBase: string;
  timeoutMs: number;
}

const SERVICE = /^[a-z]([a-z0-9-]{0,47}[a-z0-9])?$/;
const TAG = /^[a-z]([a-z0-9-]{0,45}[a-z0-9])?$/;
const PROJECT = /^[a-z][a-z0-9-]{4,28}[a-z0-9]$|^[a-z0-9.-]+:[a-z][a-z0-9-]{4,28}[a-z0-9]$/;
const REGION = /^[a-z]+-[a-z]+\d+$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `NAME=secret[:version]` or `NAME=projects/p/secrets/s/versions/v` (one per line or comma). */
export function parseSecrets(lines: string[]): SecretRef[] {
  return lines.map((line) => {
    const eq = line.indexOf('=');
    const env = line.slice(0, eq).trim();
    const ref = line.slice(eq + 1).trim();
    if (eq <= 0 || !ref) throw new UserError(`Input \`secrets\`: \`${line}\` must be NAME=secret[:version].`);
    if (env.startsWith('/'))
      throw new UserError(`Input \`secrets\`: \`${env}\`: mounting secrets as files is not supported; use an environment variable name.`);
    if (!ENV_NAME.test(env)) throw new UserError(`Input \`secrets\`: \`${env}\` is not an environment variable name.`);
    const full = /^(projects\/[^/]+\/secrets\/[^/]+)\/versions\/([^/]+)$/.exec(ref);
    if (full) return { env, secret: full[1]!, version: full[2]! };
    const short = /^([A-Za-z0-9_-]{1,255})(?::([A-Za-z0-9_-]+))?$/.exec(ref);
    if (!short)
      throw new UserError(
        `Input \`secrets\`: \`${ref}\` is not a secret name (secret or secret:version, or projects/p/secrets/s/versions/v).`,
      );
    return { env, secret: short[1]!, version: short[2] ?? 'latest' };
  });
}

export function readCloudRunSettings(env: NodeJS.ProcessEnv = process.env): CloudRunSettings {
  const project =
    getString('gcp-project') || env.CLOUDSDK_CORE_PROJECT?.trim() || env.GOOGLE_CLOUD_PROJECT?.trim() || env.GCLOUD_PROJECT?.trim() || '';
  const region = getString('gcp-region') || env.CLOUDSDK_RUN_REGION?.trim() || '';
  const service = getString('cloud-run-service');
  if (!project)
    throw new UserError(
      'Input `gcp-project` is required with provider cloud-run (or let google-github-actions/auth set GOOGLE_CLOUD_PROJECT).',
    );
  if (!PROJECT.test(project)) throw new UserError(`Input \`gcp-project\`: \`${project}\` is not a project id.`);
  if (!region) throw new UserError('Input `gcp-region` is required with provider cloud-run (e.g. europe-west1).');
  if (!REGION.test(region)) throw new UserError(`Input \`gcp-region\`: \`${region}\` is not a region (e.g. europe-west1).`);
  if (!service) throw new UserError('Input `cloud-run-service` is required with provider cloud-run (the service name).');
  if (!SERVICE.test(service))
    throw new UserError(
      `Input \`cloud-run-service\`: \`${service}\` is not a service name (lower-case letters, digits, dashes; up to 49).`,
    );
  const revisionTag = getString('revision-tag');
  if (revisionTag && !TAG.test(revisionTag))
    throw new UserError(
      `Input \`revision-tag\`: \`${revisionTag}\` must be lower-case letters, digits and dashes, starting with a letter.`,
    );
  const noTraffic = getBoolean('no-traffic', false);
  if (noTraffic && !revisionTag)
    throw new UserError('Input `no-traffic: true` needs `revision-tag` (the URL to reach the new revision by).');
  const tokenInput = getString('gcp-access-token');
  maskSecret(tokenInput);
  const override = env.CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN?.trim();
  return {
    project,
    region,
    service,
    noTraffic,
    revisionTag,
    secrets: parseSecrets(getList('secrets', { commas: true })),
    tokenInput,
    apiBase: (override || 'https://run.googleapis.com').replace(/\/+$/, ''),
    timeoutMs: getDuration('release-timeout', 10 * 60_000),
  };
}

/** The container's env with `env` values set and secrets referenced; others kept. */
export function mergeEnv(existing: EnvVar[] | undefined, env: Map<string, string>, secrets: SecretRef[]): EnvVar[] {
  const replaced = new Set([...env.keys(), ...secrets.map((s) => s.env)]);
  const kept = (existing ?? []).filter((e) => !replaced.has(e.name));
  return [
    ...kept,
    ...[...env].map(([name, value]) => ({ name, value })),
    ...secrets.map((s) => ({ name: s.env, valueSource: { secretKeyRef: { secret: s.secret, version: s.version } } })),
  ];
}

/** `shop-20261122-023400-0123456-a1f`: the service name and the release id, up to 63 characters. */
export function revisionName(service: string, releaseId: string): string {
  const suffix = releaseId.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  return `${service}-${suffix}`.slice(0, 63).replace(/-+$/, '');
}

export class CloudRunProvider implements Provider {
  readonly name = 'cloud-run' as const;
  private api?: CloudRunApi;

  constructor(private readonly s: CloudRunSettings) {}

  private async client(log?: (line: string) => void): Promise<CloudRunApi> {
    if (!this.api) {
      const token = await googleAccessToken(process.env, this.s.tokenInput);
      log?.(`Google credentials: ${token.source}.`);
      this.api = new CloudRunApi(
        this.s.apiBase,
        token.accessToken,
        `projects/${this.s.project}/locations/${this.s.region}/services/${this.s.service}`,
      );
    }
    return this.api;
  }

  async validate(): Promise<void> {
    await (await this.client()).getService();
  }

  async currentRelease(): Promise<string | undefined> {
    return servingRevision(await (await this.client()).getService());
  }

  async deploy(ctx: DeployContext): Promise<DeployResult> {
    if (ctx.env.has('PORT'))
      throw new UserError('`env` must not set PORT on Cloud Run: the platform sets it (the container listens on it).');
    const api = await this.client(ctx.log);
    const service = await api.getService();
    const previous = servingRevision(service);
    ctx.log(`Cloud Run service ${this.s.service}: revision ${previous ?? '(none)'} serves now.`);
    const revision = revisionName(this.s.service, ctx.releaseId);
    const tag = this.s.revisionTag || `slipway-${ctx.releaseId.slice(-3)}`;
    const [first, ...others] = service.template.containers;
    if (!first) throw new UserError(`Cloud Run service ${this.s.service} has no container in its template.`);
    const container: Container = { ...first, image: ctx.image, env: mergeEnv(first.env, ctx.env, this.s.secrets) };
    const current = pinnedTraffic(service).filter((t) => t.tag !== tag);
    const traffic: TrafficTarget[] = current.some((t) => (t.percent ?? 0) > 0)
      ? [...current, { type: 'TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION', revision, percent: 0, tag }]
      : [{ type: 'TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION', revision, percent: 100, tag }];
    const staged = await api.update(
      { ...service, template: { ...service.template, revision, containers: [container, ...others] }, traffic },
      `create revision ${revision} (no traffic, tag ${tag})`,
      this.s.timeoutMs,
      ctx.log,
    );
    const tagUrl = staged.trafficStatuses?.find((t) => t.tag === tag)?.uri;
    if (!tagUrl) throw new UserError(`Cloud Run gave revision ${revision} no URL for tag ${tag}.`);
    const health = await this.check(tagUrl, ctx.health, ctx.log);
    if (!health.ok) {
      // The revision never had traffic; remove its tag so the split is as it was.
      await api.update({ ...staged, traffic: current }, `remove tag ${tag}`, this.s.timeoutMs, ctx.log);
      throw new HealthCheckError(`Cloud Run revision ${revision}`, health, ctx.health.expectedStatus);
    }
    const details = {
      project: this.s.project,
      region: this.s.region,
      service: this.s.service,
      revision,
      previousRevision: previous ?? null,
      tag,
    };
    if (this.s.noTraffic) {
      ctx.log(`no-traffic: revision ${revision} is healthy at ${tagUrl}; ${previous ?? 'the previous revision'} keeps serving.`);
      return { providerReleaseId: revision, url: tagUrl, health, details: { ...details, traffic: 0 } };
    }
    const live: TrafficTarget = { type: 'TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION', revision, percent: 100 };
    if (this.s.revisionTag) live.tag = this.s.revisionTag;
    const after = await api.update({ ...staged, traffic: [live] }, `send 100% of traffic to ${revision}`, this.s.timeoutMs, ctx.log);
    return { providerReleaseId: revision, url: after.uri ?? tagUrl, health, details: { ...details, traffic: 100 } };
  }

  async activate(record: ReleaseRecord, ctx: ActivateContext): Promise<DeployResult> {
    const api = await this.client(ctx.log);
    const service = await api.getService();
    const revision = record.providerReleaseId;
    // One target, no tags: the split is clean for the next deploy.
    const after = await api.update(
      { ...service, traffic: [{ type: 'TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION', revision, percent: 100 }] },
      `send 100% of traffic back to ${revision} and clear tags`,
      this.s.timeoutMs,
      ctx.log,
    );
    const url = after.uri ?? '';
    const health = await this.check(url, ctx.health, ctx.log);
    if (!health.ok) throw new HealthCheckError(`Cloud Run revision ${revision}`, health, ctx.health.expectedStatus);
    return {
      providerReleaseId: revision,
      url,
      health,
      details: { project: this.s.project, region: this.s.region, service: this.s.service, revision },
    };
  }

  async close(): Promise<void> {}

  private check(url: string, health: HealthCheck, log: (line: string) => void): Promise<HealthResult> {
    const target = healthUrl(health.path, url);
    log(`Health check ${target} (expect ${health.expectedStatus}).`);
    return waitForHealthy({
      url: target,
      expectedStatus: health.expectedStatus,
      timeoutMs: health.timeoutMs,
      intervalMs: 1000,
      maxIntervalMs: 5000,
      headers: health.hostHeader ? { Host: health.hostHeader } : undefined,
    });
  }
}

export function createCloudRunProvider(): Provider {
  return new CloudRunProvider(readCloudRunSettings());
}

export type { Service };
