/**
 * The workflows Slipway writes: django-ci.yml, django-cd.yml, django-rollback.yml, rendered
 * from a Profile (what `init` learned about a project; GENERIC_PROFILE gives the organisation
 * templates in workflow-templates/). Text, not a YAML object, so comments survive and the files
 * read like hand-written ones. No `${{ }}` ever goes into a `run:` script: there are none.
 */

export const PROVIDERS = ['ssh', 'heroku', 'aws-eb', 'cloud-run'] as const;
export type Provider = (typeof PROVIDERS)[number];
export type DatabaseVendor = 'postgresql' | 'mysql' | 'sqlite';

/** Where our actions live: `uses: <ACTIONS_REPO>/actions/<name>@<ACTIONS_REF>`. */
export const ACTIONS_REPO = 'slipway-dev/slipway';
export const ACTIONS_REF = 'v1';

/** Majors of other actions, all running on Node 24. */
export const THIRD_PARTY = {
  checkout: 'actions/checkout@v6',
  dockerLogin: 'docker/login-action@v4',
  awsCredentials: 'aws-actions/configure-aws-credentials@v6',
  googleAuth: 'google-github-actions/auth@v3',
} as const;

export interface Profile {
  /** Branch that deploys; `$default-branch` in organisation templates. */
  branch: string;
  pythonVersions: string[];
  /** Folder holding manage.py relative to the repository root; '' for the root. */
  workingDirectory: string;
  database: DatabaseVendor;
  shards: number;
  provider: Provider;
}

export const GENERIC_PROFILE: Profile = {
  branch: '$default-branch',
  pythonVersions: ['3.12', '3.13'],
  workingDirectory: '',
  database: 'postgresql',
  shards: 2,
  provider: 'ssh',
};

const e = (expr: string): string => `\${{ ${expr} }}`;

/**
 * The image registry: GitHub Container Registry with the workflow's own token unless the
 * repository's variables name another (IMAGE_REGISTRY, REGISTRY_USERNAME; secret REGISTRY_PASSWORD).
 */
const REGISTRY = {
  host: e("vars.IMAGE_REGISTRY || 'ghcr.io'"),
  username: e('vars.REGISTRY_USERNAME || github.actor'),
  password: e('secrets.REGISTRY_PASSWORD || secrets.GITHUB_TOKEN'),
};
const use = (name: string): string => `${ACTIONS_REPO}/actions/${name}@${ACTIONS_REF}`;
const q = (s: string): string => JSON.stringify(s);

/** `with:` lines for a working directory, indented for a step. */
function workdir(p: Profile, indent: string): string {
  return p.workingDirectory ? `${indent}working-directory: ${p.workingDirectory}\n` : '';
}

function ciDatabase(p: Profile): { service: string; env: string; waitFor: string } {
  if (p.database === 'postgresql') {
    return {
      service: `    services:
      postgres:
        image: postgres:17
        env:
          POSTGRES_USER: postgres
          POSTGRES_PASSWORD: postgres
          POSTGRES_DB: django_ci
        ports:
          - 5432:5432
        options: >-
          --health-cmd pg_isready
          --health-interval 5s
          --health-timeout 5s
          --health-retries 12
`,
      env: `      DATABASE_URL: postgres://postgres:postgres@localhost:5432/django_ci\n`,
      waitFor: `          wait-for: ${e('env.DATABASE_URL')}\n`,
    };
  }
  if (p.database === 'mysql') {
    return {
      service: `    services:
      mysql:
        image: mysql:8.4
        env:
          MYSQL_ROOT_PASSWORD: mysql
          MYSQL_DATABASE: django_ci
        ports:
          - 3306:3306
        options: >-
          --health-cmd "mysqladmin ping -h 127.0.0.1 -pmysql"
          --health-interval 5s
          --health-timeout 5s
          --health-retries 12
`,
      env: `      DATABASE_URL: mysql://root:mysql@127.0.0.1:3306/django_ci\n`,
      waitFor: `          wait-for: ${e('env.DATABASE_URL')}\n`,
    };
  }
  return { service: '', env: '', waitFor: '' };
}

export function renderCi(p: Profile): string {
  const db = ciDatabase(p);
  const shards = Array.from({ length: p.shards }, (_, i) => q(`${i + 1}/${p.shards}`)).join(', ');
  const dbNote =
    p.database === 'sqlite'
      ? '# The project uses SQLite: Django creates the test database itself, no service needed.\n'
      : `# A throwaway ${p.database === 'mysql' ? 'MySQL' : 'PostgreSQL'} service; the settings are expected to read DATABASE_URL.\n`;
  return `# Slipway starter workflow: test a Django project on every push and pull request.
# setup-django installs Python and the project's dependencies into a cached virtualenv;
# run-tests runs the suite (Django's runner or pytest) split into shards, with coverage.
${dbNote}name: Django CI

on:
  push:
    branches: [${p.branch}]
  pull_request:

permissions:
  contents: read

concurrency:
  group: ci-${e('github.workflow')}-${e('github.ref')}
  # A newer push to the same branch makes this run obsolete: tests have no side effects.
  cancel-in-progress: true

jobs:
  test:
    name: Python ${e('matrix.python-version')}, shard ${e('matrix.shard')}
    runs-on: ubuntu-latest
    timeout-minutes: 30
    strategy:
      fail-fast: false
      matrix:
        python-version: [${p.pythonVersions.map(q).join(', ')}]
        # Each shard runs its part of the suite, balanced by the timings of earlier runs.
        shard: [${shards}]
${db.service}    env:
      # CI-only values: a throwaway database and key, never your real ones.
${db.env}      DJANGO_SECRET_KEY: ci-only-insecure-secret-key
    steps:
      - uses: ${THIRD_PARTY.checkout}

      - id: setup
        uses: ${use('setup-django')}
        with:
          python-version: ${e('matrix.python-version')}
${workdir(p, '          ')}${db.waitFor}
      - id: tests
        uses: ${use('run-tests')}
        with:
          shard: ${e('matrix.shard')}
          coverage: true
`;
}

interface ProviderParts {
  /** Extra job permissions (OIDC). */
  permissions: string;
  /** Steps before migrate/deploy (cloud credentials). */
  auth: string;
  /** deploy/rollback `with:` lines naming the target. */
  target: string;
}

function providerParts(provider: Provider): ProviderParts {
  switch (provider) {
    case 'ssh':
      return {
        permissions: '',
        auth: '',
        target: `          hosts: ${e('vars.DEPLOY_HOSTS')}
          ssh-private-key: ${e('secrets.SSH_PRIVATE_KEY')}
          ssh-known-hosts: ${e('vars.SSH_KNOWN_HOSTS')}
          # Optional (unset: the repository's name, app on ports 8000/8001, HAProxy on 80). Staging
          # and production on one server need their own APP_NAME, APP_PORT and PROXY_PORT.
          app-name: ${e('vars.APP_NAME')}
          app-port: ${e('vars.APP_PORT')}
          proxy-port: ${e('vars.PROXY_PORT')}
`,
      };
    case 'heroku':
      return {
        permissions: '',
        auth: '',
        target: `          heroku-app: ${e('vars.HEROKU_APP')}
          heroku-api-key: ${e('secrets.HEROKU_API_KEY')}
`,
      };
    case 'aws-eb':
      return {
        permissions: '      id-token: write # OIDC: short-lived AWS credentials, no stored keys\n',
        auth: `      - uses: ${THIRD_PARTY.awsCredentials}
        with:
          role-to-assume: ${e('vars.AWS_ROLE_ARN')}
          aws-region: ${e('vars.AWS_REGION')}

`,
        target: `          aws-region: ${e('vars.AWS_REGION')}
          eb-application: ${e('vars.EB_APPLICATION')}
          eb-environment: ${e('vars.EB_ENVIRONMENT')}
          eb-s3-bucket: ${e('vars.EB_S3_BUCKET')}
`,
      };
    case 'cloud-run':
      return {
        permissions: '      id-token: write # OIDC: Workload Identity Federation, no stored keys\n',
        auth: `      - uses: ${THIRD_PARTY.googleAuth}
        with:
          workload_identity_provider: ${e('vars.GCP_WORKLOAD_IDENTITY_PROVIDER')}
          service_account: ${e('vars.GCP_SERVICE_ACCOUNT')}

`,
        // The project comes from the auth step (GOOGLE_CLOUD_PROJECT).
        target: `          cloud-run-service: ${e('vars.CLOUD_RUN_SERVICE')}
          gcp-region: ${e('vars.GCP_REGION')}
`,
      };
  }
}

/** The application's environment, from the GitHub environment's secrets and variables. */
const APP_ENV = `            DATABASE_URL=${e('secrets.DATABASE_URL')}
            DJANGO_SECRET_KEY=${e('secrets.DJANGO_SECRET_KEY')}
            DJANGO_ALLOWED_HOSTS=${e('vars.DJANGO_ALLOWED_HOSTS')}
`;

/** The first deploy to a new server sets up its proxy; later ones check it (idempotent). */
const SETUP_HOST = `          setup-host: true
`;

function deployJob(p: Profile, env: 'staging' | 'production', needs: string): string {
  const parts = providerParts(p.provider);
  return `  ${env}:
    name: Deploy to ${env}
    needs: ${needs}
    runs-on: ubuntu-latest
    timeout-minutes: 30
    environment:
      name: ${env}
      url: ${e('steps.deploy.outputs.url')}
    # One deploy per environment at a time. Never cancel one in progress: it may be migrating.
    concurrency:
      group: deploy-${env}
      cancel-in-progress: false
    permissions:
      contents: read
      deployments: write # release records (GitHub Deployments)
      packages: read # pull the image to migrate with it
${parts.permissions}    steps:
      - uses: ${THIRD_PARTY.checkout}

${parts.auth}      - uses: ${THIRD_PARTY.dockerLogin}
        with:
          registry: ${REGISTRY.host}
          username: ${REGISTRY.username}
          password: ${REGISTRY.password}

      # migrate reads the project's Python, manage.py and settings module from setup-django.
      - uses: ${use('setup-django')}
${p.workingDirectory ? `        with:\n          working-directory: ${p.workingDirectory}\n` : ''}
      # Migrations run once, inside the new image, before traffic moves. If the database is
      # reachable only from the servers, drop these two steps and set \`migrate: true\` on deploy.
      - id: migrate
        uses: ${use('migrate')}
        with:
          image: ${e('needs.build.outputs.image')}
${workdir(p, '          ')}          env: |
${APP_ENV}
      - id: deploy
        uses: ${use('deploy')}
        with:
          provider: ${p.provider}
          environment: ${env}
          image: ${e('needs.build.outputs.image')}
${parts.target}${p.provider === 'ssh' ? SETUP_HOST : ''}          env: |
${APP_ENV}`;
}

export function renderCd(p: Profile): string {
  return `# Slipway starter workflow: build an image, migrate, deploy to staging, then to production.
# Production waits for the reviewers of its GitHub environment (Settings > Environments >
# production > Required reviewers). Provider: ${p.provider}.
name: Django CD

on:
  push:
    branches: [${p.branch}]
  workflow_dispatch:

# Nothing by default; each job asks for what it needs.
permissions: {}

jobs:
  build:
    name: Build the image
    runs-on: ubuntu-latest
    timeout-minutes: 30
    permissions:
      contents: read
      packages: write # push to GitHub Container Registry
    outputs:
      image: ${e('steps.image.outputs.image')}
    steps:
      - uses: ${THIRD_PARTY.checkout}

      # GitHub Container Registry; another one: set the variable IMAGE_REGISTRY (and
      # REGISTRY_USERNAME with the secret REGISTRY_PASSWORD when GITHUB_TOKEN cannot log in there).
      - id: image
        uses: ${use('build-image')}
        with:
          image: ${REGISTRY.host}/${e('github.repository')}
${p.workingDirectory ? `          context: ${p.workingDirectory}\n` : ''}          push: true
          registry-username: ${REGISTRY.username}
          registry-password: ${REGISTRY.password}
          # The smoke test starts the image away from your databases: a throwaway SQLite file.
          smoke-test-env: |
            DATABASE_URL=sqlite:////tmp/smoke.sqlite3

${deployJob(p, 'staging', 'build')}
${deployJob(p, 'production', '[build, staging]')}`;
}

export function renderRollback(p: Profile): string {
  const parts = providerParts(p.provider);
  return `# Slipway starter workflow: roll an environment back to an earlier release, by hand.
# Actions > Django rollback > Run workflow. Start with dry-run to see the plan.
name: Django rollback

on:
  workflow_dispatch:
    inputs:
      environment:
        description: Environment to roll back
        type: choice
        options: [production, staging]
        default: production
      to:
        description: previous, a release id, a git sha, or an image reference
        type: string
        default: previous
      database:
        description: "What to do with the database: auto (migrate back when the release applied migrations), none, migrate-back, restore-backup"
        type: choice
        options: [auto, none, migrate-back, restore-backup]
        default: auto
      dry-run:
        description: Show the plan and change nothing
        type: boolean
        default: true

permissions: {}

jobs:
  rollback:
    name: Roll back ${e('inputs.environment')}
    runs-on: ubuntu-latest
    timeout-minutes: 30
    environment: ${e('inputs.environment')}
    # Shares the deploy workflow's group: a rollback never runs during a deploy of the same
    # environment, and neither is ever cancelled half-way.
    concurrency:
      group: deploy-${e('inputs.environment')}
      cancel-in-progress: false
    permissions:
      contents: read
      deployments: write # read and write release records (GitHub Deployments)
      packages: read # pull the earlier image to migrate back with it
${parts.permissions}    steps:
      - uses: ${THIRD_PARTY.checkout}

${parts.auth}      - uses: ${THIRD_PARTY.dockerLogin}
        with:
          registry: ${REGISTRY.host}
          username: ${REGISTRY.username}
          password: ${REGISTRY.password}

      - id: rollback
        uses: ${use('rollback')}
        with:
          environment: ${e('inputs.environment')}
          to: ${e('inputs.to')}
          database: ${e("inputs.database != 'auto' && inputs.database || ''")}
          dry-run: ${e('inputs.dry-run')}
          provider: ${p.provider}
${parts.target}          # Database settings, for migrating back (or restoring a backup).
          env: |
            DATABASE_URL=${e('secrets.DATABASE_URL')}
            DJANGO_SECRET_KEY=${e('secrets.DJANGO_SECRET_KEY')}
`;
}

export const WORKFLOW_FILES = {
  ci: 'django-ci.yml',
  cd: 'django-cd.yml',
  rollback: 'django-rollback.yml',
} as const;

/** What GitHub shows for each organisation template (`<name>.properties.json`). */
export const TEMPLATE_PROPERTIES: Record<keyof typeof WORKFLOW_FILES, Record<string, unknown>> = {
  ci: {
    name: 'Django CI (Slipway)',
    description: 'Test a Django project: Python matrix, PostgreSQL service, sharded test suite with coverage, cached virtualenv.',
    iconName: 'slipway',
    categories: ['Python', 'Django', 'Continuous integration'],
    filePatterns: ['manage\\.py$', 'requirements.*\\.txt$', 'pyproject\\.toml$'],
  },
  cd: {
    name: 'Django CD (Slipway)',
    description: 'Build an image, migrate, deploy to staging then to production behind reviewers; zero-downtime, recorded releases.',
    iconName: 'slipway',
    categories: ['Python', 'Django', 'Deployment'],
    filePatterns: ['manage\\.py$'],
  },
  rollback: {
    name: 'Django rollback (Slipway)',
    description: 'Roll an environment back to an earlier release (image, config and database), by hand, with a dry run.',
    iconName: 'slipway',
    categories: ['Python', 'Django', 'Deployment'],
    filePatterns: ['manage\\.py$'],
  },
};
