import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '@slipway/toolkit/errors';
import { DOCKERIGNORE, planDjangoImage, renderDockerfile } from '@slipway/toolkit/dockerfile';
import { parseVersionRequest, satisfies } from '@slipway/toolkit/python-version';
import { renderCompose } from './compose';
import type { ProjectFacts } from './inspect';
import { GENERIC_PROFILE, renderCd, renderCi, renderRollback, type Profile, type Provider } from './workflows';

/** The stages a team adopts, in order: tests, an image, deploys, rollback. */
export const STAGES = ['ci', 'docker', 'cd', 'rollback'] as const;
export type Stage = (typeof STAGES)[number];

export interface PlannedFile {
  /** Relative to the project root. */
  path: string;
  content: string;
  stage: Stage;
}

/** Python versions the CI matrix may hold, oldest first. */
const SUPPORTED_PYTHONS = ['3.10', '3.11', '3.12', '3.13', '3.14'];

/** The project's Python as a matrix: its own minor, or the oldest and newest a range allows. */
export function pythonMatrix(facts: ProjectFacts): string[] {
  if (!facts.python) return GENERIC_PROFILE.pythonVersions;
  const exact = /^(?:python-?)?(\d+\.\d+)(\.\d+)?$/.exec(facts.python.text.trim());
  if (exact) return [exact[1]!];
  let spec: string;
  try {
    spec = parseVersionRequest(facts.python.text, facts.python.source).specifier;
  } catch {
    return GENERIC_PROFILE.pythonVersions;
  }
  const ok = SUPPORTED_PYTHONS.filter((v) => satisfies(`${v}.0`, spec) || satisfies(`${v}.99`, spec));
  if (ok.length === 0) return GENERIC_PROFILE.pythonVersions;
  return ok.length === 1 ? ok : [ok[0]!, ok[ok.length - 1]!];
}

export function profileFor(facts: ProjectFacts, provider: Provider): Profile {
  return {
    branch: facts.defaultBranch ?? 'main',
    pythonVersions: pythonMatrix(facts),
    workingDirectory: facts.workingDirectory,
    database: facts.database.vendor,
    // One shard for a handful of test files; two once there is enough to split.
    shards: facts.tests.files >= 4 ? 2 : 1,
    provider,
  };
}

export function planFiles(facts: ProjectFacts, stages: Stage[], provider: Provider): PlannedFile[] {
  const profile = profileFor(facts, provider);
  const files: PlannedFile[] = [];
  for (const stage of stages) {
    if (stage === 'ci') files.push({ stage, path: '.github/workflows/django-ci.yml', content: renderCi(profile) });
    if (stage === 'docker') files.push(...dockerFiles(facts, profile));
    if (stage === 'cd') files.push({ stage, path: '.github/workflows/django-cd.yml', content: renderCd(profile) });
    if (stage === 'rollback') {
      files.push({ stage, path: '.github/workflows/django-rollback.yml', content: renderRollback(profile) });
    }
  }
  return files;
}

/**
 * compose.yaml, plus the Dockerfile build-image would generate (and its .dockerignore) when the
 * project has none, so `docker compose up` and CI build the same image.
 */
function dockerFiles(facts: ProjectFacts, profile: Profile): PlannedFile[] {
  const files: PlannedFile[] = [];
  if (!facts.dockerfile) {
    const plan = planDjangoImage({
      contextDir: facts.root,
      managePy: path.join(facts.root, facts.workingDirectory, 'manage.py'),
      settingsModule: facts.settingsModule ?? '',
      pythonVersion: profile.pythonVersions[profile.pythonVersions.length - 1]!,
      healthPath: '/healthz',
    });
    files.push({ stage: 'docker', path: 'Dockerfile', content: renderDockerfile(plan) });
    if (!fs.existsSync(path.join(facts.root, '.dockerignore'))) {
      files.push({ stage: 'docker', path: '.dockerignore', content: DOCKERIGNORE });
    }
  }
  files.push({ stage: 'docker', path: 'compose.yaml', content: renderCompose(facts) });
  return files;
}

/** Refuses to overwrite anything unless `force`; checks every file before writing any. */
export function writeFiles(root: string, files: PlannedFile[], force: boolean): void {
  if (!force) {
    const existing = files.filter((f) => fs.existsSync(path.join(root, f.path))).map((f) => f.path);
    if (existing.length) {
      throw new UserError(`${existing.join(', ')} already exist${existing.length === 1 ? 's' : ''}: pass --force to overwrite.`);
    }
  }
  for (const f of files) {
    const target = path.join(root, f.path);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(`${target}.slipway-tmp`, f.content);
    fs.renameSync(`${target}.slipway-tmp`, target);
  }
}

export interface Setting {
  kind: 'secret' | 'variable';
  name: string;
  /** Where to create it. */
  scope: string;
  what: string;
}

const ENVS = 'environments staging and production';
const REPO = 'repository';

/** The secrets and variables the written workflows read, and where to create them. */
export function requiredSettings(stages: Stage[], provider: Provider): Setting[] {
  const out: Setting[] = [];
  const deploys = stages.includes('cd') || stages.includes('rollback');
  if (!deploys) return out;
  const add = (kind: Setting['kind'], name: string, what: string, scope = ENVS): void => {
    out.push({ kind, name, scope, what });
  };
  if (stages.includes('cd')) {
    add('secret', 'DATABASE_URL', 'the database of that environment, e.g. postgres://user:password@host:5432/name');
    add('secret', 'DJANGO_SECRET_KEY', 'a long random value, different per environment');
    add('variable', 'DJANGO_ALLOWED_HOSTS', 'comma-separated host names the site answers to');
  }
  switch (provider) {
    case 'ssh':
      add('variable', 'DEPLOY_HOSTS', 'servers to deploy to, as user@host[:port], comma separated');
      add('secret', 'SSH_PRIVATE_KEY', 'a private key allowed to log in to those servers');
      add('variable', 'SSH_KNOWN_HOSTS', 'their host keys (ssh-keyscan -p PORT HOST, run from a trusted network)');
      break;
    case 'heroku':
      add('variable', 'HEROKU_APP', 'the Heroku app of that environment');
      add('secret', 'HEROKU_API_KEY', 'a Heroku API key (heroku authorizations:create)');
      break;
    case 'aws-eb':
      add('variable', 'AWS_ROLE_ARN', 'an IAM role trusting GitHub OIDC for this repository and environment');
      add('variable', 'AWS_REGION', 'e.g. eu-west-1');
      add('variable', 'EB_APPLICATION', 'the Elastic Beanstalk application');
      add('variable', 'EB_ENVIRONMENT', 'the Elastic Beanstalk environment');
      add('variable', 'EB_S3_BUCKET', 'the S3 bucket for application bundles');
      add('variable', 'IMAGE_REGISTRY', 'the Amazon ECR registry, <account>.dkr.ecr.<region>.amazonaws.com', REPO);
      if (stages.includes('cd')) {
        add('variable', 'AWS_ROLE_ARN', 'for the build (no environment): a role trusting GitHub OIDC that may push to ECR', REPO);
        add('variable', 'AWS_REGION', 'the build role’s region', REPO);
      }
      break;
    case 'cloud-run':
      add('variable', 'GCP_WORKLOAD_IDENTITY_PROVIDER', 'projects/N/locations/global/workloadIdentityPools/POOL/providers/PROVIDER');
      add('variable', 'GCP_SERVICE_ACCOUNT', 'the service account GitHub impersonates');
      add('variable', 'GCP_REGION', 'e.g. europe-west1');
      add('variable', 'CLOUD_RUN_SERVICE', 'the Cloud Run service');
      add('variable', 'IMAGE_REGISTRY', 'the Artifact Registry host, <location>-docker.pkg.dev', REPO);
      if (stages.includes('cd')) {
        add('variable', 'GAR_REPOSITORY', 'the Artifact Registry repository images go to, <project>/<repository>', REPO);
        add('variable', 'GCP_WORKLOAD_IDENTITY_PROVIDER', 'for the build (no environment): the same kind of provider', REPO);
        add('variable', 'GCP_SERVICE_ACCOUNT', 'for the build: a service account that may push to GAR_REPOSITORY', REPO);
      }
      break;
  }
  return out;
}

/** Variables the written workflows read when set, each with what unset means. */
export function optionalSettings(stages: Stage[], provider: Provider): string[] {
  const out: string[] = [];
  if ((stages.includes('cd') || stages.includes('rollback')) && (provider === 'ssh' || provider === 'heroku')) {
    out.push('variable IMAGE_REGISTRY: another registry than ghcr.io (with variable REGISTRY_USERNAME and secret REGISTRY_PASSWORD)');
  }
  if (provider === 'ssh' && (stages.includes('cd') || stages.includes('rollback'))) {
    out.push('variables APP_NAME, APP_PORT, PROXY_PORT: staging and production on one server (unset: repository name, 8000, 80)');
  }
  return out;
}

/** The closing text: what was written and what the team must create, grouped by where. */
export function report(files: PlannedFile[], facts: ProjectFacts, stages: Stage[], provider: Provider): string {
  const lines: string[] = [];
  lines.push(`Django project: ${facts.workingDirectory || '.'} (settings ${facts.settingsModule ?? 'not set in manage.py'})`);
  lines.push(
    `  Python ${pythonMatrix(facts).join(', ')}${facts.python ? ` (from ${facts.python.source})` : ' (no version file: defaults)'}`,
  );
  lines.push(`  dependencies: ${facts.packageManager}; database: ${facts.database.vendor} (${facts.database.evidence})`);
  lines.push(
    `  tests: ${facts.tests.runner}, ${facts.tests.files} test file(s); Dockerfile: ${facts.dockerfile ?? (stages.includes('docker') ? 'none: wrote the one build-image generates' : 'none (build-image generates one)')}`,
  );
  lines.push('');
  lines.push('Wrote:');
  for (const f of files) lines.push(`  ${f.path}  (${f.stage})`);
  const settings = requiredSettings(stages, provider);
  lines.push('');
  if (settings.length === 0) {
    lines.push('No secrets or variables to create: GITHUB_TOKEN is enough.');
  } else {
    const line = (s: Setting): string => `  ${s.kind === 'secret' ? 'secret  ' : 'variable'} ${s.name}: ${s.what}`;
    lines.push('Create these in GitHub: Settings > Environments > staging and production (each its own values):');
    for (const s of settings.filter((x) => x.scope === ENVS)) lines.push(line(s));
    if (stages.includes('cd')) lines.push('  production: add Required reviewers, so production deploys wait for approval.');
    for (const l of optionalSettings(stages, provider)) lines.push(`  optional: ${l}`);
    const repo = settings.filter((x) => x.scope === REPO);
    if (repo.length) {
      lines.push('And in Settings > Secrets and variables > Actions (repository level):');
      for (const s of repo) lines.push(line(s));
    }
  }
  if (stages.includes('docker')) {
    lines.push('');
    lines.push('Local development: docker compose up (compose.yaml: the app and its database).');
  }
  return lines.join('\n');
}

export function parseStages(positional: string[]): Stage[] {
  if (positional.length === 0) return [...STAGES];
  const out: Stage[] = [];
  for (const s of positional) {
    if (!(STAGES as readonly string[]).includes(s)) {
      throw new UsageError(`Unknown stage \`${s}\`: use one of ${STAGES.join(', ')} (or none for all, in that order).`);
    }
    if (!out.includes(s as Stage)) out.push(s as Stage);
  }
  return STAGES.filter((s) => out.includes(s));
}

/** A mistake in the command line itself: exit code 2. */
export class UsageError extends UserError {
  override name = 'UsageError';
}
