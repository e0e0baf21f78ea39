/**
 * Canary secrets: every secret-bearing input and variable gets a unique value, real scenarios of
 * all six actions run with them (success and failure paths), and then every log line as printed,
 * job summary, output, annotation, STATE_*, file under RUNNER_TEMP / HOME / the tool cache, file
 * the steps generated in the workspace, and the argv of every process on the machine (sampled
 * from /proc every ~20 ms while each step ran) is searched for each canary in every encoding.
 * Any hit fails naming where it was found. Where an action handles a secret, it must also have
 * masked it (an ::add-mask:: for it).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyProject, emptyWorkspace, Job, REPO_ROOT } from '../harness/job';
import { preparedVenv, seedSetupDjango } from '../harness/python-env';
import { ensureServices } from '../harness/services';
import { GitHubApiStub } from '../stubs/github-api';
import { SentryStub } from '../stubs/sentry-api';
import { StubServer } from '../stubs/cloud-stub-server';
import { CanaryRun, describeHits, type Audit } from '../security/audit';
import { canaryKeyPair, canaryValue, makeCanary, searchText, type Canary } from '../security/canary';
import { startVps, type Vps } from '../security/vps';
import { buildDeployImage, cleanupHost } from './deploy-support';

const tally = { secrets: new Set<string>(), places: 0, hits: 0 };
const cleanups: (() => void | Promise<void>)[] = [];
let env: Record<string, string>;
let venv: string;

function record(audit: Audit, canaries: Canary[]): void {
  for (const c of canaries) tally.secrets.add(c.label);
  tally.places += audit.places;
  tally.hits += audit.hits.length;
  expect(audit.hits, describeHits(audit.hits)).toEqual([]);
}

function psql(sql: string): void {
  execFileSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', 'postgres', '-qAtX', '-v', 'ON_ERROR_STOP=1', '-c', sql]);
}

beforeAll(() => {
  env = ensureServices(['docker', 'base-image', 'registry', 'sshd', 'haproxy']);
  process.env.DOCKER_HOST = env.DOCKER_HOST;
  venv = preparedVenv([path.join(REPO_ROOT, 'example', 'requirements.txt')]);
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  console.log(`canary: ${tally.secrets.size} secrets × ${tally.places} places searched, hits: ${tally.hits}`);
});

describe('canary secrets', () => {
  it('setup-django + run-tests: env-file secrets (SECRET_KEY, a password, a custom secret key) and a wait-for URL password', async () => {
    const secretKey = makeCanary('env-file DJANGO_SECRET_KEY', canaryValue('sk', true));
    const dbPassword = makeCanary('env-file DATABASE_PASSWORD', canaryValue('dbpw'));
    const custom = makeCanary('env-file STRIPE_CRED (secret-keys)', canaryValue('stripe'));
    const waitPw = makeCanary('wait-for URL password', canaryValue('wait'));
    const canaries = [secretKey, dbPassword, custom, waitPw];
    const ws = copyProject('example');
    const envFile = path.join(ws, '.env.ci');
    fs.writeFileSync(
      envFile,
      `DJANGO_SECRET_KEY=${secretKey.value}\nDATABASE_PASSWORD=${dbPassword.value}\nSTRIPE_CRED=${custom.value}\nDJANGO_DEBUG=false\n`,
    );
    const job = new Job({ workspace: ws, env: { UV_PYTHON_DOWNLOADS: 'never' } });
    const run = new CanaryRun(job, canaries, [envFile]);
    const ok = await run.run('setup-django', { 'env-file': '.env.ci', 'secret-keys': 'STRIPE_CRED', 'python-version': '3.12' });
    expect(ok.failure, ok.log).toBeUndefined();
    const tests = await run.run('run-tests', { parallel: '1' });
    expect(tests.exitCode, tests.log).toBe(0);
    // Failure path: the same env-file, and a service that never answers, with a password in its URL.
    const failed = await run.run('setup-django', {
      'env-file': '.env.ci',
      'secret-keys': 'STRIPE_CRED',
      'python-version': '3.12',
      'wait-for': `postgres://svc:${waitPw.value}@127.0.0.1:1/db`,
      'wait-timeout': '2s',
    });
    expect(failed.exitCode).not.toBe(0);
    await run.post();
    const audit = run.audit();
    record(audit, canaries);
    expect([...audit.masked].sort()).toEqual(canaries.map((c) => c.label).sort());
  });

  it('migrate: a PostgreSQL role with a canary password, applied and failing half-way', async () => {
    const pw = makeCanary('DATABASE_URL password (migrate)', canaryValue('pgpw'));
    const envToken = makeCanary('migrate env SHOP_API_TOKEN', canaryValue('migenv'));
    const role = 'slipway_security_role';
    const dbs = ['slipway_security_ok', 'slipway_security_half'];
    for (const db of dbs) psql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    psql(`DROP ROLE IF EXISTS ${role}`);
    psql(`CREATE ROLE ${role} LOGIN PASSWORD '${pw.value}'`);
    for (const db of dbs) psql(`CREATE DATABASE ${db} OWNER ${role}`);
    cleanups.push(() => {
      for (const db of dbs) psql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      psql(`DROP ROLE IF EXISTS ${role}`);
    });
    const url = (db: string): string => `postgres://${role}:${pw.value}@127.0.0.1:5432/${db}`;
    for (const [project, settings, db, ok] of [
      ['example', 'shop.settings', dbs[0]!, true],
      ['test/fixtures/migrate-halfway', 'site_cfg.settings', dbs[1]!, false],
    ] as const) {
      const ws = copyProject(project);
      const job = new Job({ workspace: ws, env: { DATABASE_URL: url(db), DJANGO_DEBUG: 'true' } });
      seedSetupDjango(job, { venv, projectDir: ws, settingsModule: settings });
      const run = new CanaryRun(job, [pw, envToken]);
      const step = await run.run('migrate', { 'backup-dir': 'backups', env: `SHOP_API_TOKEN=${envToken.value}` });
      expect(step.exitCode === 0, step.log).toBe(ok);
      const audit = run.audit();
      record(audit, [pw, envToken]);
      expect([...audit.masked].sort()).toEqual([pw.label, envToken.label].sort());
    }
  });

  it('build-image: registry login with the real password (push) and with a canary password (refused)', async () => {
    const user = env.SLIPWAY_TEST_REGISTRY_USER!;
    const real = makeCanary('registry-password (accepted)', fs.readFileSync(env.SLIPWAY_TEST_REGISTRY_PASSWORD_FILE!, 'utf8').trim());
    const wrong = makeCanary('registry-password (refused)', canaryValue('regpw'));
    const ws = emptyWorkspace();
    fs.writeFileSync(path.join(ws, 'Dockerfile'), 'FROM scratch\nCOPY hello.txt /hello.txt\n');
    fs.writeFileSync(path.join(ws, 'hello.txt'), `security ${Date.now()}\n`);
    const image = `${env.SLIPWAY_TEST_AUTH_REGISTRY}/slipway-security/canary`;
    const job = new Job({ workspace: ws });
    const run = new CanaryRun(job, [real, wrong]);
    const common = { image, push: 'true', 'smoke-test': 'false', 'registry-username': user, 'github-token': '' };
    const pushed = await run.run('build-image', { ...common, 'registry-password': real.value });
    expect(pushed.failure, pushed.log).toBeUndefined();
    expect(pushed.outputs.digest).toMatch(/^sha256:/);
    const refused = await run.run('build-image', { ...common, 'registry-password': wrong.value });
    expect(refused.exitCode).not.toBe(0);
    // github-token is the ghcr.io credential: ghcr.io cannot be reached here, so the login fails.
    const gh = makeCanary('github-token (build-image, ghcr.io)', `ghs_${canaryValue('ghbuild')}`);
    run.canaries.push(gh);
    const ghcr = await run.run('build-image', {
      image: 'ghcr.io/acme/canary',
      push: 'true',
      'smoke-test': 'false',
      'github-token': gh.value,
    });
    expect(ghcr.exitCode).not.toBe(0);
    expect(ghcr.failure).toMatch(/ghcr\.io/);
    // smoke-test-env: the example shop's image (built once for the deploy tests) smoke-tested
    // with a canary in its environment.
    const smoke = makeCanary('smoke-test-env SHOP_SMOKE_TOKEN', canaryValue('smoke'));
    run.canaries.push(smoke);
    fs.writeFileSync(path.join(ws, 'Dockerfile.smoke'), `FROM ${buildDeployImage(env).tag}\n`);
    const smoked = await run.run('build-image', {
      image: `${env.SLIPWAY_TEST_REGISTRY}/slipway-security/smoke`,
      dockerfile: 'Dockerfile.smoke',
      push: 'false',
      'smoke-test': 'true',
      'health-path': '/healthz',
      'smoke-test-env': `SHOP_SMOKE_TOKEN=${smoke.value}\nDJANGO_SECURE_SSL_REDIRECT=false`,
      'github-token': '',
    });
    expect(smoked.failure, smoked.log).toBeUndefined();
    await run.post();
    const audit = run.audit();
    record(audit, run.canaries);
    expect([...audit.masked].sort()).toEqual(run.canaries.map((c) => c.label).sort());
  });

  it("build-image: the runner's index settings (a password in PIP_INDEX_URL) as a build secret never reach the image", async () => {
    const indexPw = makeCanary('PIP_INDEX_URL password (index-settings)', canaryValue('index'));
    const ws = emptyWorkspace();
    // The secret mount is read in a RUN (the file must hold the URL), then must be gone.
    fs.writeFileSync(
      path.join(ws, 'Dockerfile'),
      `FROM ${env.SLIPWAY_TEST_BASE_IMAGE ?? 'python:3.11-slim'}\n` +
        'RUN --mount=type=secret,id=index-env . /run/secrets/index-env && test -n "$PIP_INDEX_URL" && echo seen > /index-seen\n',
    );
    const image = `${env.SLIPWAY_TEST_REGISTRY}/slipway-security/index`;
    const job = new Job({ workspace: ws, env: { PIP_INDEX_URL: `http://slipway:${indexPw.value}@127.0.0.1:1/simple` } });
    const run = new CanaryRun(job, [indexPw]);
    const built = await run.run('build-image', { image, push: 'false', 'smoke-test': 'false', 'github-token': '' });
    expect(built.failure, built.log).toBeUndefined();
    await run.post();
    // The image itself: history, config, and every layer (docker save) under the size limit.
    const tag = built.outputs['image-id']!;
    expect(tag).toMatch(/^sha256:/);
    const saved = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-security-image-'));
    cleanups.push(() => fs.rmSync(saved, { recursive: true, force: true }));
    const docker = (args: string[]): string => execFileSync('docker', args, { maxBuffer: 64 << 20 }).toString();
    expect(docker(['run', '--rm', tag, 'cat', '/index-seen']).trim(), 'the RUN read the secret').toBe('seen');
    execFileSync('docker', ['save', '--output', path.join(saved, 'image.tar'), tag]);
    execFileSync('tar', ['-xf', path.join(saved, 'image.tar'), '-C', saved]);
    fs.rmSync(path.join(saved, 'image.tar'));
    const audit = run.audit([{ dir: saved, place: 'image (docker save)' }]);
    for (const [place, text] of [
      ['image history', docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}', tag])],
      ['image inspect', docker(['image', 'inspect', tag])],
    ] as const) {
      audit.hits.push(...searchText(text, place, [indexPw]));
      audit.places++;
    }
    record(audit, [indexPw]);
    expect([...audit.masked]).toEqual([indexPw.label]);
  });

  describe('deploy and rollback over ssh with a canary key', () => {
    const app = 'shopsec';
    let vps: Vps;
    let key: ReturnType<typeof canaryKeyPair>;
    let remoteDir: string;
    let image: { ref: string };
    let workspace: string;
    const secretKey = makeCanary('deploy env DJANGO_SECRET_KEY', canaryValue('depsk', true));
    const dbUrlPw = makeCanary('deploy env SHOP_API_PASSWORD / DATABASE_URL password', canaryValue('deppw'));
    const sentry = makeCanary('sentry-auth-token', `sntrys_${canaryValue('sentry')}`);
    const fileToken = makeCanary('deploy env-file SHOP_FILE_TOKEN', canaryValue('depfile'));
    const rbToken = makeCanary('rollback env SHOP_ROLLBACK_TOKEN', canaryValue('rbenv'));
    const rbFileToken = makeCanary('rollback env-file SHOP_ROLLBACK_FILE_TOKEN', canaryValue('rbfile'));
    let envFile: string;
    let rbEnvFile: string;
    const ghToken = makeCanary('github-token', `ghs_${canaryValue('gh')}`);

    beforeAll(async () => {
      key = canaryKeyPair('ssh-private-key');
      vps = await startVps([key.publicKey]);
      remoteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-security-host-'));
      image = buildDeployImage(env);
      workspace = emptyWorkspace();
      envFile = path.join(workspace, 'deploy.env');
      fs.writeFileSync(envFile, `SHOP_FILE_TOKEN=${fileToken.value}\n`);
      rbEnvFile = path.join(workspace, 'rollback.env');
      fs.writeFileSync(rbEnvFile, `SHOP_ROLLBACK_FILE_TOKEN=${rbFileToken.value}\n`);
      cleanups.push(() => {
        cleanupHost(app, remoteDir, env);
        vps.stop();
        fs.rmSync(key.dir, { recursive: true, force: true });
      });
    });

    const inputs = (over: Record<string, string> = {}): Record<string, string> => ({
      provider: 'ssh',
      environment: 'security',
      image: image.ref,
      hosts: `root@127.0.0.1:${vps.port}`,
      'ssh-private-key': key.value,
      'ssh-known-hosts': vps.knownHosts,
      'app-name': app,
      'app-port': '18700',
      'proxy-port': '18780',
      'proxy-address': '127.0.0.1',
      'remote-dir': remoteDir,
      'setup-host': 'true',
      env: `DJANGO_SECRET_KEY=${secretKey.value}\nDJANGO_SECURE_SSL_REDIRECT=false\nDJANGO_LOG_LEVEL=WARNING\nSHOP_API_PASSWORD=${dbUrlPw.value}`,
      'env-file': 'deploy.env',
      'health-timeout': '30s',
      ...over,
    });

    it('deploys twice (GitHub Deployments, Sentry), fails a health check, rolls back: no canary anywhere', async () => {
      const gh = new GitHubApiStub(ghToken.value);
      const sentryStub = new SentryStub({ token: sentry.value, org: 'acme', projects: ['shop'], repositories: ['acme/shop'] });
      const ghUrl = await gh.start();
      const sentryUrl = await sentryStub.start();
      cleanups.push(async () => {
        await gh.stop();
        await sentryStub.stop();
      });
      const canaries = [key, secretKey, dbUrlPw, fileToken, rbToken, rbFileToken, sentry, ghToken];
      const job = new Job({ workspace, env: { GITHUB_API_URL: ghUrl } });
      const run = new CanaryRun(job, canaries, [envFile, rbEnvFile]);
      const sentryInputs = {
        'release-store': 'github',
        'github-token': ghToken.value,
        'sentry-auth-token': sentry.value,
        'sentry-org': 'acme',
        'sentry-project': 'shop',
      };
      const first = await run.run('deploy', inputs(sentryInputs), { env: { SENTRY_URL: sentryUrl } });
      expect(first.failure, first.log).toBeUndefined();
      const second = await run.run('deploy', inputs(sentryInputs), { env: { SENTRY_URL: sentryUrl } });
      expect(second.failure, second.log).toBeUndefined();
      // The env file on the host carries the values, mode 0600: that is where they belong.
      const hostEnvFile = path.join(remoteDir, app, 'env', `${second.outputs['release-id']}.env`);
      expect(fs.statSync(hostEnvFile).mode & 0o777).toBe(0o600);
      const unhealthy = await run.run(
        'deploy',
        inputs({
          ...sentryInputs,
          'health-timeout': '4s',
          env: `DJANGO_SECRET_KEY=${secretKey.value}\nDATABASE_URL=postgres://u:${dbUrlPw.value}@127.0.0.1:1/none`,
        }),
        { env: { SENTRY_URL: sentryUrl } },
      );
      expect(unhealthy.exitCode, unhealthy.log).not.toBe(0);
      const back = await run.run('rollback', {
        provider: 'ssh',
        environment: 'security',
        hosts: `root@127.0.0.1:${vps.port}`,
        'ssh-private-key': key.value,
        'ssh-known-hosts': vps.knownHosts,
        'app-name': app,
        'app-port': '18700',
        'proxy-port': '18780',
        'proxy-address': '127.0.0.1',
        'remote-dir': remoteDir,
        database: 'none',
        env: `SHOP_ROLLBACK_TOKEN=${rbToken.value}`,
        'env-file': 'rollback.env',
        'release-store': 'github',
        'github-token': ghToken.value,
        'sentry-auth-token': sentry.value,
        'sentry-org': 'acme',
        'sentry-project': 'shop',
        'sentry-url': sentryUrl,
      });
      // Either way the secrets must not leak. (Seen here: rollback from the GitHub store fails with
      // "Release  is no longer kept" — reported; deploy does not call Sentry yet.)
      expect(back.exitCode === 0 || Boolean(back.failure), back.log).toBe(true);
      // The GitHub token really was used against the Deployments stand-in.
      expect(gh.requests.some((r) => r.headers.authorization === `token ${ghToken.value}`)).toBe(true);
      // A key the host does not know: the failure path of the ssh login itself.
      const stranger = canaryKeyPair('ssh-private-key (refused)');
      cleanups.push(() => fs.rmSync(stranger.dir, { recursive: true, force: true }));
      run.canaries.push(stranger);
      const refused = await run.run('deploy', inputs({ 'ssh-private-key': stranger.value, 'release-store': 'releases' }));
      expect(refused.failure).toMatch(/Cannot connect/);
      const audit = run.audit();
      record(audit, run.canaries);
      expect([...audit.masked].sort()).toEqual(run.canaries.map((c) => c.label).sort());
    });
  });

  it('cloud providers: Heroku, AWS and Google credentials refused by a stand-in (401), on deploy and on rollback', async () => {
    const heroku = makeCanary('HEROKU_API_KEY / heroku-api-key', `HRKU-${canaryValue('heroku')}`);
    const awsSecret = makeCanary('AWS_SECRET_ACCESS_KEY', canaryValue('awssecret'));
    const awsSession = makeCanary('AWS_SESSION_TOKEN', canaryValue('awssession'));
    const gcp = makeCanary('gcp-access-token', `ya29.${canaryValue('gcp')}`);
    const canaries = [heroku, awsSecret, awsSession, gcp];
    // Every API answers 401 as the real ones do for a bad credential; requests are recorded.
    const server = new StubServer(() => ({ status: 401, body: { id: 'unauthorized', message: 'Invalid credentials provided.' } }));
    const url = await server.start();
    cleanups.push(() => server.stop());
    const job = new Job({
      workspace: emptyWorkspace(),
      env: {
        SLIPWAY_HEROKU_API_URL: url,
        AWS_ENDPOINT_URL: url,
        AWS_ACCESS_KEY_ID: 'AKIASECURITYTEST0001',
        AWS_SECRET_ACCESS_KEY: awsSecret.value,
        AWS_SESSION_TOKEN: awsSession.value,
        CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN: `${url}/`,
      },
    });
    // Two served releases per provider in the release store, so rollback has a target and calls the API.
    for (const [provider, env] of [
      ['heroku', 'heroku'],
      ['aws-eb', 'aws'],
      ['cloud-run', 'gcp'],
    ] as const) {
      const dir = path.join(job.workspace, 'releases', env);
      fs.mkdirSync(dir, { recursive: true });
      for (const [i, id] of ['20260101T000000Z-aaaaaaa', '20260102T000000Z-bbbbbbb'].entries()) {
        const record = {
          id,
          environment: env,
          provider,
          providerReleaseId: provider === 'heroku' ? `0000000${i}-0000-4000-8000-000000000000` : `v${i + 1}`,
          gitSha: String(i).repeat(40),
          gitRef: 'refs/heads/main',
          image: `127.0.0.1:5000/slipway-security/shop@sha256:${String(i).repeat(64)}`,
          imageDigest: `sha256:${String(i).repeat(64)}`,
          url: 'https://shop.example.com/',
          migrations: null,
          backup: null,
          actor: 'octocat',
          createdAt: `2026-01-0${i + 1}T00:00:00Z`,
          outcome: 'success',
          rollbackOf: null,
        };
        fs.writeFileSync(path.join(dir, `${id}.json`), JSON.stringify(record));
      }
    }
    const appToken = makeCanary('deploy env SHOP_CLOUD_TOKEN (cloud providers)', canaryValue('cloudenv'));
    const run = new CanaryRun(job, [...canaries, appToken]);
    const deployCommon = {
      image: `127.0.0.1:5000/slipway-security/shop@sha256:${'3'.repeat(64)}`,
      env: `SHOP_CLOUD_TOKEN=${appToken.value}`,
      'release-store': 'releases',
      'github-token': '',
    };
    const deploys = [
      await run.run('deploy', {
        ...deployCommon,
        provider: 'heroku',
        environment: 'heroku',
        'heroku-api-key': heroku.value,
        'heroku-app': 'shop-sec',
      }),
      await run.run('deploy', {
        ...deployCommon,
        provider: 'aws-eb',
        environment: 'aws',
        'aws-region': 'eu-west-1',
        'eb-application': 'shop',
        'eb-environment': 'shop-prod',
        'eb-s3-bucket': 'shop-bundles',
      }),
      await run.run('deploy', {
        ...deployCommon,
        provider: 'cloud-run',
        environment: 'gcp',
        'gcp-project': 'acme-shop',
        'gcp-region': 'europe-west1',
        'gcp-access-token': gcp.value,
        'cloud-run-service': 'shop',
      }),
    ];
    for (const s of deploys) expect(s.exitCode, s.log).not.toBe(0);
    const deployRequests = server.requests.length;
    // Each deploy met the stand-in with its credential before anything changed.
    const deployAuths = server.requests.map((r) => String(r.headers.authorization ?? ''));
    expect(deployAuths.some((a) => a.includes(heroku.value))).toBe(true);
    expect(deployAuths.some((a) => a.includes(gcp.value))).toBe(true);
    expect(deployAuths.some((a) => a.startsWith('AWS4-HMAC-SHA256 Credential=AKIASECURITYTEST0001/'))).toBe(true);
    const steps = [
      await run.run('rollback', {
        provider: 'heroku',
        environment: 'heroku',
        'heroku-api-key': heroku.value,
        'heroku-app': 'shop-sec',
        database: 'none',
        'release-store': 'releases',
      }),
      await run.run(
        'rollback',
        {
          provider: 'aws-eb',
          environment: 'aws',
          'aws-region': 'eu-west-1',
          'eb-application': 'shop',
          'eb-environment': 'shop-prod',
          database: 'none',
          'release-store': 'releases',
        },
        // eb-s3-bucket is read by the provider but not (yet) declared in rollback's action.yml.
        { env: { 'INPUT_EB-S3-BUCKET': 'shop-bundles' } },
      ),
      await run.run('rollback', {
        provider: 'cloud-run',
        environment: 'gcp',
        'gcp-project': 'acme-shop',
        'gcp-region': 'europe-west1',
        'gcp-access-token': gcp.value,
        'cloud-run-service': 'shop',
        database: 'none',
        'release-store': 'releases',
      }),
    ];
    for (const s of steps) expect(s.exitCode, s.log).not.toBe(0);
    if (process.env.SLIPWAY_SECURITY_DEBUG)
      for (const s of steps)
        console.log(
          s.failure,
          server.requests.map((r) => `${r.method} ${r.path} ${String(r.headers.authorization)}`),
        );
    // The credentials really were used against the stand-in (so the canary was handled, not ignored).
    const auths = server.requests.slice(deployRequests).map((r) => String(r.headers.authorization ?? ''));
    expect(auths.some((a) => a.includes(heroku.value))).toBe(true);
    expect(auths.some((a) => a.includes(gcp.value))).toBe(true);
    expect(auths.some((a) => a.startsWith('AWS4-HMAC-SHA256 Credential=AKIASECURITYTEST0001/'))).toBe(true);
    const audit = run.audit();
    record(audit, run.canaries);
    expect([...audit.masked].sort()).toEqual(run.canaries.map((c) => c.label).sort());
  });
});
