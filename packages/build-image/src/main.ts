import * as fs from 'node:fs';
import * as path from 'node:path';
import * as core from '@actions/core';
import { findManagePy, settingsModuleFromManagePy } from '@slipway/toolkit/django';
import {
  buildArgv,
  buildEnv,
  checkStoredLogin,
  docker,
  dockerInfo,
  inspectImage,
  login,
  logout,
  push,
  writeDockerAuth,
  type Builder,
} from '@slipway/toolkit/docker';
import { DOCKERIGNORE, labelInstruction, planDjangoImage, renderDockerfile, rewriteSecretMounts } from '@slipway/toolkit/dockerfile';
import { CommandError, UserError } from '@slipway/toolkit/errors';
import { repoDigestFor } from '@slipway/toolkit/image-ref';
import { annotate, formatMs, Phases } from '@slipway/toolkit/log';
import { runnerTemp, workspaceDir } from '@slipway/toolkit/runner';
import { optionalState, saveState } from '@slipway/toolkit/state';
import { writeSummary } from '@slipway/toolkit/summary';
import { decideTags, ociLabels } from '@slipway/toolkit/tags';
import { buildFailure, cacheUse, instructionLine } from './build';
import { getInputs, type Inputs } from './context';
import { collectIndexSettings, runnerPipConfig } from './index-settings';
import { passwordFromCli, planLogin } from './registry';
import { startSecretServer } from './secret-server';
import { smokeTest } from './smoke';

export const LOGGED_IN = 'logged-in-registries';

export async function main(): Promise<void> {
  const root = workspaceDir();
  const inputs = getInputs(root);
  const phases = new Phases();
  const temp = fs.mkdtempSync(path.join(runnerTemp(), 'slipway-build-'));
  fs.chmodSync(temp, 0o700);
  try {
    await buildImage(inputs, root, temp, phases);
  } finally {
    fs.rmSync(temp, { recursive: true, force: true });
  }
}

async function buildImage(inputs: Inputs, root: string, temp: string, phases: Phases): Promise<void> {
  const rel = (p: string): string => path.relative(root, p) || '.';
  const engine = await phases.phase('Checking the Docker engine', async () => {
    const info = await dockerInfo();
    const builder: Builder = info.buildx && process.env.DOCKER_BUILDKIT !== '0' ? 'buildx' : 'classic';
    core.info(`docker ${info.client} -> engine ${info.server}; builder: ${builder === 'buildx' ? `buildx ${info.buildx}` : 'classic'}`);
    return { ...info, builder };
  });
  const { builder } = engine;
  if (builder === 'classic' && inputs.platforms.length) {
    throw new UserError('Input `platforms` needs docker buildx; this engine has only the classic builder.');
  }

  const dockerfile = await phases.phase('Preparing the Dockerfile', () => prepareDockerfile(inputs, root));

  // Tags and labels from the git context.
  const git = {
    sha: process.env.GITHUB_SHA ?? '',
    ref: process.env.GITHUB_REF ?? '',
    defaultBranch: defaultBranch(),
  };
  const decision = decideTags(git, inputs.tags);
  if (!decision.tags.length) throw new UserError('No tag to apply: set `tags` (the git context gave none).');
  const refs = decision.tags.map((t) => `${inputs.image.name}:${t}`);
  const labels = ociLabels({
    serverUrl: process.env.GITHUB_SERVER_URL ?? 'https://github.com',
    repository: process.env.GITHUB_REPOSITORY ?? '',
    sha: git.sha,
    version: decision.version,
    created: new Date(),
  });
  core.info(`Tags: ${decision.tags.join(', ')}`);

  // Log in before building: a wrong password should fail in seconds, not after the build.
  const plan = planLogin({
    registry: inputs.registry,
    username: inputs.registryUsername,
    password: inputs.registryPassword,
    githubToken: inputs.githubToken,
    actor: process.env.GITHUB_ACTOR ?? '',
    push: inputs.push,
  });
  if (plan) {
    await phases.phase(`Logging in to ${plan.registry}`, async () => {
      const password = typeof plan.password === 'string' ? plan.password : await passwordFromCli(plan.kind, plan.password);
      if (plan.secretUsername) {
        // Written, then checked: post removes it even when the registry refuses it.
        writeDockerAuth(plan.registry, plan.username, password);
        core.saveState(LOGGED_IN, JSON.stringify([plan.registry]));
        await checkStoredLogin(plan.registry, [plan.username, password]);
      } else {
        await login(plan.registry, plan.username, password);
        core.saveState(LOGGED_IN, JSON.stringify([plan.registry]));
      }
      core.info(`Logged in to ${plan.registry} as ${plan.secretUsername ? '***' : plan.username}`);
    });
  }

  const built = await phases.phase(`Building ${refs[0]!}`, () => build(inputs, builder, dockerfile.path, refs, labels, temp));
  const facts = await inspectImage(refs[0]!);

  let smoke = 'skipped';
  if (inputs.smokeTest) {
    const result = await phases.phase('Smoke test', () =>
      smokeTest({
        image: facts.id,
        healthPath: inputs.healthPath,
        env: inputs.smokeTestEnv,
        timeoutMs: inputs.smokeTestTimeoutMs,
        tempDir: temp,
      }),
    );
    smoke = `passed: check --deploy, GET ${inputs.healthPath} -> ${result.status} (${formatMs(result.ms)})`;
  }

  let digest = '';
  let image = refs.find((r) => r.endsWith(`:${decision.tags.find((t) => t.startsWith('sha-')) ?? ''}`)) ?? refs[0]!;
  if (inputs.push) {
    await phases.phase(`Pushing ${refs.length} tag${refs.length === 1 ? '' : 's'}`, async () => {
      for (const ref of refs) await push(ref);
    });
    const repoDigest = repoDigestFor((await inspectImage(refs[0]!)).repoDigests, inputs.image.name);
    if (!repoDigest) throw new UserError(`The push of ${refs[0]!} gave no digest for ${inputs.image.name}.`);
    image = repoDigest;
    digest = repoDigest.slice(repoDigest.indexOf('@') + 1);
  } else {
    core.info('push is false: the image stays in the local engine (no registry digest).');
  }

  core.setOutput('image', image);
  core.setOutput('digest', digest);
  core.setOutput('tags', refs.join('\n'));
  core.setOutput('image-id', facts.id);
  core.setOutput('dockerfile', rel(dockerfile.path));
  saveState('buildImage', { image, digest, tags: refs, imageId: facts.id });
  core.exportVariable('SLIPWAY_IMAGE', image);

  await writeSummary('build-image', [
    {
      heading: '',
      rows: [
        ['Reference', image],
        ['Digest', digest || '(not pushed)'],
        ['Size', `${(facts.size / 1e6).toFixed(1)} MB, ${facts.layers.length} layers`],
        ['Layers reused', `${built.cache.reused} of ${built.cache.steps} steps`],
        ['Build time', formatMs(built.ms)],
        ['Dockerfile', `${rel(dockerfile.path)}${dockerfile.generated ? ' (generated)' : ''}`],
        ['Builder', builder],
        ['Smoke test', smoke],
        ['Pushed', inputs.push ? 'yes' : 'no'],
      ],
    },
    { heading: 'Tags', code: refs.join('\n') },
    { heading: 'Phases', table: { header: ['Phase', 'Time'], rows: phases.rows() } },
  ]);
}

function defaultBranch(): string {
  try {
    const event = JSON.parse(fs.readFileSync(process.env.GITHUB_EVENT_PATH ?? '', 'utf8')) as { repository?: { default_branch?: string } };
    if (event.repository?.default_branch) return event.repository.default_branch;
  } catch {
    // no event payload (local runs): assume main
  }
  return 'main';
}

async function prepareDockerfile(inputs: Inputs, root: string): Promise<{ path: string; generated: boolean }> {
  if (inputs.dockerfile) {
    core.info(`Using ${path.relative(root, inputs.dockerfile)}`);
    return { path: inputs.dockerfile, generated: false };
  }
  const file = path.join(inputs.context, 'Dockerfile');
  if (fs.existsSync(file)) {
    core.info(`Using ${path.relative(root, file)}`);
    return { path: file, generated: false };
  }
  const setup = optionalState('setupDjango');
  const managePy = findManagePy(inputs.context);
  const settingsModule =
    settingsModuleFromManagePy(fs.readFileSync(managePy, 'utf8')) || setup?.settingsModule || process.env.DJANGO_SETTINGS_MODULE;
  if (!settingsModule)
    throw new UserError(`${path.relative(root, managePy)} sets no DJANGO_SETTINGS_MODULE: the generated Dockerfile needs it.`);
  const pythonVersion = inputs.pythonVersion || setup?.pythonVersion || projectPython(inputs.context, path.dirname(managePy));
  const minor = /^(\d+\.\d+)/.exec(pythonVersion)?.[1] ?? '3.12';
  const plan = planDjangoImage({
    contextDir: inputs.context,
    managePy,
    settingsModule,
    pythonVersion: minor,
    healthPath: inputs.healthPath,
  });
  fs.writeFileSync(file, renderDockerfile(plan));
  core.info(
    `Generated ${path.relative(root, file)}: python:${minor}-slim, ${plan.manager}, ${plan.application}${plan.asgi ? ' (ASGI)' : ''}`,
  );
  if (plan.addGunicorn) {
    annotate(
      'warning',
      `gunicorn is not among the project's dependencies: the generated Dockerfile installs it unpinned. Add it to ${plan.dependencyFiles.at(-1)!}.`,
    );
  }
  const ignore = path.join(inputs.context, '.dockerignore');
  if (!fs.existsSync(ignore)) {
    fs.writeFileSync(ignore, DOCKERIGNORE);
    core.info(`Generated ${path.relative(root, ignore)}`);
  }
  annotate('notice', `Generated ${path.relative(root, file)}: commit it to keep builds reproducible.`, { title: 'build-image' });
  return { path: file, generated: true };
}

/** .python-version, runtime.txt (python-3.11.7), else 3.12. */
function projectPython(...dirs: string[]): string {
  for (const dir of dirs) {
    const pv = path.join(dir, '.python-version');
    if (fs.existsSync(pv)) return fs.readFileSync(pv, 'utf8').trim().split('\n')[0]!;
    const rt = path.join(dir, 'runtime.txt');
    if (fs.existsSync(rt))
      return fs
        .readFileSync(rt, 'utf8')
        .trim()
        .replace(/^python-/, '');
  }
  return '3.12';
}

async function build(
  inputs: Inputs,
  builder: Builder,
  dockerfilePath: string,
  refs: string[],
  labels: Record<string, string>,
  temp: string,
): Promise<{ ms: number; cache: ReturnType<typeof cacheUse> }> {
  const original = fs.readFileSync(dockerfilePath, 'utf8');
  // Index settings reach a build only through secret mounts (in any option order): without one,
  // skip reading them (`pip config list` costs a Python start on every build).
  const mountsSecrets = /--mount=(\S*,)?type=secret\b/.test(original);
  const index =
    inputs.indexSettings && mountsSecrets
      ? collectIndexSettings(process.env, await runnerPipConfig())
      : { secrets: {}, described: [], skipped: [] };
  for (const d of index.described) core.info(`Index setting passed as a build secret: ${d}`);
  for (const s of index.skipped) core.info(`Index setting left out: ${s}`);
  const iidfile = path.join(temp, 'iid');
  const spec = {
    context: inputs.context,
    dockerfile: dockerfilePath,
    tags: refs,
    target: inputs.target || undefined,
    buildArgs: inputs.buildArgs,
    labels,
    iidfile,
    network: inputs.network || undefined,
  };
  let server: Awaited<ReturnType<typeof startSecretServer>> | undefined;
  let argv: string[];
  if (builder === 'buildx') {
    const secrets: Record<string, string> = {};
    for (const [id, body] of Object.entries(index.secrets)) {
      const file = path.join(temp, `secret-${id}`);
      fs.writeFileSync(file, body, { mode: 0o600 });
      secrets[id] = file;
    }
    const cacheRef = `${inputs.image.name}:buildcache`;
    const local = path.join(runnerTemp(), '.buildx-cache');
    const cache: Record<string, [string[], string[]]> = {
      gha: [['type=gha'], ['type=gha,mode=max']],
      registry: [[`type=registry,ref=${cacheRef}`], inputs.push ? [`type=registry,ref=${cacheRef},mode=max`] : []],
      local: [[`type=local,src=${local}`], [`type=local,dest=${local},mode=max`]],
      none: [[], []],
    };
    const [cacheFrom, cacheTo] = cache[inputs.cache]!;
    argv = buildArgv({ ...spec, secrets, platforms: inputs.platforms, cacheFrom, cacheTo, load: true }, 'buildx');
  } else {
    if (inputs.cache !== 'gha' && inputs.cache !== 'none')
      core.info(`cache: ${inputs.cache} needs buildx; the classic builder uses the engine's layer cache.`);
    let text = original;
    // Any RUN --mount: secret mounts are emulated, other kinds refused with a clear message.
    if (/--mount=/.test(original)) {
      server = await startSecretServer(index.secrets);
      let rewritten: ReturnType<typeof rewriteSecretMounts>;
      try {
        rewritten = rewriteSecretMounts(original, server.base);
      } catch (err) {
        await server.close();
        throw err;
      }
      text = rewritten.text;
      if (rewritten.ids.length) {
        core.info(
          `Classic builder: secret mounts (${rewritten.ids.join(', ')}) are served from the runner's loopback for this build only.`,
        );
        spec.network = spec.network ?? 'host';
      }
    }
    // One LABEL instruction instead of a container per --label (unless a target stage is picked).
    if (!inputs.target) {
      text = `${text.replace(/\s*$/, '')}\n${labelInstruction(labels)}\n`;
      spec.labels = {};
    }
    const file = path.join(temp, 'Dockerfile.classic');
    fs.writeFileSync(file, text, { mode: 0o600 });
    argv = buildArgv({ ...spec, dockerfile: file }, 'classic');
  }
  const started = Date.now();
  let result;
  try {
    result = await docker(argv, { env: buildEnv(builder), allowFailure: true, label: 'Building the image' });
  } finally {
    await server?.close();
  }
  const ms = Date.now() - started;
  const output = `${result.stdout}\n${result.stderr}`;
  if (result.exitCode !== 0) {
    const failure = buildFailure(builder === 'classic' ? result.stdout + result.stderr : result.stderr + result.stdout, builder);
    const line = failure?.index ? instructionLine(original, failure.index) : undefined;
    const where = path.relative(workspaceDir(), dockerfilePath);
    if (failure) {
      const instruction = failure.instruction.length > 200 ? `${failure.instruction.slice(0, 200)}…` : failure.instruction;
      annotate('error', `Build failed at step ${failure.step}: ${instruction}\n${failure.lastLines}`, {
        file: where,
        line,
        title: 'docker build',
      });
      throw new CommandError(
        `docker ${argv[0]}`,
        result.exitCode,
        failure.lastLines,
        `Build failed at step ${failure.step} (${where}${line ? `:${line}` : ''}) ${instruction}`,
      );
    }
    throw new CommandError(
      `docker ${argv.slice(0, 2).join(' ')}`,
      result.exitCode,
      output.trim().split('\n').slice(-15).join('\n'),
      'Build failed',
    );
  }
  return { ms, cache: cacheUse(output, builder) };
}

/** Post: log out of every registry main logged in to. */
export async function post(): Promise<void> {
  const registries = JSON.parse(core.getState(LOGGED_IN) || '[]') as string[];
  for (const registry of registries) {
    await logout(registry);
    core.info(`Logged out of ${registry}`);
  }
}
