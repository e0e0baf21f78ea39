import * as core from '@actions/core';
import { UserError } from '@slipway/toolkit/errors';
import { execTool } from '@slipway/toolkit/exec';
import { formatTarget, shellQuote, SshConnectionError, streamFailure, type SshClient, type SshTarget } from '@slipway/toolkit/ssh';
import { haproxyConfig, maintCommand, parseShowStat, type ProxyLayout, type ServerStat, type Slot } from './haproxy';
import { HostLock } from './lock';

/** The image id (config digest) of `ref` in the runner's engine; undefined when it is not there (no pull). */
export async function localImageId(ref: string): Promise<string | undefined> {
  const r = await execTool('docker', ['image', 'inspect', '--format', '{{.Id}}', ref], { silent: true, quiet: true, allowFailure: true });
  return r.exitCode === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
}

/** What the host says serves now (`<dir>/current`). */
export interface HostCurrent {
  releaseId: string;
  container: string;
  slot: Slot;
  image: string;
}

export interface KeptContainer {
  name: string;
  /** The image id it was created from (on the host as long as the container is). */
  image: string;
  slot: string;
  environment: string;
  port: number;
}

/** Why a kept container cannot serve `slot` as it is (undefined: it can, `docker start` is enough). */
export function keptMismatch(kept: KeptContainer, want: { environment: string; slot: Slot; port: number }): string | undefined {
  const differs = [
    kept.slot !== want.slot ? `slot ${kept.slot || 'unknown'}` : '',
    kept.port !== want.port ? `PORT=${kept.port || 'none'}` : '',
    kept.environment !== want.environment ? `environment ${kept.environment || 'unknown'}` : '',
  ].filter(Boolean);
  return differs.length ? `kept container made for another ${differs.join(', ')}` : undefined;
}

export interface HostContainer {
  name: string;
  releaseId: string;
  state: string;
  image: string;
}

/**
 * One host's side of a deploy, every step a remote argv over the shared SSH master. Paths live
 * under <remote-dir>/<app>; see docs/deploy.md for the layout.
 */
export class RemoteHost {
  readonly name: string;
  readonly dir: string;
  private readonly deployLock: HostLock;

  constructor(
    private readonly ssh: SshClient,
    readonly target: SshTarget,
    readonly app: string,
    readonly layout: ProxyLayout,
  ) {
    this.name = formatTarget(target);
    this.dir = layout.dir;
    this.deployLock = new HostLock({
      name: this.name,
      dir: this.dir,
      run: (argv, opts) => this.run(argv, opts),
      holderCommand: (argv) => this.command(argv),
    });
  }

  async run(argv: string[], opts: { input?: string | Buffer; allowFailure?: boolean; label?: string; timeoutMs?: number } = {}) {
    // Once the lock's holder is gone, another deploy may own the host: change nothing more.
    this.deployLock.assertHeld(`\`${argv[0]}\`${opts.label ? ` (${opts.label})` : ''}`);
    const started = Date.now();
    try {
      return await this.ssh.run(this.target, argv, { ...opts, label: opts.label ? `${opts.label} on ${this.name}` : undefined });
    } catch (error) {
      // The lock's holder shares the connection: know whether it went too before anything else runs.
      if (error instanceof SshConnectionError) await this.deployLock.settle(3_000);
      throw error;
    } finally {
      core.debug(`${this.name}: ${argv.slice(0, 2).join(' ')} took ${Date.now() - started} ms`);
    }
  }

  /**
   * The local program and arguments that run argv on the host over the shared master, for a
   * process that stays attached (stdin, stdout) while it runs; not checked against the deploy lock.
   */
  command(argv: string[]): [string, string[]] {
    return ['ssh', this.ssh.commandArgs(this.target, argv)];
  }

  async connect(): Promise<void> {
    await this.ssh.connect(this.target);
  }

  containerName(releaseId: string): string {
    return `${this.app}-${releaseId}`;
  }

  envFile(releaseId: string): string {
    return `${this.dir}/env/${releaseId}.env`;
  }

  /** Takes the host's deploy lock (see lock.ts) or says who holds it. */
  async lock(owner: string, log: (line: string) => void): Promise<void> {
    await this.run(['install', '-d', '-m', '700', this.dir, `${this.dir}/env`], { label: 'Creating the app directory' });
    await this.deployLock.acquire(owner, log);
  }

  async unlock(): Promise<void> {
    await this.deployLock.release();
  }

  /** Runtime API commands through the admin socket; the answer text. */
  async proxy(commands: string[]): Promise<string> {
    const result = await this.run(['socat', 'stdio', `UNIX-CONNECT:${this.dir}/haproxy.sock`], {
      input: `${commands.join('; ')}\n`,
      label: 'HAProxy runtime API',
    });
    const answer = result.stdout.trim();
    if (/^(Unknown command|No such|Require|Invalid|Permission denied)/im.test(answer)) {
      throw new UserError(`HAProxy on ${this.name} refused \`${commands.join('; ')}\`: ${answer.split('\n')[0]}`);
    }
    return answer;
  }

  async proxyRunning(): Promise<boolean> {
    const r = await this.run(['socat', '-T', '2', 'stdio', `UNIX-CONNECT:${this.dir}/haproxy.sock`], {
      input: 'show info\n',
      allowFailure: true,
    });
    return r.exitCode === 0 && /Pid:/.test(r.stdout);
  }

  async servers(): Promise<ServerStat[]> {
    return parseShowStat(await this.proxy(['show stat']));
  }

  /** Writes the proxy config the action owns and starts HAProxy if it does not run. */
  async setupProxy(log: (line: string) => void): Promise<void> {
    const config = haproxyConfig(this.layout);
    const cfg = `${this.dir}/haproxy.cfg`;
    await this.run(['install', '-d', '-m', '700', this.dir, `${this.dir}/env`]);
    if (await this.proxyRunning()) {
      const existing = await this.run(['cat', cfg], { allowFailure: true });
      if (existing.stdout === config) {
        log(`${this.name}: HAProxy already set up`);
        return;
      }
      throw new UserError(
        `HAProxy on ${this.name} runs with another configuration than this deploy's (\`proxy-port\`, \`proxy-address\` or \`app-port\` changed): ` +
          `stop it (kill $(cat ${this.dir}/haproxy.pid)) during a maintenance window and deploy again with \`setup-host: true\`.`,
      );
    }
    await this.run(['dd', `of=${cfg}.new`, 'status=none'], { input: config });
    await this.run(['haproxy', '-c', '-q', '-f', `${cfg}.new`], { label: 'Checking the HAProxy configuration' });
    await this.run(['mv', `${cfg}.new`, cfg]);
    await this.run(['haproxy', '-f', cfg], { label: 'Starting HAProxy', timeoutMs: 30_000 });
    if (!(await this.proxyRunning())) throw new UserError(`HAProxy did not start on ${this.name}.`);
    log(`${this.name}: HAProxy started on ${this.layout.bindAddress}:${this.layout.proxyPort}`);
  }

  async readCurrent(): Promise<HostCurrent | undefined> {
    const r = await this.run(['cat', `${this.dir}/current`], { allowFailure: true });
    if (r.exitCode !== 0 || !r.stdout.trim()) return undefined;
    try {
      return JSON.parse(r.stdout) as HostCurrent;
    } catch {
      throw new UserError(`${this.dir}/current on ${this.name} is not valid JSON: remove it and deploy again.`);
    }
  }

  async writeCurrent(current: HostCurrent): Promise<void> {
    await this.run(['dd', `of=${this.dir}/current.new`, 'status=none'], { input: `${JSON.stringify(current)}\n` });
    await this.run(['mv', `${this.dir}/current.new`, `${this.dir}/current`]);
  }

  async hasImage(ref: string): Promise<boolean> {
    const r = await this.run(['docker', 'image', 'inspect', '--format', '{{.Id}}', ref], { allowFailure: true });
    return r.exitCode === 0;
  }

  async pull(ref: string): Promise<{ ok: boolean; why: string }> {
    const r = await this.run(['docker', 'pull', '--quiet', ref], { allowFailure: true, timeoutMs: 900_000 });
    return { ok: r.exitCode === 0, why: r.stderr.trim().split('\n').pop() ?? '' };
  }

  /**
   * Streams an image the host cannot pull: `docker save` here piped into `docker load` there
   * (nothing held in memory); the host then runs it by image id (a loaded image carries no
   * registry digest). An image the host already has by id is not sent again.
   */
  async stream(ref: string, log: (line: string) => void): Promise<string> {
    let id = await localImageId(ref);
    if (!id) {
      // A deploy job on another runner than the build: the image is in the registry, not here.
      await execTool('docker', ['pull', '--quiet', ref], {
        label: `Pulling ${ref} on the runner to stream it`,
        silent: true,
        timeoutMs: 900_000,
      });
      id = await localImageId(ref);
      if (!id) throw new UserError(`${ref} is not in the runner's Docker engine after docker pull: nothing to stream to ${this.name}.`);
    }
    if (await this.hasImage(id)) {
      log(`${this.name}: image already present (${id.slice(0, 19)}, by image id; not streamed again)`);
      return id;
    }
    this.deployLock.assertHeld('`docker load` (Loading the image)');
    const started = Date.now();
    const remote = ['docker', 'load', '--quiet'];
    const result = await this.ssh.runFrom(this.target, remote, { command: 'docker', args: ['save', id] }, { timeoutMs: 900_000 });
    const why = streamFailure(result, { source: `docker save ${id.slice(0, 19)}`, remote: shellQuote(remote), host: this.name });
    if (why) throw new UserError(`Streaming the image to ${this.name} failed: ${why}`);
    if (!(await this.hasImage(id))) throw new UserError(`The image streamed to ${this.name} is not there after docker load.`);
    const secs = (Date.now() - started) / 1000;
    log(`${this.name}: streamed ${id.slice(0, 19)} over SSH (${result.bytes} bytes in ${secs.toFixed(1)} s)`);
    return id;
  }

  /** The env file, mode 0600, from stdin: values never touch a command line. */
  async writeEnv(releaseId: string, content: string): Promise<void> {
    await this.run(['install', '-m', '600', '/dev/stdin', this.envFile(releaseId)], { input: content, label: 'Writing the env file' });
  }

  async envExists(releaseId: string): Promise<boolean> {
    return (await this.run(['test', '-f', this.envFile(releaseId)], { allowFailure: true })).exitCode === 0;
  }

  async startContainer(opts: { releaseId: string; image: string; environment: string; slot: Slot; port: number }): Promise<string> {
    const name = this.containerName(opts.releaseId);
    await this.run(['docker', 'rm', '-f', name], { allowFailure: true });
    await this.run(
      [
        'docker',
        'run',
        '--detach',
        '--name',
        name,
        '--network',
        'host',
        '--restart',
        'unless-stopped',
        '--env-file',
        this.envFile(opts.releaseId),
        '--env',
        `PORT=${opts.port}`,
        '--label',
        `slipway.app=${this.app}`,
        '--label',
        `slipway.release=${opts.releaseId}`,
        '--label',
        `slipway.environment=${opts.environment}`,
        '--label',
        `slipway.slot=${opts.slot}`,
        opts.image,
      ],
      { label: 'Starting the new container' },
    );
    return name;
  }

  /** The kept container of a release, as far as serving it again needs to know (one docker inspect). */
  async keptContainer(releaseId: string): Promise<KeptContainer | undefined> {
    // Only PORT is printed from the container's environment: the rest may hold secrets.
    const format =
      '{{.Image}}\t{{index .Config.Labels "slipway.slot"}}\t{{index .Config.Labels "slipway.environment"}}\t' +
      '{{range .Config.Env}}{{if eq (index (split . "=") 0) "PORT"}}{{.}}{{end}}{{end}}';
    const name = this.containerName(releaseId);
    const r = await this.run(['docker', 'inspect', '--type', 'container', '--format', format, name], { allowFailure: true });
    if (r.exitCode !== 0) return undefined;
    const [image = '', slot = '', environment = '', port = ''] = r.stdout.trim().split('\t');
    return { name, image, slot, environment, port: Number(port.replace(/^PORT=/, '')) || 0 };
  }

  /** Fails when the container exited (the app crashed at start). */
  async containerRunning(name: string): Promise<boolean> {
    const r = await this.run(['docker', 'inspect', '--format', '{{.State.Running}}', name], { allowFailure: true });
    return r.stdout.trim() === 'true';
  }

  async containerLogs(name: string): Promise<string> {
    const r = await this.run(['docker', 'logs', '--tail', '20', name], { allowFailure: true });
    return `${r.stdout}${r.stderr}`.trim();
  }

  async removeContainer(name: string): Promise<void> {
    await this.run(['docker', 'rm', '-f', name], { allowFailure: true });
  }

  async stopContainer(name: string): Promise<void> {
    await this.run(['docker', 'stop', '--time', '30', name], { allowFailure: true, timeoutMs: 60_000 });
  }

  async containers(): Promise<HostContainer[]> {
    const r = await this.run([
      'docker',
      'ps',
      '--all',
      '--filter',
      `label=slipway.app=${this.app}`,
      '--format',
      '{{.Names}}\t{{.Label "slipway.release"}}\t{{.State}}\t{{.Image}}',
    ]);
    return r.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [name = '', releaseId = '', state = '', image = ''] = line.split('\t');
        return { name, releaseId, state, image };
      })
      .sort((a, b) => b.releaseId.localeCompare(a.releaseId));
  }

  /** Waits until `slot` has no sessions left (or the time is up), then puts it in maintenance. */
  async drain(slot: Slot, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const stat = (await this.servers()).find((s) => s.slot === slot);
      if (!stat || stat.sessions === 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await this.proxy([maintCommand(slot)]);
  }
}
