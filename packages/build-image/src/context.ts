import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '@slipway/toolkit/errors';
import { parseImageName, validateTag, type ImageName } from '@slipway/toolkit/image-ref';
import { getBoolean, getChoice, getDotenv, getDuration, getList, getRequired, getString } from '@slipway/toolkit/inputs';
import { looksSecret, maskSecret } from '@slipway/toolkit/secrets';

export const CACHE_KINDS = ['gha', 'registry', 'local', 'none'] as const;

export interface Inputs {
  image: ImageName;
  tags: string[];
  push: boolean;
  /** Absolute path when given; undefined means "context/Dockerfile, generated when missing". */
  dockerfile?: string;
  context: string;
  target: string;
  buildArgs: [string, string][];
  platforms: string[];
  cache: (typeof CACHE_KINDS)[number];
  registry: string;
  registryUsername: string;
  registryPassword: string;
  githubToken: string;
  smokeTest: boolean;
  smokeTestEnv: Map<string, string>;
  smokeTestTimeoutMs: number;
  healthPath: string;
  pythonVersion: string;
  indexSettings: boolean;
  network: string;
}

const HEALTH_PATH = /^\/[A-Za-z0-9_.~/-]*(\?[A-Za-z0-9_.~=&-]*)?$/;
const PLATFORM = /^[a-z0-9]+\/[a-z0-9]+(\/[a-z0-9]+)?$/;

/** Every input, validated before anything runs. */
export function getInputs(workspace: string): Inputs {
  const registryPassword = getString('registry-password');
  const githubToken = getString('github-token');
  maskSecret(registryPassword);
  maskSecret(githubToken);
  const image = parseImageName(getRequired('image', 'the image name without a tag, e.g. ghcr.io/acme/shop.'));
  const tags = getList('tags').map((t) => validateTag(t, 'tags'));

  const context = path.resolve(workspace, getString('context') || '.');
  if (!fs.existsSync(context) || !fs.statSync(context).isDirectory()) {
    throw new UserError(`Input \`context\` (${getString('context')}) is not a folder in the workspace.`);
  }
  const dockerfileInput = getString('dockerfile');
  let dockerfile: string | undefined;
  if (dockerfileInput) {
    dockerfile = path.resolve(workspace, dockerfileInput);
    if (!fs.existsSync(dockerfile) || !fs.statSync(dockerfile).isFile()) {
      throw new UserError(
        `Input \`dockerfile\` (${dockerfileInput}) does not exist: give the path of an existing Dockerfile, or leave it empty to use or generate ${path.relative(workspace, path.join(context, 'Dockerfile')) || 'Dockerfile'}.`,
      );
    }
  }
  const buildArgs = [...getDotenv('build-args')];
  for (const [key, value] of buildArgs) {
    if (looksSecret(key)) {
      maskSecret(value);
      throw new UserError(
        `Input \`build-args\` has ${key}, which looks like a secret: build args stay in the image history. Pass index credentials through the runner's PIP_INDEX_URL / UV_INDEX_URL (sent as build secrets) instead.`,
      );
    }
  }
  const platforms = getList('platforms');
  for (const p of platforms) {
    if (!PLATFORM.test(p)) throw new UserError(`Input \`platforms\` has ${JSON.stringify(p)}: use os/arch[/variant], e.g. linux/amd64.`);
  }
  const healthPath = getString('health-path') || '/healthz';
  if (!HEALTH_PATH.test(healthPath)) {
    throw new UserError(`Input \`health-path\` must be a URL path starting with /, e.g. /healthz; got ${JSON.stringify(healthPath)}.`);
  }
  const pythonVersion = getString('python-version');
  if (pythonVersion && !/^3\.\d+(\.\d+)?$/.test(pythonVersion)) {
    throw new UserError(`Input \`python-version\` must be a CPython version such as 3.12; got ${JSON.stringify(pythonVersion)}.`);
  }
  const smokeTestEnv = getDotenv('smoke-test-env');
  for (const [key, value] of smokeTestEnv) if (looksSecret(key)) maskSecret(value);
  const network = getString('network');
  if (network && !/^[\w.-]+$/.test(network))
    throw new UserError(`Input \`network\` must be a network name such as host; got ${JSON.stringify(network)}.`);
  const registry = getString('registry').toLowerCase();
  if (registry && !/^[a-z0-9.-]+(:\d+)?$/.test(registry)) {
    throw new UserError(`Input \`registry\` must be a registry host such as ghcr.io; got ${JSON.stringify(registry)}.`);
  }
  return {
    image,
    tags,
    push: getBoolean('push', false),
    dockerfile,
    context,
    target: getString('target'),
    buildArgs,
    platforms,
    cache: getChoice('cache', CACHE_KINDS, 'gha'),
    registry: registry || image.registry,
    registryUsername: getString('registry-username'),
    registryPassword,
    githubToken,
    smokeTest: getBoolean('smoke-test', true),
    smokeTestEnv,
    smokeTestTimeoutMs: getDuration('smoke-test-timeout', 60_000),
    healthPath,
    pythonVersion,
    indexSettings: getBoolean('index-settings', true),
    network,
  };
}
