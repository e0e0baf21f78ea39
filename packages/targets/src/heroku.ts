import * as fs from 'node:fs';
import * as path from 'node:path';
import { docker, imageExists, inspectImage } from '@slipway/toolkit/docker';
import { UserError } from '@slipway/toolkit/errors';
import { healthUrl, waitForHealthy, type HealthResult } from '@slipway/toolkit/health';
import { getDuration, getString } from '@slipway/toolkit/inputs';
import type { ReleaseRecord } from '@slipway/toolkit/releases';
import { runnerTemp } from '@slipway/toolkit/runner';
import { maskSecret } from '@slipway/toolkit/secrets';
import { poll } from './cloud-http';
import { HerokuApi, type HerokuRelease } from './heroku-api';
import { HealthCheckError, type ActivateContext, type DeployContext, type DeployResult, type HealthCheck, type Provider } from './types';

/**
 * heroku: a container release through the Platform API. The image is pushed to Heroku's registry
 * (registry.heroku.com/<app>/<process>, login `_` + API key on stdin), config vars are set from
 * `env`, then the formation is updated with the pushed image's id, which creates a release; with
 * a release phase the release stays `pending` until it ends, so it is polled to `succeeded` or
 * `failed` and the phase's output is printed. Rollback is Heroku's own: a new release made from
 * the earlier one (image and config vars).
 */

export interface HerokuSettings {
  app: string;
  apiKey: string;
  processType: string;
  apiUrl: string;
  registry: string;
  releaseTimeoutMs: number;
}

const APP = /^[a-z][a-z0-9-]{1,29}$/;

export function readHerokuSettings(env: NodeJS.ProcessEnv = process.env): HerokuSettings {
  const apiKey = getString('heroku-api-key') || env.HEROKU_API_KEY?.trim() || '';
  if (!apiKey) throw new UserError('provider heroku needs an API key: set input `heroku-api-key` or HEROKU_API_KEY (from a secret).');
  maskSecret(apiKey);
  const app = getString('heroku-app') || env.HEROKU_APP?.trim() || '';
  if (!app) throw new UserError('Input `heroku-app` is required with provider heroku (the Heroku app name).');
  if (!APP.test(app))
    throw new UserError(`Input \`heroku-app\`: \`${app}\` is not a Heroku app name (lower-case letters, digits, dashes).`);
  const processType = getString('heroku-process-type') || 'web';
  if (!/^[-\w]{1,128}$/.test(processType)) throw new UserError('Input `heroku-process-type` must be a process type name such as web.');
  const releaseTimeoutMs = getDuration('release-timeout', 15 * 60_000);
  return {
    app,
    apiKey,
    processType,
    // Overrides for a proxy or a local stand-in.
    apiUrl: (env.SLIPWAY_HEROKU_API_URL?.trim() || 'https://api.heroku.com').replace(/\/+$/, ''),
    registry: env.SLIPWAY_HEROKU_REGISTRY?.trim() || 'registry.heroku.com',
    releaseTimeoutMs,
  };
}

export class HerokuProvider implements Provider {
  readonly name = 'heroku' as const;
  private readonly api: HerokuApi;

  constructor(private readonly s: HerokuSettings) {
    this.api = new HerokuApi(s.apiUrl, s.apiKey, s.app);
  }

  async validate(): Promise<void> {
    await this.api.getApp(); // 401/404 here, before anything changes
  }

  async currentRelease(): Promise<string | undefined> {
    return (await this.api.currentRelease())?.id;
  }

  async deploy(ctx: DeployContext): Promise<DeployResult> {
    const app = await this.api.getApp();
    const before = await this.api.currentRelease();
    const newest = await this.api.latestRelease();
    ctx.log(`Heroku app ${app.name}: release v${before?.version ?? 0} serves now.`);

    const imageId = await this.pushImage(ctx);
    if (ctx.env.size) {
      await this.api.setConfigVars(Object.fromEntries(ctx.env));
      ctx.log(`Set ${ctx.env.size} config var(s): ${[...ctx.env.keys()].join(', ')}.`);
    }
    await this.api.releaseImage(this.s.processType, imageId);
    const created = await this.newestAfter(newest);
    ctx.log(`Release v${created.version} created (${created.description}).`);
    const release = await this.waitForRelease(created, ctx.log);
    const url = app.web_url ?? `https://${this.s.app}.herokuapp.com/`;
    if (release.status !== 'succeeded') {
      // A failed release phase leaves the earlier release serving: Heroku did not switch.
      throw new UserError(
        `Heroku release v${release.version} ${release.status} (release phase); release v${before?.version ?? 0} keeps serving.`,
      );
    }
    const health = await this.check(url, ctx.health, ctx.log);
    if (!health.ok) {
      const error = new HealthCheckError(`Heroku release v${release.version}`, health, ctx.health.expectedStatus);
      if (ctx.rollbackOnFailure && before) {
        ctx.log(`Health check failed; rolling back to v${before.version}.`);
        const back = await this.waitForRelease(await this.api.rollback(before.id), ctx.log);
        ctx.log(`Rolled back: v${back.version} (${back.status}) serves v${before.version}'s image and config.`);
        throw Object.assign(error, { rolledBack: true });
      }
      throw error;
    }
    return { providerReleaseId: release.id, url, health, details: { app: this.s.app, version: release.version, imageId } };
  }

  async activate(record: ReleaseRecord, ctx: ActivateContext): Promise<DeployResult> {
    const app = await this.api.getApp();
    const target = await this.api.getRelease(record.providerReleaseId);
    ctx.log(`Heroku app ${app.name}: rolling back to release v${target.version}.`);
    const release = await this.waitForRelease(await this.api.rollback(target.id), ctx.log);
    if (release.status !== 'succeeded') throw new UserError(`Heroku rollback release v${release.version} ${release.status}.`);
    const url = app.web_url ?? `https://${this.s.app}.herokuapp.com/`;
    const health = await this.check(url, ctx.health, ctx.log);
    if (!health.ok) throw new HealthCheckError(`Heroku release v${release.version}`, health, ctx.health.expectedStatus);
    return {
      providerReleaseId: release.id,
      url,
      health,
      details: { app: this.s.app, version: release.version, rollbackOf: target.version },
    };
  }

  async close(): Promise<void> {
    // the registry login is gone with its DOCKER_CONFIG right after the push
  }

  /**
   * Pushes the image to registry.heroku.com/<app>/<process> and returns its image id (sha256:…).
   * The login lives in a private DOCKER_CONFIG, removed afterwards: the runner's own Docker
   * credentials are never touched and the API key never outlives the push.
   */
  protected async pushImage(ctx: DeployContext): Promise<string> {
    if (!(await imageExists(ctx.image))) await docker(['pull', ctx.image], { label: `Pulling ${ctx.image}` });
    const target = `${this.s.registry}/${this.s.app}/${this.s.processType}`;
    const config = fs.mkdtempSync(path.join(runnerTemp(), 'slipway-heroku-docker-'));
    const env = { DOCKER_CONFIG: config };
    try {
      const loggedIn = await docker(['login', '--username', '_', '--password-stdin', this.s.registry], {
        input: this.s.apiKey,
        env,
        silent: true,
        allowFailure: true,
      });
      if (loggedIn.exitCode !== 0) {
        const why = (loggedIn.stderr.trim().split('\n').pop() ?? '').split(this.s.apiKey).join('***');
        throw new UserError(`Login to ${this.s.registry} with the Heroku API key failed: ${why || `exit code ${loggedIn.exitCode}`}`);
      }
      await docker(['tag', ctx.image, target], { silent: true });
      await docker(['push', target], { env, label: `Pushing ${target}` });
    } finally {
      fs.rmSync(config, { recursive: true, force: true });
    }
    const { id } = await inspectImage(target);
    if (!/^sha256:[0-9a-f]{64}$/.test(id)) throw new UserError(`Could not read the image id of ${target} (got ${id}).`);
    ctx.log(`Pushed ${ctx.image} to ${target} (image id ${id.slice(0, 19)}…).`);
    return id;
  }

  /** The release the formation update created: the newest one, newer than `before`. */
  private async newestAfter(before: HerokuRelease | undefined): Promise<HerokuRelease> {
    return poll(
      async () => {
        const latest = await this.api.latestRelease();
        return latest && latest.version > (before?.version ?? 0) && latest.description.startsWith('Deployed') ? latest : undefined;
      },
      {
        timeoutMs: 60_000,
        baseMs: 500,
        capMs: 5000,
        onTimeout: () => new UserError('Heroku did not create a release for the new image within 60 s.'),
      },
    );
  }

  private async waitForRelease(release: HerokuRelease, log: (line: string) => void): Promise<HerokuRelease> {
    if (release.status === 'pending') log(`Release v${release.version} is running its release phase…`);
    const done = await poll(
      async () => {
        const r = release.status === 'pending' ? await this.api.getRelease(release.id) : release;
        release = r;
        return r.status === 'pending' ? undefined : r;
      },
      {
        timeoutMs: this.s.releaseTimeoutMs,
        baseMs: 1000,
        capMs: 10_000,
        onTimeout: () => new UserError(`Heroku release v${release.version} was still pending after ${this.s.releaseTimeoutMs / 1000} s.`),
      },
    );
    if (done.output_stream_url) {
      const output = await this.api.releaseOutput(done.output_stream_url);
      if (output.trim()) log(`Release phase output (v${done.version}):\n${output.trimEnd()}`);
    }
    log(`Release v${done.version}: ${done.status}.`);
    return done;
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

export function createHerokuProvider(): Provider {
  return new HerokuProvider(readHerokuSettings());
}
