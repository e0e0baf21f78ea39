import { readAppEnv, readHealth, readReleaseStore } from '@slipway/targets/common-inputs';
import { getSshRuntime } from '@slipway/targets/ssh/inputs';
import { PROVIDERS, type HealthCheck, type ProviderName } from '@slipway/targets/types';
import { UserError } from '@slipway/toolkit/errors';
import { getBoolean, getInteger, getRequired, getString } from '@slipway/toolkit/inputs';
import { checkEnvironmentName } from '@slipway/toolkit/releases';
import { readSentrySettings, type SentrySettings } from '@slipway/toolkit/sentry';
import { optionalState } from '@slipway/toolkit/state';

export interface Inputs {
  provider: ProviderName;
  environment: string;
  appName: string;
  image: string;
  imageDigest: string | null;
  env: Map<string, string>;
  health: HealthCheck;
  rollbackOnFailure: boolean;
  migrate: boolean;
  keepReleases: number;
  /** 'github' or an absolute directory. */
  releaseStore: 'github' | { dir: string };
  githubToken: string;
  /** Sentry release tracking; undefined without `sentry-auth-token` / SENTRY_AUTH_TOKEN. */
  sentry: SentrySettings | undefined;
}

const DIGEST = /@(sha256:[0-9a-f]{64})$/;
const IMAGE_REF =
  /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$/;
const APP_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

/** The image reference and its digest, checked; `requireDigest` refuses a tag alone. */
export function parseImage(ref: string, requireDigest: boolean): { image: string; digest: string | null } {
  if (!IMAGE_REF.test(ref)) {
    throw new UserError(`Input \`image\` is not an image reference (name[:tag][@sha256:…]); got ${JSON.stringify(ref)}.`);
  }
  const digest = DIGEST.exec(ref)?.[1] ?? null;
  if (!digest && requireDigest) {
    throw new UserError(
      `Input \`image\` has no digest (${ref}): deploy name@sha256:… (build-image's output), or set \`require-digest: false\`.`,
    );
  }
  return { image: ref, digest };
}

/** A container-safe app name, by default the repository's name. */
export function defaultAppName(repository: string | undefined): string {
  const name = (repository?.split('/')[1] ?? 'app')
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '');
  return name.slice(0, 63) || 'app';
}

/** Every input, validated before anything runs. */
export function getInputs(): Inputs {
  const providerName = getRequired('provider', `one of ${PROVIDERS.join(', ')}.`);
  if (!(PROVIDERS as readonly string[]).includes(providerName)) {
    throw new UserError(`Input \`provider\` must be one of ${PROVIDERS.join(', ')}; got ${JSON.stringify(providerName)}.`);
  }
  const environment = checkEnvironmentName(getRequired('environment', 'the environment name, e.g. production.'));
  const appName = getString('app-name') || defaultAppName(process.env.GITHUB_REPOSITORY);
  if (!APP_NAME.test(appName)) {
    throw new UserError(`Input \`app-name\` must be lower-case letters, digits, . _ - (up to 63); got ${JSON.stringify(appName)}.`);
  }
  const requireDigest = getBoolean('require-digest', true);
  // ssh-runtime release-dir deploys the checked-out commit itself: no image.
  const fromSource = providerName === 'ssh' && getSshRuntime() === 'release-dir';
  const imageInput = fromSource ? '' : getString('image') || optionalState('buildImage')?.image || '';
  if (!imageInput && !fromSource) throw new UserError('Input `image` is required (name@sha256:…), or run build-image earlier in this job.');
  const { image, digest } = fromSource
    ? { image: `git:${process.env.GITHUB_SHA ?? 'HEAD'}`, digest: null }
    : parseImage(imageInput, requireDigest);

  const env = readAppEnv();
  const health = readHealth();
  const { releaseStore, githubToken } = readReleaseStore();
  const sentry = readSentrySettings();
  return {
    provider: providerName as ProviderName,
    environment,
    appName,
    image,
    imageDigest: digest,
    env,
    health,
    rollbackOnFailure: getBoolean('rollback-on-failure', true),
    migrate: getBoolean('migrate', false),
    keepReleases: getInteger('keep-releases', 3, { min: 1, max: 50 }),
    releaseStore,
    githubToken,
    sentry,
  };
}
