import { UserError } from '@slipway/toolkit/errors';
import { healthUrl, waitForHealthy, type HealthResult } from '@slipway/toolkit/health';
import { getDuration, getInteger, getString } from '@slipway/toolkit/inputs';
import type { ReleaseRecord } from '@slipway/toolkit/releases';
import { awsEndpoint, awsFromEnv, type AwsEnvironment } from './aws-credentials';
import { ElasticBeanstalk, type EbEnvironment } from './aws-eb-api';
import { putObject, s3ObjectUrl } from './aws-s3';
import { zipFiles } from './aws-zip';
import { poll } from './cloud-http';
import { HealthCheckError, type ActivateContext, type DeployContext, type DeployResult, type HealthCheck, type Provider } from './types';

/**
 * aws-eb: an application version made from the image (a Dockerrun.aws.json v1 source bundle,
 * zipped, uploaded to S3), deployed with UpdateEnvironment (the `env` as environment
 * properties), then DescribeEnvironments polled with backoff until Ready and Green, within a
 * timeout. On a failure the environment's recent events are printed and the previous version
 * deployed again. Rollback deploys a recorded version label.
 */

export interface EbSettings {
  aws: AwsEnvironment;
  application: string;
  environment: string;
  bucket: string;
  keyPrefix: string;
  containerPort: number;
  endpoint: string;
  timeoutMs: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$/;
const ENV_NAME = /^[A-Za-z0-9][A-Za-z0-9-]{2,39}$/;
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function readEbSettings(env: NodeJS.ProcessEnv = process.env): EbSettings {
  const application = getString('eb-application');
  const environment = getString('eb-environment');
  const bucket = getString('eb-s3-bucket');
  if (!application) throw new UserError('Input `eb-application` is required with provider aws-eb (the Elastic Beanstalk application).');
  if (!environment)
    throw new UserError('Input `eb-environment` is required with provider aws-eb (the Elastic Beanstalk environment name).');
  if (!bucket) throw new UserError('Input `eb-s3-bucket` is required with provider aws-eb (the S3 bucket for source bundles).');
  if (!NAME.test(application))
    throw new UserError(`Input \`eb-application\`: \`${application}\` is not an application name (1-100 characters).`);
  if (!ENV_NAME.test(environment))
    throw new UserError(`Input \`eb-environment\`: \`${environment}\` is not an environment name (4-40 letters, digits, dashes).`);
  if (!BUCKET.test(bucket)) throw new UserError(`Input \`eb-s3-bucket\`: \`${bucket}\` is not an S3 bucket name.`);
  const aws = awsFromEnv(env, getString('aws-region'));
  return {
    aws,
    application,
    environment,
    bucket,
    keyPrefix: `slipway/${application}/${environment}`,
    containerPort: getInteger('eb-container-port', 8000, { min: 1, max: 65535 }),
    endpoint: awsEndpoint(env, 'ELASTIC_BEANSTALK', `https://elasticbeanstalk.${aws.region}.amazonaws.com`).url,
    timeoutMs: getDuration('release-timeout', 20 * 60_000),
  };
}

/** Dockerrun.aws.json v1: the single-container Docker platform's description of the image. */
export function dockerrun(image: string, containerPort: number): string {
  return `${JSON.stringify({ AWSEBDockerrunVersion: '1', Image: { Name: image, Update: 'true' }, Ports: [{ ContainerPort: containerPort }] }, null, 2)}\n`;
}

export class ElasticBeanstalkProvider implements Provider {
  readonly name = 'aws-eb' as const;
  private readonly eb: ElasticBeanstalk;

  constructor(private readonly s: EbSettings) {
    this.eb = new ElasticBeanstalk(s.endpoint, s.aws, s.application, s.environment);
  }

  async validate(): Promise<void> {
    await this.environment();
  }

  async currentRelease(): Promise<string | undefined> {
    return (await this.environment()).VersionLabel;
  }

  async deploy(ctx: DeployContext): Promise<DeployResult> {
    const started = new Date();
    const before = await this.waitReady(ctx.log, 'before deploying');
    ctx.log(`Environment ${this.s.environment}: version ${before.VersionLabel ?? '(none)'} serves now.`);
    const label = ctx.releaseId.slice(0, 100);
    const key = `${this.s.keyPrefix}/${label}.zip`;
    const bundle = zipFiles([{ name: 'Dockerrun.aws.json', content: dockerrun(ctx.image, this.s.containerPort) }]);
    await putObject(s3ObjectUrl(process.env, this.s.aws.region, this.s.bucket, key), bundle, {
      region: this.s.aws.region,
      credentials: this.s.aws.credentials,
      contentType: 'application/zip',
    });
    ctx.log(`Uploaded source bundle s3://${this.s.bucket}/${key} (${bundle.length} bytes).`);
    await this.eb.createApplicationVersion(label, `${ctx.environment} ${ctx.image}`, this.s.bucket, key);
    ctx.log(`Application version ${label} created.`);
    await this.eb.updateEnvironment(label, ctx.env);
    ctx.log(`UpdateEnvironment: ${label}${ctx.env.size ? ` with ${ctx.env.size} environment propert(ies)` : ''}.`);

    let healthy: EbEnvironment;
    try {
      healthy = await this.waitGreen(label, started, ctx.log);
    } catch (error) {
      await this.printEvents(started, ctx.log);
      throw Object.assign(error as Error, { rolledBack: await this.restore(before, ctx) });
    }
    const url = this.urlOf(healthy);
    const health = await this.check(url, ctx.health, ctx.log);
    if (!health.ok) {
      const error = new HealthCheckError(`Elastic Beanstalk version ${label}`, health, ctx.health.expectedStatus);
      throw Object.assign(error, { rolledBack: await this.restore(before, ctx) });
    }
    return {
      providerReleaseId: label,
      url,
      health,
      details: {
        region: this.s.aws.region,
        application: this.s.application,
        environment: this.s.environment,
        sourceBundle: `s3://${this.s.bucket}/${key}`,
      },
    };
  }

  async activate(record: ReleaseRecord, ctx: ActivateContext): Promise<DeployResult> {
    const started = new Date();
    await this.waitReady(ctx.log, 'before the rollback');
    await this.eb.updateEnvironment(record.providerReleaseId);
    ctx.log(`UpdateEnvironment: back to version ${record.providerReleaseId}.`);
    let env: EbEnvironment;
    try {
      env = await this.waitGreen(record.providerReleaseId, started, ctx.log);
    } catch (error) {
      await this.printEvents(started, ctx.log);
      throw error;
    }
    const url = this.urlOf(env);
    const health = await this.check(url, ctx.health, ctx.log);
    if (!health.ok) throw new HealthCheckError(`Elastic Beanstalk version ${record.providerReleaseId}`, health, ctx.health.expectedStatus);
    return {
      providerReleaseId: record.providerReleaseId,
      url,
      health,
      details: { region: this.s.aws.region, environment: this.s.environment },
    };
  }

  async close(): Promise<void> {}

  private async environment(): Promise<EbEnvironment> {
    const env = await this.eb.describeEnvironment();
    if (!env) {
      throw new UserError(
        `Elastic Beanstalk environment \`${this.s.environment}\` of application \`${this.s.application}\` was not found in ${this.s.aws.region}.`,
      );
    }
    return env;
  }

  private urlOf(env: EbEnvironment): string {
    const host = env.CNAME || env.EndpointURL;
    if (!host) throw new UserError(`Elastic Beanstalk environment ${this.s.environment} has no CNAME or endpoint URL.`);
    return /^https?:\/\//.test(host) ? host : `http://${host}/`;
  }

  /** An update is refused while another runs: wait for Ready first. */
  private async waitReady(log: (line: string) => void, when: string): Promise<EbEnvironment> {
    let last = await this.environment();
    if (last.Status === 'Ready') return last;
    log(`Environment is ${last.Status}; waiting for Ready ${when}.`);
    return poll(
      async () => {
        last = await this.environment();
        return last.Status === 'Ready' ? last : undefined;
      },
      {
        timeoutMs: this.s.timeoutMs,
        baseMs: 2000,
        capMs: 20_000,
        onTimeout: () => new UserError(`Environment ${this.s.environment} stayed ${last.Status} ${when}.`),
      },
    );
  }

  /** Ready, Green and running `label`; fails early when EB reports an error or another version. */
  private async waitGreen(label: string, since: Date, log: (line: string) => void): Promise<EbEnvironment> {
    let last: EbEnvironment | undefined;
    let shown = '';
    let seenUpdate = false;
    return poll(
      async () => {
        last = await this.environment();
        const state = `${last.Status}/${last.Health ?? '?'}${last.HealthStatus ? ` (${last.HealthStatus})` : ''}`;
        if (state !== shown) log(`Environment ${state}, version ${last.VersionLabel ?? '?'}.`);
        shown = state;
        if (last.Status !== 'Ready') {
          seenUpdate = true;
          return undefined;
        }
        // DescribeEnvironments may lag UpdateEnvironment for a moment: Ready with another label
        // means "rolled back" only once the update was seen, or after a minute.
        if (last.VersionLabel !== label && !seenUpdate && Date.now() - since.getTime() < 60_000) return undefined;
        if (last.VersionLabel !== label)
          throw new UserError(
            `Elastic Beanstalk did not deploy ${label}: the environment runs ${last.VersionLabel ?? 'nothing'} (it rolled back).`,
          );
        if (last.Health === 'Green') return last;
        const errors = (await this.eb.events(since)).filter((e) => e.Severity === 'ERROR' || e.Severity === 'FATAL');
        if (last.Health === 'Red' && errors.length)
          throw new UserError(`Elastic Beanstalk deploy of ${label} failed: ${errors[0]!.Message}`);
        return undefined;
      },
      {
        timeoutMs: this.s.timeoutMs,
        baseMs: 2000,
        capMs: 20_000,
        onTimeout: () =>
          new UserError(
            `Environment ${this.s.environment} was not Ready and Green within ${Math.round(this.s.timeoutMs / 1000)} s (last: ${shown || 'unknown'}).`,
          ),
      },
    );
  }

  private async printEvents(since: Date, log: (line: string) => void): Promise<void> {
    try {
      const events = await this.eb.events(since);
      if (!events.length) return;
      log(`Recent events of ${this.s.environment}:`);
      for (const e of [...events].reverse()) log(`  ${e.EventDate} ${e.Severity ?? ''} ${e.Message}`);
    } catch (error) {
      log(`Could not read the environment's events: ${(error as Error).message}`);
    }
  }

  /** Deploys the version that served before, so a failed deploy leaves it serving. */
  private async restore(before: EbEnvironment, ctx: DeployContext): Promise<boolean> {
    if (!ctx.rollbackOnFailure || !before.VersionLabel) return false;
    ctx.log(`Rolling back to version ${before.VersionLabel}.`);
    const started = new Date();
    await this.waitReady(ctx.log, 'before rolling back');
    await this.eb.updateEnvironment(before.VersionLabel);
    await this.waitGreen(before.VersionLabel, started, ctx.log);
    ctx.log(`Version ${before.VersionLabel} serves again.`);
    return true;
  }

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

export function createElasticBeanstalkProvider(): Provider {
  return new ElasticBeanstalkProvider(readEbSettings());
}
