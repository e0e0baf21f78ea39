/**
 * django-cd.yml, as `slipway init cd` writes it for the example app, run by nektos/act in host
 * mode against this machine: build → (staging) migrate → deploy → (production) migrate → deploy,
 * every job for real.
 *
 * Pointed at this machine only through what the workflow reads, the way a team points it at
 * theirs (the workflow file is not edited):
 * - the registry: variable IMAGE_REGISTRY=127.0.0.1:5000 (ghcr.io when unset);
 * - the host: variables DEPLOY_HOSTS (root@127.0.0.1:2222, the loopback sshd driving the local
 *   Docker engine), SSH_KNOWN_HOSTS, APP_NAME/APP_PORT/PROXY_PORT; secrets from act's
 *   --secret-file (mode 0600): SSH_PRIVATE_KEY, DATABASE_URL, DJANGO_SECRET_KEY, GITHUB_TOKEN;
 * - GitHub's API: `--env GITHUB_API_URL=<stand-in>` (act hands it to every step as GITHUB_API_URL
 *   and github.api_url; --github-instance would force https://<host>/api/v3), the stand-in in
 *   test/stubs/github-api.ts checking every request against GitHub's OpenAPI description.
 *
 * act has no per-environment variables: staging and production get the same values, so production
 * deploys a second release of the same app on the same host (a blue/green switch).
 * Remote actions cannot be fetched here: `slipway-dev/slipway@v1` maps to a folder holding what a
 * release tag holds; `docker/login-action@v4` maps to a stand-in composite action doing what
 * its main step does (`docker login --password-stdin`); actions/checkout is skipped by act.
 * Docker logins go to a private DOCKER_CONFIG, never the machine's.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE24, REPO_ROOT } from '../harness/job';
import { ensureServices } from '../harness/services';
import { GitHubApiStub } from '../stubs/github-api';

const RUN_TIMEOUT_MS = 300_000;
const APP = 'slipway-act-cd';
// Outside every other test's ports (deploy/rollback/faults/canary use 18400-18880; build-image
// 18000-19999 at random; the demo 17600-17680).
const APP_PORT = 17400;
const PROXY_PORT = 17480;
const REMOTE_DIR = '/var/lib/slipway'; // the action's default: the workflow does not set it
const DATABASE = 'slipway_act_cd';
const TOKEN = 'ghs_actcd_token_0123456789abcdef';
const SECRET_KEY = 'act-cd-secret-key-Xq7-never-in-logs-8812';
const FRONT = `http://127.0.0.1:${PROXY_PORT}/healthz`;

interface ActRun {
  code: number;
  log: string;
  seconds: number;
}

/** Docker login stand-in: docker/login-action's main step, no post step (the config is thrown away). */
const LOGIN_ACTION = `name: docker login (stand-in for docker/login-action)
inputs:
  registry:
    required: false
  username:
    required: true
  password:
    required: true
runs:
  using: composite
  steps:
    - shell: bash
      env:
        REGISTRY: \${{ inputs.registry }}
        USERNAME: \${{ inputs.username }}
        PASSWORD: \${{ inputs.password }}
      run: printf '%s' "$PASSWORD" | docker login --username "$USERNAME" --password-stdin "$REGISTRY"
`;

/** One dotenv value for act's --secret-file: double quotes, newlines as \\n (godotenv expands them). */
const dotenv = (value: string): string => JSON.stringify(value);

describe('django-cd.yml under nektos/act', () => {
  let services: Record<string, string>;
  let tmp: string;
  let workspace: string;
  let stub: GitHubApiStub;
  let run: ActRun;
  let headSha: string;
  let front: { status: number; body: string } | undefined;
  const denv = (): Record<string, string> => (services.DOCKER_HOST ? { DOCKER_HOST: services.DOCKER_HOST } : {});

  function docker(args: string[]): string {
    return execFileSync('docker', args, { env: { ...process.env, ...denv() }, stdio: ['ignore', 'pipe', 'pipe'] })
      .toString()
      .trim();
  }

  function psql(sql: string, db = 'postgres'): string {
    return execFileSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', db, '-tAc', sql], { encoding: 'utf8' }).trim();
  }

  function cleanupHost(): void {
    try {
      const ids = docker(['ps', '-aq', '--filter', `label=slipway.app=${APP}`])
        .split('\n')
        .filter(Boolean);
      if (ids.length) docker(['rm', '-f', ...ids]);
    } catch {
      // nothing to remove
    }
    const appDir = path.join(REMOTE_DIR, APP);
    const pidFile = path.join(appDir, 'haproxy.pid');
    if (fs.existsSync(pidFile)) {
      for (const pid of fs.readFileSync(pidFile, 'utf8').split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGTERM');
        } catch {
          // already gone
        }
      }
    }
    fs.rmSync(appDir, { recursive: true, force: true });
  }

  /** act as a child process, asynchronously: the GitHub stand-in answers from this process. */
  function runAct(args: string[], env: Record<string, string>): Promise<ActRun> {
    const started = Date.now();
    return new Promise((resolve) => {
      const child = spawn(path.join(services.SLIPWAY_TEST_TOOLS_BIN!, 'act'), args, {
        cwd: workspace,
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let log = '';
      child.stdout.on('data', (c: Buffer) => (log += c.toString()));
      child.stderr.on('data', (c: Buffer) => (log += c.toString()));
      const timer = setTimeout(() => child.kill('SIGTERM'), RUN_TIMEOUT_MS);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, log, seconds: (Date.now() - started) / 1000 });
      });
    });
  }

  beforeAll(async () => {
    services = ensureServices(['docker', 'base-image', 'registry', 'sshd', 'haproxy', 'tools']);
    cleanupHost();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-act-cd-'));

    // What a release tag of slipway holds, and the login stand-in.
    const release = path.join(tmp, 'slipway-v1');
    for (const part of ['actions', 'dist', 'action.yml']) {
      fs.cpSync(path.join(REPO_ROOT, part), path.join(release, part), { recursive: true });
    }
    const login = path.join(tmp, 'docker-login-v4');
    fs.mkdirSync(login);
    fs.writeFileSync(path.join(login, 'action.yml'), LOGIN_ACTION);

    // The team's repository: the example app on Python 3.11 (the only base image this machine
    // has), with the workflow `slipway init cd` writes for it.
    workspace = path.join(tmp, 'shop');
    fs.cpSync(path.join(REPO_ROOT, 'example'), workspace, { recursive: true });
    fs.writeFileSync(path.join(workspace, '.python-version'), '3.11\n');
    const git = (...a: string[]): string =>
      execFileSync('git', ['-c', 'user.name=Slipway test', '-c', 'user.email=test@slipway.invalid', ...a], {
        cwd: workspace,
        encoding: 'utf8',
      }).trim();
    git('init', '-q', '-b', 'main');
    git('remote', 'add', 'origin', 'https://github.com/acme/shop.git');
    execFileSync(NODE24, [path.join(REPO_ROOT, 'bin', 'slipway.js'), 'init', 'cd', '--dir', workspace], { stdio: 'pipe' });
    git('add', '-A');
    git('commit', '-q', '-m', 'shop');
    headSha = git('rev-parse', 'HEAD');

    psql(`DROP DATABASE IF EXISTS ${DATABASE}`);
    psql(`CREATE DATABASE ${DATABASE}`);

    stub = new GitHubApiStub(TOKEN, 'acme/shop');
    await stub.start();

    const read = (file: string | undefined): string => fs.readFileSync(file!, 'utf8');
    const secretFile = path.join(tmp, 'secrets');
    fs.writeFileSync(
      secretFile,
      [
        `GITHUB_TOKEN=${dotenv(TOKEN)}`,
        `SSH_PRIVATE_KEY=${dotenv(read(services.SLIPWAY_TEST_SSH_KEY))}`,
        `DATABASE_URL=${dotenv(`postgres://postgres@127.0.0.1:5432/${DATABASE}`)}`,
        `DJANGO_SECRET_KEY=${dotenv(SECRET_KEY)}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const dockerConfig = path.join(tmp, 'docker-config');
    fs.mkdirSync(dockerConfig, { mode: 0o700 });
    const vars: Record<string, string> = {
      IMAGE_REGISTRY: services.SLIPWAY_TEST_REGISTRY ?? '127.0.0.1:5000',
      DEPLOY_HOSTS: `root@127.0.0.1:${services.SLIPWAY_TEST_SSH_PORT ?? '2222'}`,
      SSH_KNOWN_HOSTS: read(services.SLIPWAY_TEST_SSH_KNOWN_HOSTS).trim(),
      DJANGO_ALLOWED_HOSTS: '127.0.0.1,localhost',
      APP_NAME: APP,
      APP_PORT: String(APP_PORT),
      PROXY_PORT: String(PROXY_PORT),
    };
    const args = [
      'push',
      '-W',
      '.github/workflows/django-cd.yml',
      '-P',
      'ubuntu-latest=-self-hosted',
      '--local-repository',
      `slipway-dev/slipway@v1=${release}`,
      '--local-repository',
      `docker/login-action@v4=${login}`,
      '--secret-file',
      secretFile,
      ...Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}=${v}`]),
      '--env',
      `GITHUB_API_URL=${stub.url}`,
      '--env',
      `DOCKER_CONFIG=${dockerConfig}`,
      '--actor',
      'octocat',
      '--cache-server-addr',
      '127.0.0.1',
      '--cache-server-path',
      path.join(tmp, 'cache'),
      '--artifact-server-addr',
      '127.0.0.1',
    ];
    run = await runAct(args, {
      PATH: [path.dirname(NODE24), process.env.PATH].join(path.delimiter),
      DOCKER_CONFIG: dockerConfig,
      DOCKER_BUILDKIT: '0',
      UV_PYTHON_DOWNLOADS: 'never',
      ...denv(),
      XDG_CACHE_HOME: path.join(tmp, 'xdg-cache'),
    });
    // SLIPWAY_ACT_LOG=<file> keeps act's whole log (each step's time is in it).
    if (process.env.SLIPWAY_ACT_LOG) fs.writeFileSync(process.env.SLIPWAY_ACT_LOG, run.log);
    front = await fetch(FRONT).then(
      async (r) => ({ status: r.status, body: await r.text() }),
      () => undefined,
    );
  });

  afterAll(async () => {
    if (stub) await stub.stop();
    if (services) cleanupHost();
    try {
      psql(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
    } catch {
      // the database was never made
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const tail = (): string => run.log.split('\n').slice(-80).join('\n');

  it('every job succeeds: build, staging, production', () => {
    expect(run.code, tail()).toBe(0);
    for (const job of ['Build the image', 'Deploy to staging', 'Deploy to production']) {
      expect(run.log, job).toMatch(new RegExp(`\\[Django CD/${job}\\s*\\] .*Job succeeded`));
    }
    for (const step of ['build-image', 'migrate', 'deploy']) {
      expect(run.log).toMatch(new RegExp(`Success - Main slipway-dev/slipway/actions/${step}@v1`));
    }
    expect(run.log).toMatch(/Success - Main docker\/login-action@v4/);
    expect(run.seconds).toBeLessThan(RUN_TIMEOUT_MS / 1000);
  });

  it('the image went to the registry the variable names, by digest', () => {
    const image = /::set-output:: image=(\S+)/.exec(run.log)?.[1];
    expect(image).toMatch(
      new RegExp(`^${(services.SLIPWAY_TEST_REGISTRY ?? '127.0.0.1:5000').replace(/\./g, '\\.')}/acme/shop@sha256:[0-9a-f]{64}$`),
    );
    expect(run.log).not.toMatch(/ghcr\.io/);
  });

  it('migrations ran in the new image against the DATABASE_URL secret', () => {
    expect(Number(psql("SELECT count(*) FROM django_migrations WHERE app = 'catalog'", DATABASE))).toBeGreaterThan(0);
  });

  it('the app answers its health path through the host’s HAProxy frontend', () => {
    expect(front?.status, `GET ${FRONT}`).toBe(200);
    // The deployed release's own database check (the DATABASE_URL secret) passed.
    expect(JSON.parse(front!.body)).toEqual({ status: 'ok', database: 'ok' });
    const current = JSON.parse(fs.readFileSync(path.join(REMOTE_DIR, APP, 'current'), 'utf8')) as { container: string };
    expect(docker(['inspect', '--format', '{{.State.Running}}', current.container])).toBe('true');
  });

  it('each environment is recorded in GitHub Deployments (stand-in): the requests’ content', () => {
    expect(stub.violations).toEqual([]);
    const image = /::set-output:: image=(\S+)/.exec(run.log)![1]!;
    const creates = stub.requests.filter((r) => r.method === 'POST' && r.path === '/repos/acme/shop/deployments');
    expect(creates.map((r) => (r.body as { environment: string }).environment)).toEqual(['staging', 'production']);
    for (const create of creates) {
      expect(create.headers.authorization).toBe(`token ${TOKEN}`);
      expect(create.body).toMatchObject({
        ref: headSha,
        task: 'deploy',
        auto_merge: false,
        required_contexts: [],
        payload: { slipway: { provider: 'ssh', imageDigest: image.split('@')[1], actor: 'octocat', gitSha: headSha } },
      });
    }
    for (const environment of ['staging', 'production']) {
      const d = stub.deployments.find((x) => x.environment === environment)!;
      const states = stub.requests
        .filter((r) => r.method === 'POST' && r.path === `/repos/acme/shop/deployments/${d.id}/statuses`)
        .map((r) => r.body as { state: string; environment_url?: string });
      expect(
        states.map((s) => s.state),
        environment,
      ).toEqual(['in_progress', 'success']);
      expect(states[1]!.environment_url).toBe(`http://127.0.0.1:${PROXY_PORT}/`);
    }
  });

  it('no secret reaches the log', () => {
    const key = fs.readFileSync(services.SLIPWAY_TEST_SSH_KEY!, 'utf8');
    const keyBody = key.split('\n').find((l) => l.length > 40 && !l.startsWith('-----'))!;
    for (const secret of [TOKEN, SECRET_KEY, keyBody]) expect(run.log).not.toContain(secret);
  });
});
