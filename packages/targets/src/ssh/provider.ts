import * as core from '@actions/core';
import { UserError } from '@slipway/toolkit/errors';
import { healthUrl, waitForHealthy, type HealthResult } from '@slipway/toolkit/health';
import type { ReleaseMigrations, ReleaseRecord } from '@slipway/toolkit/releases';
import { freeLocalPort, SshClient } from '@slipway/toolkit/ssh';
import { HealthCheckError, type ActivateContext, type DeployContext, type DeployResult, type HealthCheck, type Provider } from '../types';
import { enableCommands, otherSlot, slotPort, type ProxyLayout } from './haproxy';
import { keptMismatch, localImageId, RemoteHost, type HostCurrent, type KeptContainer } from './host';
import type { SshInputs } from './inputs';

/** What one host went through in this run: enough to put it back. */
export interface HostStep {
  host: RemoteHost;
  previous?: HostCurrent;
  now: HostCurrent;
  check: HealthCheck;
  health: HealthResult;
  /** This run wrote the release's env file (a deploy, not a kept release served again). */
  wroteEnv?: boolean;
  /** The release migrated the database on this host (release-dir, `migrate: true`, first host). */
  migrations?: ReleaseMigrations;
}

interface RollOut {
  releaseId: string;
  image: string;
  environment: string;
  /** Env file content to upload; undefined: reuse the one kept on the host (activate). */
  envFile?: string;
  /** The release's kept container (activate): started again when it fits the slot. */
  kept?: KeptContainer;
  health: HealthCheck;
  log: (line: string) => void;
}

/**
 * Kamal-like deploys to hosts with Docker over SSH, one host at a time: lock, image by digest,
 * env file (0600, stdin), new container on the idle slot, health check through an SSH forward,
 * HAProxy runtime switch with drain, old container stopped and kept, prune, unlock.
 */
export class SshProvider implements Provider {
  readonly name = 'ssh' as const;
  protected readonly ssh: SshClient;
  protected readonly hosts: RemoteHost[];
  /** Forwards being closed: off the way to the switch, awaited before the locks go. */
  protected readonly closing: Promise<void>[] = [];

  constructor(
    protected readonly inputs: SshInputs,
    appName: string,
    private readonly lockOwner: string,
  ) {
    this.ssh = new SshClient({ privateKey: inputs.privateKey, knownHosts: inputs.knownHosts, jumpHost: inputs.jumpHost });
    const layout: ProxyLayout = {
      dir: `${inputs.remoteDir}/${appName}`,
      bindAddress: inputs.proxyAddress,
      proxyPort: inputs.proxyPort,
      appPort: inputs.appPort,
    };
    this.hosts = inputs.hosts.map((t) => new RemoteHost(this.ssh, t, appName, layout));
  }

  async validate(): Promise<void> {
    for (const host of this.hosts) await host.connect();
  }

  /** Containers and env files are named by the release id itself. */
  plannedReleaseId(releaseId: string): string {
    return releaseId;
  }

  async currentRelease(): Promise<string | undefined> {
    const host = this.hosts[0]!;
    await host.connect();
    return (await host.readCurrent())?.releaseId;
  }

  async deploy(ctx: DeployContext): Promise<DeployResult> {
    for (const [k, v] of ctx.env) {
      if (/[\r\n]/.test(v)) throw new UserError(`Variable \`${k}\` has a multi-line value: Docker env files hold one line per variable.`);
    }
    const envFile = [...ctx.env].map(([k, v]) => `${k}=${v}\n`).join('');
    return this.rolling(ctx.rollbackOnFailure, ctx.keepReleases, (host) =>
      this.rollOut(host, {
        releaseId: ctx.releaseId,
        image: ctx.image,
        environment: ctx.environment,
        envFile,
        health: ctx.health,
        log: ctx.log,
      }),
    );
  }

  async activate(record: ReleaseRecord, ctx: ActivateContext): Promise<DeployResult> {
    return this.rolling(true, Number.POSITIVE_INFINITY, async (host) => {
      const kept = await host.keptContainer(record.providerReleaseId);
      // A kept container has its environment in it; without one, the kept env file recreates it.
      if (!kept && !(await host.envExists(record.providerReleaseId))) {
        throw new UserError(`Release ${record.providerReleaseId} is no longer kept on ${host.name} (pruned by \`keep-releases\`).`);
      }
      return this.rollOut(host, {
        releaseId: record.providerReleaseId,
        image: kept?.image ?? record.image,
        environment: ctx.environment,
        health: ctx.health,
        log: ctx.log,
        kept,
      });
    });
  }

  async close(): Promise<void> {
    await this.ssh.close();
  }

  /** Hosts one at a time, all locks held to the end; first failure stops and (optionally) undoes. */
  protected async rolling(rollbackOnFailure: boolean, keep: number, step: (host: RemoteHost) => Promise<HostStep>): Promise<DeployResult> {
    const locked: RemoteHost[] = [];
    const done: HostStep[] = [];
    let health: HealthResult | undefined;
    try {
      for (const host of this.hosts) {
        await core.group(`Deploy to ${host.name}`, async () => {
          await host.connect();
          await host.lock(this.lockOwner, core.warning);
          locked.push(host);
          if (this.inputs.setupHost) await host.setupProxy(core.info);
          else if (!(await host.proxyRunning())) {
            throw new UserError(
              `HAProxy is not set up on ${host.name} (no admin socket in ${host.dir}): deploy once with \`setup-host: true\` (docs/deploy.md).`,
            );
          }
          const result = await step(host);
          done.push(result);
          health = result.health;
        });
      }
      // Only once every host serves the new release: until then, a host already switched may have
      // to go back to its previous release, whose container pruning could remove (keep-releases 1).
      if (Number.isFinite(keep)) for (const s of done) await this.prune(s.host, keep);
    } catch (error) {
      if (rollbackOnFailure && done.length > 0) {
        let all = true;
        for (const s of [...done].reverse()) {
          await core
            .group(`Roll back ${s.host.name}`, () => this.rollBack(s))
            .catch((e: unknown) => {
              all = false;
              core.error(`Could not roll back ${s.host.name}: ${e instanceof Error ? e.message : String(e)}`);
            });
        }
        if (all && error instanceof Error) Object.assign(error, { rolledBack: true });
      }
      throw error;
    } finally {
      await Promise.all(this.closing.splice(0));
      for (const host of locked) await host.unlock();
    }
    const last = done[done.length - 1]!;
    return {
      providerReleaseId: last.now.releaseId,
      url: this.inputs.url,
      health,
      migrations: done.find((s) => s.migrations)?.migrations,
      details: {
        hosts: done.map((s) => ({
          host: s.host.name,
          slot: s.now.slot,
          container: s.now.container,
          previous: s.previous?.releaseId ?? null,
        })),
      },
    };
  }

  private async rollOut(host: RemoteHost, r: RollOut): Promise<HostStep> {
    const previous = await host.readCurrent();
    const slot = previous ? otherSlot(previous.slot) : 'blue';
    const port = slotPort(host.layout, slot);
    // A kept container's image is on the host for as long as the container is.
    const image = r.kept ? r.kept.image : await this.ensureImage(host, r.image, r.log);
    if (r.kept) r.log(`${host.name}: image already present (${image.slice(0, 19)}, the kept container's)`);
    if (r.envFile !== undefined) await host.writeEnv(r.releaseId, r.envFile);
    // Whatever still runs besides the serving release (a crashed deploy's container) would hold the port.
    const name = host.containerName(r.releaseId);
    for (const c of await host.containers()) {
      if (c.state === 'running' && c.name !== previous?.container && c.name !== name) await host.stopContainer(c.name);
    }
    const spec = { releaseId: r.releaseId, image, environment: r.environment, slot, port };
    // A release served again (rollback) starts its kept container when it fits: no create, same config.
    const misfit = r.kept ? keptMismatch(r.kept, spec) : 'new release';
    if (r.kept && misfit === undefined) {
      await host.run(['docker', 'start', name], { label: 'Starting the kept container' });
      r.log(`${host.name}: started the kept container ${name} again on slot ${slot} (port ${port})`);
    } else {
      if (r.kept) {
        if (!(await host.envExists(r.releaseId))) {
          throw new UserError(`Release ${r.releaseId} cannot be recreated on ${host.name}: ${misfit}, and its env file was pruned.`);
        }
        r.log(`${host.name}: recreating ${name} (${misfit})`);
      }
      r.log(`${host.name}: starting ${name} on slot ${slot} (port ${port})`);
      await host.startContainer(spec);
    }
    const health = await this.checkHealth(host, port, r.health, r.log);
    if (!health.ok) {
      const logs = await host.containerLogs(name);
      if (logs) core.info(`Last lines of ${name}:\n${logs}`);
      await host.removeContainer(name);
      if (r.envFile !== undefined) await host.run(['rm', '-f', host.envFile(r.releaseId)], { allowFailure: true });
      throw new HealthCheckError(`${name} on ${host.name}`, health, r.health.expectedStatus);
    }
    await host.proxy(enableCommands(slot, previous?.slot));
    const now: HostCurrent = { releaseId: r.releaseId, container: name, slot, image };
    try {
      if (previous) await host.drain(previous.slot, this.inputs.drainTimeoutMs);
      await host.writeCurrent(now);
    } catch (error) {
      // Traffic moved but `current` does not say so: move it back while the old container still runs.
      if (previous) await this.switchBack(host, previous, now, r, error);
      throw error;
    }
    if (previous && previous.container !== name) await host.stopContainer(previous.container);
    r.log(`${host.name}: ${r.releaseId} serves on slot ${slot}`);
    return { host, previous, now, check: r.health, health, wroteEnv: r.envFile !== undefined };
  }

  /** After a failure between the switch and recording it: the previous slot serves again, the new container goes. */
  private async switchBack(host: RemoteHost, previous: HostCurrent, now: HostCurrent, r: RollOut, error: unknown): Promise<void> {
    try {
      await host.proxy(enableCommands(previous.slot, now.slot));
      await host.drain(now.slot, this.inputs.drainTimeoutMs);
      // Stopped gracefully, like any replaced release: it served requests until a moment ago.
      await host.stopContainer(now.container);
      if (r.envFile !== undefined) {
        await host.removeContainer(now.container);
        await host.run(['rm', '-f', host.envFile(now.releaseId)], { allowFailure: true });
      }
      if (error instanceof Error) Object.assign(error, { rolledBack: true });
      core.warning(`${host.name}: the switch to ${now.releaseId} could not be recorded; ${previous.releaseId} serves again.`);
    } catch (e) {
      core.error(`Could not move traffic back to ${previous.releaseId} on ${host.name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Puts a host back on the release it served before this run. */
  protected async rollBack(step: HostStep): Promise<void> {
    const { host, previous, now, check } = step;
    if (!previous) {
      core.warning(`${host.name} had no previous release to go back to; ${now.releaseId} keeps serving.`);
      return;
    }
    await host.run(['docker', 'start', previous.container], { label: 'Restarting the previous container' });
    const port = slotPort(host.layout, previous.slot);
    const health = await this.checkHealth(host, port, check, core.info);
    if (!health.ok) throw new UserError(`The previous release ${previous.releaseId} did not come back healthy on ${host.name}.`);
    await host.proxy(enableCommands(previous.slot, now.slot));
    await host.drain(now.slot, this.inputs.drainTimeoutMs);
    await host.writeCurrent(previous);
    // Stopped gracefully, like any replaced release (it served until a moment ago), then removed
    // with the env file this run wrote: nothing of the undone release stays behind.
    await host.stopContainer(now.container);
    await host.removeContainer(now.container);
    if (step.wroteEnv) await host.run(['rm', '-f', host.envFile(now.releaseId)], { allowFailure: true });
    core.info(`${host.name}: back on ${previous.releaseId}`);
  }

  /** Checks a slot directly, through an SSH forward, before it gets any traffic. */
  protected async checkHealth(host: RemoteHost, port: number, check: HealthCheck, log: (l: string) => void): Promise<HealthResult> {
    const localPort = await freeLocalPort();
    const cancel = await this.ssh.forward(host.target, localPort, port);
    try {
      const base = `http://127.0.0.1:${localPort}`;
      // A full URL names the path to check; the slot itself is what gets checked.
      const path = /^https?:\/\//i.test(check.path) ? new URL(check.path).pathname + new URL(check.path).search : check.path;
      const url = healthUrl(path, base);
      const result = await waitForHealthy(
        {
          url,
          expectedStatus: check.expectedStatus,
          timeoutMs: check.timeoutMs,
          // The slot is polled over the SSH forward, not the public URL: often, so a release
          // that is up gets traffic within half a second of its first healthy answer.
          intervalMs: 200,
          maxIntervalMs: 500,
          headers: check.hostHeader ? { Host: check.hostHeader } : undefined,
        },
        (n, problem) => core.debug(`health attempt ${n}: ${problem}`),
      );
      log(`${host.name}: health ${result.ok ? 'passed' : 'FAILED'} after ${result.attempts} attempt(s), ${result.elapsedMs} ms`);
      return result;
    } finally {
      this.closing.push(cancel().catch(() => undefined));
    }
  }

  private async ensureImage(host: RemoteHost, image: string, log: (l: string) => void): Promise<string> {
    if (await host.hasImage(image)) {
      log(`${host.name}: image already present`);
      return image;
    }
    const mode = this.inputs.imageTransfer;
    if (mode !== 'pull') {
      // A streamed image has no registry digest on the host: look for it by id (the runner's copy, no pull).
      const id = await localImageId(image);
      if (id && (await host.hasImage(id))) {
        log(`${host.name}: image already present (${id.slice(0, 19)}, by image id; not streamed again)`);
        return id;
      }
    }
    if (mode !== 'stream') {
      const pulled = await host.pull(image);
      if (pulled.ok) {
        log(`${host.name}: pulled ${image}`);
        return image;
      }
      if (mode === 'pull') throw new UserError(`${host.name} could not pull ${image}: ${pulled.why}`);
      log(`${host.name}: cannot pull (${pulled.why}); streaming the image over SSH`);
    }
    return host.stream(image, log);
  }

  /** Keeps the newest `keep` releases (containers, env files, images); the serving one always. */
  protected async prune(host: RemoteHost, keep: number): Promise<void> {
    const current = await host.readCurrent();
    const containers = await host.containers();
    const stale = containers.filter((c) => c.name !== current?.container).slice(Math.max(0, keep - 1));
    for (const c of stale) {
      await host.removeContainer(c.name);
      await host.run(['rm', '-f', host.envFile(c.releaseId)], { allowFailure: true });
      await host.run(['docker', 'image', 'rm', c.image], { allowFailure: true });
    }
    if (stale.length) core.info(`${host.name}: pruned ${stale.map((c) => c.releaseId).join(', ')}`);
  }
}
