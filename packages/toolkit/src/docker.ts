import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execTool, type ExecOptions, type ExecResult } from './exec';
import { maskSecret } from './secrets';
import { UserError } from './errors';

/**
 * The docker CLI, always with argv arrays. Builds go through `docker buildx build` when the
 * buildx plugin answers, else the classic builder (DOCKER_BUILDKIT=0); credentials reach
 * `docker login` on stdin only.
 */

export interface DockerInfo {
  client: string;
  server: string;
  buildx: string | null;
}

export function docker(args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return execTool('docker', args, opts);
}

export async function dockerInfo(): Promise<DockerInfo> {
  const v = await docker(['version', '--format', '{{.Client.Version}} {{.Server.Version}}'], {
    silent: true,
    quiet: true,
    allowFailure: true,
  });
  if (v.exitCode !== 0) {
    const why = v.stderr.trim().split('\n').pop() ?? '';
    throw new UserError(`No Docker engine answers (${why || 'docker version failed'}): start one, or set DOCKER_HOST.`);
  }
  const [client = '', server = ''] = v.stdout.trim().split(' ');
  const bx = await docker(['buildx', 'version'], { silent: true, quiet: true, allowFailure: true }).catch(() => undefined);
  const buildx = bx && bx.exitCode === 0 ? (bx.stdout.trim().split(/\s+/)[1] ?? 'unknown') : null;
  return { client, server, buildx };
}

export type Builder = 'buildx' | 'classic';

export interface BuildSpec {
  context: string;
  dockerfile: string;
  tags: string[];
  target?: string;
  buildArgs?: [string, string][];
  labels?: Record<string, string>;
  /** Build secrets: id -> file (buildx only; the classic builder has none). */
  secrets?: Record<string, string>;
  platforms?: string[];
  /** buildx cache: `--cache-from` / `--cache-to` values. */
  cacheFrom?: string[];
  cacheTo?: string[];
  network?: string;
  /** buildx: load the result into the engine's image store. */
  load?: boolean;
  /** Write the image id here (both builders support --iidfile). */
  iidfile?: string;
  pull?: boolean;
  noCache?: boolean;
}

/** The argv (after `docker`) for one build. */
export function buildArgv(spec: BuildSpec, builder: Builder): string[] {
  const args = builder === 'buildx' ? ['buildx', 'build'] : ['build'];
  args.push('--file', spec.dockerfile);
  for (const tag of spec.tags) args.push('--tag', tag);
  if (spec.target) args.push('--target', spec.target);
  for (const [k, v] of spec.buildArgs ?? []) args.push('--build-arg', `${k}=${v}`);
  for (const [k, v] of Object.entries(spec.labels ?? {})) args.push('--label', `${k}=${v}`);
  if (spec.network) args.push('--network', spec.network);
  if (spec.pull) args.push('--pull');
  if (spec.noCache) args.push('--no-cache');
  if (spec.iidfile) args.push('--iidfile', spec.iidfile);
  if (builder === 'buildx') {
    for (const [id, src] of Object.entries(spec.secrets ?? {})) args.push('--secret', `id=${id},src=${src}`);
    if (spec.platforms?.length) args.push('--platform', spec.platforms.join(','));
    for (const c of spec.cacheFrom ?? []) args.push('--cache-from', c);
    for (const c of spec.cacheTo ?? []) args.push('--cache-to', c);
    if (spec.load) args.push('--load');
    args.push('--progress', 'plain');
  } else {
    // A failed step's container would otherwise stay behind on the runner, one per failed build.
    args.push('--force-rm');
    if (spec.secrets && Object.keys(spec.secrets).length) {
      throw new Error('the classic builder has no build secrets: rewrite the Dockerfile first');
    }
    if (spec.platforms?.length) throw new UserError('Input `platforms` needs buildx; this engine has only the classic builder.');
  }
  args.push(spec.context);
  return args;
}

/** Environment for a build: the classic builder must be asked for explicitly. */
export function buildEnv(builder: Builder): Record<string, string> {
  return builder === 'classic' ? { DOCKER_BUILDKIT: '0' } : { DOCKER_BUILDKIT: '1' };
}

/** `docker login` with the password on stdin. The error never contains the password. */
export async function login(registry: string, username: string, password: string): Promise<void> {
  maskSecret(password);
  const server = registry === 'docker.io' ? [] : [registry];
  const result = await docker(['login', '--username', username, '--password-stdin', ...server], {
    input: password,
    silent: true,
    allowFailure: true,
  });
  if (result.exitCode !== 0) {
    const why = (result.stderr.trim().split('\n').pop() ?? '').split(password).join('***');
    throw new UserError(`Login to ${registry} as ${username} failed: ${why || `exit code ${result.exitCode}`}`);
  }
}

/**
 * Stores credentials the way `docker login` does without a helper (config.json, 0600), for a
 * registry whose user name is itself a secret and so may not go on argv.
 */
export function writeDockerAuth(registry: string, username: string, password: string): void {
  maskSecret(username);
  maskSecret(password);
  const dir = process.env.DOCKER_CONFIG || path.join(os.homedir(), '.docker');
  const file = path.join(dir, 'config.json');
  let config: { auths?: Record<string, { auth: string }> } = {};
  try {
    config = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof config;
  } catch {
    // none yet
  }
  config.auths = { ...config.auths, [registry]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } };
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
}

/**
 * Checks credentials stored by writeDockerAuth against the registry: `docker login <registry>`
 * with no user name reuses the stored ones (nothing secret on argv), so a refused token fails
 * here rather than at push, after the build. The error is the engine's line, secrets replaced.
 */
export async function checkStoredLogin(registry: string, secrets: string[]): Promise<void> {
  const result = await docker(['login', registry], { silent: true, allowFailure: true });
  if (result.exitCode === 0) return;
  const lines = result.stderr.split('\n').map((l) => l.trim());
  let why = lines.find((l) => l.startsWith('Login did not succeed, error:'))?.replace(/^Login did not succeed, error:\s*/, '') ?? '';
  why ||= lines.filter(Boolean).at(-1) ?? `exit code ${result.exitCode}`;
  for (const secret of secrets) if (secret) why = why.split(secret).join('***');
  throw new UserError(`Login to ${registry} as *** failed: ${why}`);
}

export async function logout(registry: string): Promise<void> {
  await docker(['logout', ...(registry === 'docker.io' ? [] : [registry])], { silent: true, allowFailure: true });
}

export async function push(ref: string): Promise<void> {
  await docker(['push', ref], { label: `Pushing ${ref}` });
}

export interface ImageFacts {
  id: string;
  repoDigests: string[];
  size: number;
  layers: string[];
  labels: Record<string, string>;
  user: string;
  healthcheck: string[] | null;
  env: string[];
}

export async function inspectImage(ref: string): Promise<ImageFacts> {
  const { stdout } = await docker(['image', 'inspect', '--format', '{{json .}}', ref], { silent: true, quiet: true });
  const raw = JSON.parse(stdout) as {
    Id: string;
    RepoDigests?: string[] | null;
    Size: number;
    RootFS?: { Layers?: string[] };
    Config?: { Labels?: Record<string, string> | null; User?: string; Healthcheck?: { Test?: string[] }; Env?: string[] };
  };
  return {
    id: raw.Id,
    repoDigests: raw.RepoDigests ?? [],
    size: raw.Size,
    layers: raw.RootFS?.Layers ?? [],
    labels: raw.Config?.Labels ?? {},
    user: raw.Config?.User ?? '',
    healthcheck: raw.Config?.Healthcheck?.Test ?? null,
    env: raw.Config?.Env ?? [],
  };
}

export async function imageExists(ref: string): Promise<boolean> {
  const r = await docker(['image', 'inspect', '--format', '{{.Id}}', ref], { silent: true, quiet: true, allowFailure: true });
  return r.exitCode === 0;
}

export interface RunSpec {
  image: string;
  name?: string;
  detach?: boolean;
  rm?: boolean;
  network?: string;
  /** Passed with `--env-file` (a 0600 file) so values never reach argv. */
  envFile?: string;
  /** Variable names whose values docker takes from its own environment (`--env NAME`). */
  envNames?: string[];
  user?: string;
  entrypoint?: string;
  command?: string[];
  labels?: Record<string, string>;
}

export function runArgv(spec: RunSpec): string[] {
  const args = ['run'];
  if (spec.detach) args.push('--detach');
  if (spec.rm) args.push('--rm');
  if (spec.name) args.push('--name', spec.name);
  if (spec.network) args.push('--network', spec.network);
  if (spec.envFile) args.push('--env-file', spec.envFile);
  for (const name of spec.envNames ?? []) args.push('--env', name);
  if (spec.user) args.push('--user', spec.user);
  if (spec.entrypoint !== undefined) args.push('--entrypoint', spec.entrypoint);
  for (const [k, v] of Object.entries(spec.labels ?? {})) args.push('--label', `${k}=${v}`);
  args.push(spec.image, ...(spec.command ?? []));
  return args;
}

export function run(spec: RunSpec, opts: ExecOptions = {}): Promise<ExecResult> {
  return docker(runArgv(spec), opts);
}

/** Removes a container, running or not; never fails. */
export async function removeContainer(name: string): Promise<void> {
  await docker(['rm', '--force', '--volumes', name], { silent: true, quiet: true, allowFailure: true });
}

export async function containerLogs(name: string, lines = 40): Promise<string> {
  const r = await docker(['logs', '--tail', String(lines), name], { silent: true, quiet: true, allowFailure: true });
  return `${r.stdout}${r.stderr}`.trim();
}

export async function containerRunning(name: string): Promise<boolean> {
  const r = await docker(['inspect', '--format', '{{.State.Running}}', name], { silent: true, quiet: true, allowFailure: true });
  return r.stdout.trim() === 'true';
}
