/**
 * The workflows Slipway writes: django-ci.yml, django-cd.yml, django-rollback.yml, rendered
 * from a Profile (what `init` learned about a project; GENERIC_PROFILE with each provider gives
 * the organisation templates in workflow-templates/, STARTER_TEMPLATES). Text, not a YAML object, so comments survive and the files
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
 * Where the image goes, per provider. ssh and heroku: GitHub Container Registry with the
 * workflow's own token unless the repository's variables name another (IMAGE_REGISTRY,
 * REGISTRY_USERNAME; secret REGISTRY_PASSWORD); heroku re-pushes the image to its own registry.
 * The clouds pull from their own registry with the identity OIDC gives the job: Amazon ECR for
 * Elastic Beanstalk (its instances pull with their instance profile; a private GHCR image would
 * need credentials in Dockerrun.aws.json), Artifact Registry for Cloud Run (it deploys from no
 * other registry but Docker Hub).
 */
interface Registry {
  /** The image build-image pushes (without tag). */
  image: string;
  /** `with:` lines of docker/login-action before migrate or rollback pull the image. */
  login: string;
  /** build-image's credential lines; '' lets build-image use the registry's convention. */
  buildCredentials: string;
  /** The comment above build-image. */
  buildNote: string;
  /** GHCR: push needs packages: write, pull packages: read. The clouds' registries go by OIDC. */
  ghcr: boolean;
}

const GHCR_REGISTRY: Registry = {
  image: `${e("vars.IMAGE_REGISTRY || 'ghcr.io'")}/${e('github.repository')}`,
  login: `          registry: ${e("vars.IMAGE_REGISTRY || 'ghcr.io'")}
          username: ${e('vars.REGISTRY_USERNAME || github.actor')}
          password: ${e('secrets.REGISTRY_PASSWORD || secrets.GITHUB_TOKEN')}
`,
  buildCredentials: `          registry-username: ${e('vars.REGISTRY_USERNAME || github.actor')}
          registry-password: ${e('secrets.REGISTRY_PASSWORD || secrets.GITHUB_TOKEN')}
`,
  buildNote: `      # GitHub Container Registry; another one: set the variable IMAGE_REGISTRY (and
      # REGISTRY_USERNAME with the secret REGISTRY_PASSWORD when GITHUB_TOKEN cannot log in there).
`,
  ghcr: true,
};

function registryFor(provider: Provider): Registry {
  switch (provider) {
    case 'ssh':
    case 'heroku':
      return GHCR_REGISTRY;
    case 'aws-eb':
      return {
        image: `${e('vars.IMAGE_REGISTRY')}/${e('github.repository')}`,
        // With no user name and password, docker/login-action asks ECR with the job's AWS role.
        login: `          registry: ${e('vars.IMAGE_REGISTRY')}
`,
        buildCredentials: '',
        buildNote: `      # Amazon ECR (variable IMAGE_REGISTRY: <account>.dkr.ecr.<region>.amazonaws.com, with a
      # repository named like this GitHub repository): build-image logs in with
      # \`aws ecr get-login-password\` as the role above. Beanstalk's instances pull it with their
      # instance profile.
`,
        ghcr: false,
      };
    case 'cloud-run':
      return {
        image: `${e('vars.IMAGE_REGISTRY')}/${e('vars.GAR_REPOSITORY')}/${e('github.repository')}`,
        login: `          registry: ${e('vars.IMAGE_REGISTRY')}
          username: oauth2accesstoken
          password: ${e('steps.gcp.outputs.access_token')}
`,
        buildCredentials: `          registry-username: oauth2accesstoken
          registry-password: ${e('steps.gcp.outputs.access_token')}
`,
        buildNote: `      # Artifact Registry, the registry Cloud Run deploys from (variables IMAGE_REGISTRY:
      # <location>-docker.pkg.dev, GAR_REPOSITORY: <project>/<repository>), with the access token
      # of the service account above.
`,
        ghcr: false,
      };
  }
}

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
        // The access token logs docker in to Artifact Registry; the credentials file the step also
        // leaves is what deploy and rollback use.
        auth: `      - id: gcp
        uses: ${THIRD_PARTY.googleAuth}
        with:
          token_format: access_token
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

/** Where migrate runs: on the runner, inside the new image. */
const MIGRATE_NOTE_SSH = `      # Migrations run once, inside the new image, before traffic moves. If the database is
      # reachable only from the servers, drop these two steps and set \`migrate: true\` on deploy.
`;
const MIGRATE_NOTE_CLOUD = `      # Migrations run once, on the runner inside the new image, before traffic moves: the runner
      # must reach DATABASE_URL (a public endpoint with TLS; allow GitHub's runners or use your own).
`;

/** The build job runs in no GitHub environment: it sees the repository's own variables. */
const BUILD_IDENTITY = `      # No environment here: the repository-level variables (an identity that may push images).
`;

/** The first deploy to a new server sets up its proxy; later ones check it (idempotent). */
const SETUP_HOST = `          setup-host: true
`;

function deployJob(p: Profile, env: 'staging' | 'production', needs: string): string {
  const parts = providerParts(p.provider);
  const registry = registryFor(p.provider);
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
${registry.ghcr ? '      packages: read # pull the image to migrate with it\n' : ''}${parts.permissions}    steps:
      - uses: ${THIRD_PARTY.checkout}

${parts.auth}      - uses: ${THIRD_PARTY.dockerLogin}
        with:
${registry.login}
      # migrate reads the project's Python, manage.py and settings module from setup-django.
      - uses: ${use('setup-django')}
${p.workingDirectory ? `        with:\n          working-directory: ${p.workingDirectory}\n` : ''}
${p.provider === 'ssh' ? MIGRATE_NOTE_SSH : MIGRATE_NOTE_CLOUD}      - id: migrate
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
  const parts = providerParts(p.provider);
  const registry = registryFor(p.provider);
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
${registry.ghcr ? '      packages: write # push to GitHub Container Registry\n' : parts.permissions}    outputs:
      image: ${e('steps.image.outputs.image')}
    steps:
      - uses: ${THIRD_PARTY.checkout}

${registry.ghcr ? '' : BUILD_IDENTITY + parts.auth}${registry.buildNote}      - id: image
        uses: ${use('build-image')}
        with:
          image: ${registry.image}
${p.workingDirectory ? `          context: ${p.workingDirectory}\n` : ''}          push: true
${registry.buildCredentials}          # The smoke test starts the image away from your databases: a throwaway SQLite file.
          smoke-test-env: |
            DATABASE_URL=sqlite:////tmp/smoke.sqlite3

${deployJob(p, 'staging', 'build')}
${deployJob(p, 'production', '[build, staging]')}`;
}

export function renderRollback(p: Profile): string {
  const parts = providerParts(p.provider);
  const registry = registryFor(p.provider);
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
${registry.ghcr ? '      packages: read # pull the earlier image to migrate back with it\n' : ''}${parts.permissions}    steps:
      - uses: ${THIRD_PARTY.checkout}

${parts.auth}      - uses: ${THIRD_PARTY.dockerLogin}
        with:
${registry.login}
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

/** One organisation template: workflow-templates/<file> and <name>.properties.json beside it. */
export interface StarterTemplate {
  file: string;
  render: (p: Profile) => string;
  provider: Provider;
  /** What GitHub shows in Actions > New workflow (GitHub's template metadata). */
  properties: {
    name: string;
    description: string;
    /** An octicon (`octicon <name>`) or an SVG in workflow-templates/ (without `.svg`). */
    iconName: string;
    categories: string[];
    filePatterns: string[];
  };
}

const DJANGO_FILES = ['manage\\.py$'];

/** The starter workflows: CI, CD for each provider, rollback (the ssh one). */
export const STARTER_TEMPLATES: StarterTemplate[] = [
  {
    file: 'django-ci.yml',
    render: renderCi,
    provider: 'ssh',
    properties: {
      name: 'Django CI (Slipway)',
      description: 'Test a Django project: Python matrix, PostgreSQL service, sharded test suite with coverage, cached virtualenv.',
      iconName: 'octicon beaker',
      categories: ['Continuous integration', 'Python', 'Django'],
      filePatterns: ['manage\\.py$', 'requirements.*\\.txt$', 'pyproject\\.toml$'],
    },
  },
  {
    file: 'django-cd.yml',
    render: renderCd,
    provider: 'ssh',
    properties: {
      name: 'Django CD to a VPS over SSH (Slipway)',
      description:
        'Build an image, migrate, deploy to your servers over SSH: staging, then production behind reviewers; zero-downtime behind HAProxy, recorded releases.',
      iconName: 'octicon rocket',
      categories: ['Deployment', 'Python', 'Django'],
      filePatterns: DJANGO_FILES,
    },
  },
  {
    file: 'django-cd-aws.yml',
    render: renderCd,
    provider: 'aws-eb',
    properties: {
      name: 'Django CD to AWS Elastic Beanstalk (Slipway)',
      description:
        'Build an image into Amazon ECR, migrate, deploy to Elastic Beanstalk: staging, then production behind reviewers; AWS credentials by OIDC, no stored keys.',
      iconName: 'octicon rocket',
      categories: ['Deployment', 'Python', 'Django'],
      filePatterns: DJANGO_FILES,
    },
  },
  {
    file: 'django-cd-cloud-run.yml',
    render: renderCd,
    provider: 'cloud-run',
    properties: {
      name: 'Django CD to Google Cloud Run (Slipway)',
      description:
        'Build an image into Artifact Registry, migrate, deploy to Cloud Run (health-checked before traffic moves): staging, then production behind reviewers; Workload Identity Federation, no stored keys.',
      iconName: 'octicon rocket',
      categories: ['Deployment', 'Python', 'Django'],
      filePatterns: DJANGO_FILES,
    },
  },
  {
    file: 'django-cd-heroku.yml',
    render: renderCd,
    provider: 'heroku',
    properties: {
      name: 'Django CD to Heroku (Slipway)',
      description:
        'Build an image, migrate, release it to Heroku (container releases): staging, then production behind reviewers; rolled back when the health check fails.',
      iconName: 'octicon rocket',
      categories: ['Deployment', 'Python', 'Django'],
      filePatterns: DJANGO_FILES,
    },
  },
  {
    file: 'django-rollback.yml',
    render: renderRollback,
    provider: 'ssh',
    properties: {
      name: 'Django rollback (Slipway)',
      description: 'Roll an environment back to an earlier release (image, config and database), by hand, with a dry run.',
      iconName: 'octicon history',
      categories: ['Deployment', 'Python', 'Django'],
      filePatterns: DJANGO_FILES,
    },
  },
];
