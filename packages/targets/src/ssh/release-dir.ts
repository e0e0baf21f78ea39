import { execFile } from 'node:child_process';
import * as core from '@actions/core';
import { UserError } from '@slipway/toolkit/errors';
import { SshConnectionError } from '@slipway/toolkit/ssh';
import type { MigrationHost } from '@slipway/migrate/lib';
import { migrateRelease } from '@slipway/migrate/release';
import type { ReleaseMigrations, ReleaseRecord } from '@slipway/toolkit/releases';
import { HealthCheckError, type ActivateContext, type DeployContext, type DeployResult, type HealthCheck } from '../types';
import { enableCommands, otherSlot, slotPort } from './haproxy';
import type { HostCurrent, RemoteHost } from './host';
import type { SshInputs } from './inputs';
import { SshProvider, type HostStep } from './provider';
import type { ReleaseDirInputs } from './release-dir-inputs';
import {
  envFilePath,
  envLinkArgv,
  gunicornArgv,
  installArgv,
  logFile,
  manageArgv,
  releaseDir,
  releasesToPrune,
  sharedLinkArgv,
  stopArgv,
  switchLinkArgv,
  unfinishedArgv,
  unfinishedMark,
  UNFINISHED_MARK,
  unpackArgv,
  venvArgv,
  venvDir,
  type GunicornSpec,
  type ReleaseLayout,
} from './release-dir-plan';
import { releaseMigrationHost } from './release-migration-host';

/** How long a replaced gunicorn gets to finish its requests after TERM (gunicorn's own default is 30 s). */
const STOP_GRACE_SEC = 35;
const SPEC_FILE = '.slipway-release.json';

interface Build {
  archive: Buffer;
  envFile: string;
  /** This host's release migrates the database (`migrate: true`, first host); `migrated` hears the outcome. */
  migrate: boolean;
  migrated?: (migrations: ReleaseMigrations) => Promise<void>;
}

/** How a release dir is served, kept in it (.slipway-release.json) so a rollback needs no checkout. */
export interface ReleaseSpec {
  projectDir: string;
  gunicorn: GunicornSpec;
  /** `restart-commands` as the release was deployed with (older spec files lack it). */
  restart?: string[][];
}

interface ReleaseRollOut {
  releaseId: string;
  /** `git:<sha>`: what the release record calls the release's source. */
  image: string;
  /** Set for a new release; undefined: serve a kept release dir again (rollback). */
  build?: Build;
  health: HealthCheck;
  log: (line: string) => void;
}

/**
 * `ssh-runtime: release-dir`: the ssh provider for hosts without Docker, Capistrano style. The
 * checked-out commit (`git archive`, streamed over SSH stdin) is unpacked into
 * releases/<id>, gets its own venv, its env file (0600, stdin), collectstatic and, with
 * `migrate: true`, its migrations (the migrate action's logic, in the release on the first host:
 * plan, lock, apply, state after); its gunicorn starts as a daemon on the idle HAProxy slot, is
 * health-checked through an SSH forward, and only then gets traffic (runtime API, drain). The
 * old gunicorn is stopped gracefully and `current` moves by rename(2). Lock, slots, the
 * rolling over hosts and the release record are the Docker runtime's (provider.ts).
 */
export class ReleaseDirProvider extends SshProvider {
  readonly migratesOnTarget = true;

  constructor(
    inputs: SshInputs,
    /** Undefined for rollback (no checkout needed): a kept release says how it is served. */
    private readonly rd: ReleaseDirInputs | undefined,
    appName: string,
    lockOwner: string,
  ) {
    super(inputs, appName, lockOwner);
  }

  override async currentRelease(): Promise<string | undefined> {
    const host = this.hosts[0]!;
    await host.connect();
    return (await this.readServing(host))?.releaseId;
  }

  override async deploy(ctx: DeployContext): Promise<DeployResult> {
    for (const [k, v] of ctx.env) {
      if (/[\r\n]/.test(v))
        throw new UserError(`Variable \`${k}\` has a multi-line value: the release's env file holds one line per variable.`);
    }
    if (!this.rd) throw new Error('release-dir: deploy needs the checkout inputs');
    const envFile = [...ctx.env].map(([k, v]) => `${k}=${v}\n`).join('');
    const { archive, sha } = await this.archive();
    ctx.log(`Release ${ctx.releaseId}: commit ${sha} (${(archive.length / 1024).toFixed(0)} KiB packed)`);
    let migrate = ctx.migrate === true;
    return this.rolling(ctx.rollbackOnFailure, ctx.keepReleases, async (host) => {
      const step = await this.rollOutRelease(host, {
        releaseId: ctx.releaseId,
        image: `git:${sha}`,
        build: { archive, envFile, migrate, migrated: ctx.migrated },
        health: ctx.health,
        log: ctx.log,
      });
      // Once per deploy: the first host's release migrates the shared database.
      migrate = false;
      return step;
    });
  }

  override async activate(record: ReleaseRecord, ctx: ActivateContext): Promise<DeployResult> {
    return this.rolling(true, Number.POSITIVE_INFINITY, (host) =>
      this.rollOutRelease(host, { releaseId: record.providerReleaseId, image: record.image, health: ctx.health, log: ctx.log }),
    );
  }

  /** The recorded release's venv Python in its kept release dir on the first host (the database is shared). */
  async migrationHost(record: ReleaseRecord): Promise<{ host: MigrationHost; close(): Promise<void> }> {
    const host = this.hosts[0]!;
    await host.connect();
    const id = record.providerReleaseId || record.id;
    const spec = await this.specOf(host, id);
    const l = this.layoutOf(host, spec);
    const kept = await host.run(['test', '-x', `${venvDir(l, id)}/bin/python`, '-a', '-f', envFilePath(l, id)], { allowFailure: true });
    if (kept.exitCode !== 0)
      throw new UserError(
        `Release ${id} is no longer kept on ${host.name} (pruned by \`keep-releases\`): its migrations cannot run there.`,
      );
    const python = releaseMigrationHost({ host, layout: l, releaseId: id, settingsModule: spec.gunicorn.settingsModule });
    return {
      host: python,
      close: async () => {
        await python.removePidFiles().catch(() => undefined);
        python.dispose();
      },
    };
  }

  /** The commit checked out, as a tar.gz in memory (only tracked files: no .env, .venv or build leftovers). */
  private async archive(): Promise<{ archive: Buffer; sha: string }> {
    const root = this.rd!.repoRoot;
    const git = (args: string[]): Promise<Buffer> =>
      new Promise((resolve, reject) =>
        execFile('git', ['-C', root, ...args], { encoding: 'buffer', maxBuffer: 1024 ** 3 }, (error, stdout, stderr) =>
          error
            ? reject(new UserError(`git ${args[0]} failed in ${root}: ${stderr.toString().trim().split('\n').pop()}`))
            : resolve(stdout),
        ),
      );
    const sha = (await git(['rev-parse', 'HEAD'])).toString().trim();
    const wanted = process.env.GITHUB_SHA;
    if (wanted && wanted !== sha) core.info(`The work tree is at ${sha}, not GITHUB_SHA ${wanted}: deploying the checked-out commit.`);
    return { archive: await git(['archive', '--format=tar.gz', sha]), sha };
  }

  /** The layout of one release: its project folder is where its spec says. */
  private layoutOf(host: RemoteHost, spec?: ReleaseSpec): ReleaseLayout {
    return { dir: host.dir, projectDir: spec?.projectDir ?? '' };
  }

  private checkoutSpec(): ReleaseSpec {
    const rd = this.rd!;
    return { projectDir: rd.projectDir, gunicorn: rd.gunicorn, restart: rd.restartCommands };
  }

  /**
   * `restart-commands`, once the release serves and `current` points at it (workers, a systemd
   * unit). The release already serves, so a failing command is a warning, not a failed deploy
   * (which would leave this host on the new release and roll the others back).
   */
  private async runRestartCommands(host: RemoteHost, spec: ReleaseSpec, id: string, log: (l: string) => void): Promise<void> {
    for (const [i, argv] of (spec.restart ?? []).entries()) {
      const r = await host.run(argv, { allowFailure: true, label: 'restart-commands', timeoutMs: 300_000 });
      const last = (r.stderr.trim() || r.stdout.trim()).split('\n').pop() ?? '';
      if (r.exitCode === 0) log(`${host.name}: restart-commands line ${i + 1} (${argv[0]}) done`);
      else
        core.warning(
          `${host.name}: \`restart-commands\` line ${i + 1} (${argv[0]}) failed (exit code ${r.exitCode}${last ? `: ${last}` : ''}); ${id} serves.`,
        );
    }
  }

  /** The spec a kept release was built with (the checkout's, for one this run builds). */
  private async specOf(host: RemoteHost, id: string): Promise<ReleaseSpec> {
    const r = await host.run(['cat', `${releaseDir(this.layoutOf(host), id)}/${SPEC_FILE}`], { allowFailure: true });
    if (r.exitCode === 0) {
      try {
        return JSON.parse(r.stdout) as ReleaseSpec;
      } catch {
        // written by this code; unreadable means damaged: the checkout's spec below, or refuse
      }
    }
    if (this.rd) return this.checkoutSpec();
    throw new UserError(`Release ${id} is no longer kept on ${host.name} (pruned by \`keep-releases\`).`);
  }

  private async readServing(host: RemoteHost): Promise<HostCurrent | undefined> {
    const r = await host.run(['cat', `${host.dir}/current.json`], { allowFailure: true });
    if (r.exitCode !== 0 || !r.stdout.trim()) return undefined;
    try {
      return JSON.parse(r.stdout) as HostCurrent;
    } catch {
      throw new UserError(`${host.dir}/current.json on ${host.name} is not valid JSON: remove it and deploy again.`);
    }
  }

  /** current.json, then the `current` link: each replaced by rename(2); then the release is no longer unfinished. */
  private async writeServing(host: RemoteHost, now: HostCurrent): Promise<void> {
    await host.run(['dd', `of=${host.dir}/current.json.new`, 'status=none'], { input: `${JSON.stringify(now)}\n` });
    await host.run(['mv', '-f', `${host.dir}/current.json.new`, `${host.dir}/current.json`]);
    for (const argv of switchLinkArgv(this.layoutOf(host), now.releaseId)) await host.run(argv);
    await host.run(['rm', '-f', unfinishedMark(this.layoutOf(host), now.releaseId)]);
  }

  /** Runs one build step; a failure is one line naming the step (its output tail goes to the log). */
  private async step(host: RemoteHost, argv: string[], label: string, opts: { input?: Buffer | string; timeoutMs?: number } = {}) {
    let r: Awaited<ReturnType<RemoteHost['run']>>;
    try {
      r = await host.run(argv, { ...opts, allowFailure: true, label });
    } catch (e) {
      if (e instanceof SshConnectionError)
        throw new UserError(`${label} on ${host.name} failed (exit code 255: ${e.why}). The previous release keeps serving.`);
      throw e;
    }
    if (r.exitCode !== 0) {
      const out = `${r.stdout}\n${r.stderr}`.trim();
      if (out) core.info(`${label} on ${host.name}, last lines:\n${out.split('\n').slice(-20).join('\n')}`);
      const last = (r.stderr.trim() || r.stdout.trim()).split('\n').pop() ?? '';
      const why = last ? `: ${last}` : '';
      throw new UserError(`${label} on ${host.name} failed (exit code ${r.exitCode}${why}). The previous release keeps serving.`);
    }
    return r;
  }

  /** Builds the release; with `b.migrate`, migrates and returns the migrations. */
  private async build(
    host: RemoteHost,
    l: ReleaseLayout,
    id: string,
    b: Build,
    log: (l: string) => void,
  ): Promise<ReleaseMigrations | undefined> {
    const rd = this.rd!;
    const started = Date.now();
    await this.step(host, unpackArgv(l, id), 'Unpacking the release', { input: b.archive, timeoutMs: 300_000 });
    const spec = this.checkoutSpec();
    await this.step(host, ['dd', `of=${releaseDir(l, id)}/${SPEC_FILE}`, 'status=none'], 'Writing the release spec', {
      input: `${JSON.stringify(spec)}\n`,
    });
    await host.run(['install', '-m', '600', '/dev/stdin', envFilePath(l, id)], { input: b.envFile, label: 'Writing the env file' });
    await this.step(host, envLinkArgv(l, id), 'Linking the env file');
    for (const argv of sharedLinkArgv(l, id, rd.sharedDirs)) await this.step(host, argv, 'Linking the shared folders');
    await this.step(host, venvArgv(l, id, rd.python), `Creating the venv (${rd.python} -m venv)`, { timeoutMs: 300_000 });
    if (rd.dependencies.kind === 'uv') {
      const uv = await host.run(['uv', '--version'], { allowFailure: true });
      if (uv.exitCode !== 0)
        throw new UserError(`The project has uv.lock but ${host.name} has no uv on PATH: install uv there or commit a requirements.txt.`);
    }
    await this.step(host, installArgv(l, id, rd.dependencies, rd.python), 'Installing dependencies', { timeoutMs: 900_000 });
    const gunicorn = await host.run(['test', '-x', `${venvDir(l, id)}/bin/gunicorn`], { allowFailure: true });
    if (gunicorn.exitCode !== 0) {
      throw new UserError(
        `gunicorn is not among the project's dependencies (no ${venvDir(l, id)}/bin/gunicorn on ${host.name}): add it to the requirements.`,
      );
    }
    log(`${host.name}: release ${id} built (venv, dependencies) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const settings = rd.gunicorn.settingsModule;
    const statics = await host.run(manageArgv(l, id, settings, ['collectstatic', '--noinput']), {
      allowFailure: true,
      label: 'collectstatic',
      timeoutMs: 600_000,
    });
    if (statics.exitCode === 0) log(`${host.name}: ${statics.stdout.trim().split('\n').pop() ?? 'collectstatic done'}`);
    else if (/STATIC_ROOT setting|Unknown command: 'collectstatic'/.test(statics.stderr))
      log(`${host.name}: collectstatic skipped (no STATIC_ROOT / staticfiles)`);
    else await this.step(host, manageArgv(l, id, settings, ['collectstatic', '--noinput']), 'collectstatic');
    if (!b.migrate) return undefined;
    const migrations = await this.migrate(host, l, id, log);
    await b.migrated?.(migrations);
    return migrations;
  }

  /**
   * The migrate action's logic (@slipway/migrate/release) in the new release on the target: its
   * venv Python over this SSH connection, its env file, one helper session holding the
   * migration lock while it applies. A failed migration fails the deploy before traffic moves.
   */
  private async migrate(host: RemoteHost, l: ReleaseLayout, id: string, log: (l: string) => void): Promise<ReleaseMigrations> {
    const python = releaseMigrationHost({ host, layout: l, releaseId: id, settingsModule: this.rd?.gunicorn.settingsModule });
    try {
      const migrations = await migrateRelease(python, { where: host.name });
      log(
        migrations.applied.length
          ? `${host.name}: migrations applied with release ${id}: ${migrations.applied.join(', ')}`
          : `${host.name}: no migrations pending for release ${id}`,
      );
      return migrations;
    } finally {
      await python.removePidFiles().catch(() => undefined);
      python.dispose();
    }
  }

  private async rollOutRelease(host: RemoteHost, r: ReleaseRollOut): Promise<HostStep> {
    const id = r.releaseId;
    const spec = r.build ? this.checkoutSpec() : await this.specOf(host, id);
    const l = this.layoutOf(host, spec);
    const kind = await host.run([
      'sh',
      '-c',
      'if [ -L "$1" ]; then echo link; elif [ -e "$1" ]; then echo file; fi',
      'slipway-current',
      `${host.dir}/current`,
    ]);
    if (kind.stdout.trim() === 'file') {
      throw new UserError(
        `${host.dir} on ${host.name} is served by the Docker runtime (\`current\` is its state file): use another \`app-name\` or \`remote-dir\` for \`ssh-runtime: release-dir\`.`,
      );
    }
    const previous = await this.readServing(host);
    const slot = previous ? otherSlot(previous.slot) : 'blue';
    const port = slotPort(host.layout, slot);
    // A gunicorn left on the idle slot (a deploy that died) would hold its port.
    await this.step(host, stopArgv(l, slot, 10), 'Stopping a leftover gunicorn on the idle slot');
    if (!r.build) {
      const kept = await host.run(['test', '-x', `${venvDir(l, id)}/bin/gunicorn`, '-a', '-f', envFilePath(l, id)], { allowFailure: true });
      if (kept.exitCode !== 0) throw new UserError(`Release ${id} is no longer kept on ${host.name} (pruned by \`keep-releases\`).`);
    }
    let health;
    let migrations: ReleaseMigrations | undefined;
    try {
      if (r.build) {
        // Marked from the start: a deploy that dies before recording the release leaves it marked, for prune.
        await this.step(host, ['mkdir', '-p', releaseDir(l, id)], 'Creating the release directory');
        await this.step(host, ['touch', unfinishedMark(l, id)], 'Marking the release directory unfinished');
        migrations = await this.build(host, l, id, r.build, r.log);
      }
      r.log(`${host.name}: starting gunicorn for ${id} on slot ${slot} (port ${port})`);
      await this.step(host, gunicornArgv(l, id, slot, port, spec.gunicorn), 'Starting gunicorn', { timeoutMs: 60_000 });
      health = await this.checkHealth(host, port, r.health, r.log);
      if (!health.ok) {
        const tail = await host.run(['tail', '-n', '20', logFile(l, id)], { allowFailure: true });
        if (tail.stdout.trim()) core.info(`Last lines of ${logFile(l, id)}:\n${tail.stdout.trim()}`);
        throw new HealthCheckError(`release ${id} on ${host.name}`, health, r.health.expectedStatus);
      }
    } catch (error) {
      await this.discard(host, l, slot, id, r.build !== undefined);
      throw error;
    }
    await host.proxy(enableCommands(slot, previous?.slot));
    const now: HostCurrent = { releaseId: id, container: releaseDir(l, id), slot, image: r.image };
    try {
      if (previous) await host.drain(previous.slot, this.inputs.drainTimeoutMs);
      await this.writeServing(host, now);
    } catch (error) {
      if (previous) await this.switchBackRelease(host, previous, now, r.build !== undefined, error);
      throw error;
    }
    if (previous) {
      const stopped = await host.run(stopArgv(l, previous.slot, STOP_GRACE_SEC), {
        allowFailure: true,
        timeoutMs: (STOP_GRACE_SEC + 15) * 1000,
      });
      r.log(`${host.name}: gunicorn of ${previous.releaseId} ${stopped.stdout.trim() || 'stop failed'} (slot ${previous.slot})`);
    }
    r.log(`${host.name}: ${id} serves on slot ${slot}; current -> releases/${id}`);
    await this.runRestartCommands(host, spec, id, r.log);
    // wroteEnv: this run built the release (its dir and env file), so undoing it removes them.
    return { host, previous, now, check: r.health, health, migrations, wroteEnv: r.build !== undefined };
  }

  /** A release that never got traffic: its gunicorn stops and, when this run built it, its files go. */
  private async discard(host: RemoteHost, l: ReleaseLayout, slot: HostCurrent['slot'], id: string, built: boolean): Promise<void> {
    try {
      await host.run(stopArgv(l, slot, 10), { allowFailure: true, timeoutMs: 30_000 });
      if (built) await host.run(['rm', '-rf', releaseDir(l, id), envFilePath(l, id)], { allowFailure: true, timeoutMs: 120_000 });
    } catch (e) {
      // The connection or the lock is gone: the next deploy stops what is left on the slot and prunes the files.
      core.warning(`Could not clean up release ${id} on ${host.name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** After a failure between the switch and recording it: the previous gunicorn (still running) serves again. */
  private async switchBackRelease(
    host: RemoteHost,
    previous: HostCurrent,
    now: HostCurrent,
    built: boolean,
    error: unknown,
  ): Promise<void> {
    const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));
    try {
      await host.proxy(enableCommands(previous.slot, now.slot));
      await host.drain(now.slot, this.inputs.drainTimeoutMs);
    } catch (e) {
      core.error(`Could not move traffic back to ${previous.releaseId} on ${host.name}: ${message(e)}`);
      return;
    }
    // Traffic is back. current.json may already name the new release (the link's rename failed):
    // written back. If that fails too (a full disk), what counts is what the host now says.
    let recorded = true;
    try {
      await this.writeServing(host, previous);
    } catch (e) {
      recorded = await this.records(host, previous.releaseId).catch(() => false);
      if (!recorded) {
        core.error(
          `${previous.releaseId} serves again on ${host.name}, but ${host.dir}/current.json or the current link could not be written back ` +
            `(${message(e)}): make both name ${previous.releaseId} before deploying again.`,
        );
      }
    }
    await this.discard(host, this.layoutOf(host), now.slot, now.releaseId, built);
    if (recorded && error instanceof Error) Object.assign(error, { rolledBack: true });
    core.warning(`${host.name}: the switch to ${now.releaseId} could not be recorded; ${previous.releaseId} serves again.`);
  }

  /** current.json and the `current` link both name `id`. */
  private async records(host: RemoteHost, id: string): Promise<boolean> {
    const linked = await host.run(['readlink', `${host.dir}/current`], { allowFailure: true });
    return (await this.readServing(host))?.releaseId === id && linked.stdout.trim() === `releases/${id}`;
  }

  /** Several hosts, a later one failed: this one serves its previous release dir again (its gunicorn restarted). */
  protected override async rollBack(step: HostStep): Promise<void> {
    const { host, previous, now, check } = step;
    if (!previous) {
      core.warning(`${host.name} had no previous release to go back to; ${now.releaseId} keeps serving.`);
      return;
    }
    const spec = await this.specOf(host, previous.releaseId);
    const l = this.layoutOf(host, spec);
    const port = slotPort(host.layout, previous.slot);
    await this.step(host, stopArgv(l, previous.slot, 10), 'Stopping a leftover gunicorn');
    await this.step(host, gunicornArgv(l, previous.releaseId, previous.slot, port, spec.gunicorn), 'Starting the previous gunicorn');
    const health = await this.checkHealth(host, port, check, core.info);
    if (!health.ok) throw new UserError(`The previous release ${previous.releaseId} did not come back healthy on ${host.name}.`);
    await host.proxy(enableCommands(previous.slot, now.slot));
    await host.drain(now.slot, this.inputs.drainTimeoutMs);
    await this.writeServing(host, previous);
    await host.run(stopArgv(l, now.slot, STOP_GRACE_SEC), { allowFailure: true, timeoutMs: (STOP_GRACE_SEC + 15) * 1000 });
    // Nothing of the undone release stays (as with the Docker runtime): not its env file (secrets),
    // and not its dir, which prune would otherwise keep as the newest release in place of a good one.
    if (step.wroteEnv) {
      await host.run(['rm', '-rf', releaseDir(l, now.releaseId), envFilePath(l, now.releaseId)], {
        allowFailure: true,
        timeoutMs: 120_000,
      });
    }
    core.info(`${host.name}: back on ${previous.releaseId}`);
  }

  /** Keeps the newest `keep` release dirs (the serving one always) and their env files. */
  protected override async prune(host: RemoteHost, keep: number): Promise<void> {
    const l = this.layoutOf(host);
    const listed = await host.run(['ls', '-1', `${host.dir}/releases`], { allowFailure: true });
    const marked = await host.run(unfinishedArgv(l), { allowFailure: true });
    const unfinished = marked.stdout
      .split('\n')
      .filter((p) => p.endsWith(`/${UNFINISHED_MARK}`))
      .map((p) => p.split('/').slice(-2)[0]!);
    const serving = (await this.readServing(host))?.releaseId;
    const stale = releasesToPrune(listed.stdout.split('\n').filter(Boolean), keep, serving, unfinished);
    if (!stale.length) return;
    await host.run(['rm', '-rf', ...stale.flatMap((id) => [releaseDir(l, id), envFilePath(l, id)])], { timeoutMs: 300_000 });
    core.info(`${host.name}: pruned ${stale.join(', ')}`);
  }
}
