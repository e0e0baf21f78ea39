/**
 * `npx slipway init` end to end: the real entry (bin/slipway.js) over a fresh ncc bundle of
 * packages/cli, run by Node 24 against copies of the example app and the fixtures. Checks what
 * it writes for each kind of project, the exit codes and one-line errors of bad input, and that
 * nothing is overwritten without --force.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { NODE24, REPO_ROOT } from '../harness/job';

let tmp: string;
let entry: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-init-'));
  fs.mkdirSync(path.join(tmp, 'bin'));
  fs.copyFileSync(path.join(REPO_ROOT, 'bin', 'slipway.js'), path.join(tmp, 'bin', 'slipway.js'));
  execFileSync(NODE24, [path.join(REPO_ROOT, 'scripts', 'build-cli.mjs'), path.join(tmp, 'dist', 'cli')], { stdio: 'pipe' });
  entry = path.join(tmp, 'bin', 'slipway.js');
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function project(source: string): string {
  const dir = fs.mkdtempSync(path.join(tmp, 'project-'));
  fs.cpSync(path.join(REPO_ROOT, source), dir, { recursive: true });
  return dir;
}

function slipway(args: string[], cwd: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(NODE24, [entry, ...args], { cwd, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

type Workflow = {
  on: unknown;
  jobs: Record<string, { steps: { uses?: string; with?: Record<string, unknown> }[] } & Record<string, unknown>>;
};
const read = (dir: string, file: string): Workflow => parseYaml(fs.readFileSync(path.join(dir, file), 'utf8')) as Workflow;

describe('slipway init', () => {
  it('writes every stage for the example app, tailored to it, and lists what to create', () => {
    const dir = project('example');
    const r = slipway(['init'], dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const f of [
      '.github/workflows/django-ci.yml',
      '.github/workflows/django-cd.yml',
      '.github/workflows/django-rollback.yml',
      'compose.yaml',
      'Dockerfile',
      '.dockerignore',
    ]) {
      expect(fs.existsSync(path.join(dir, f)), f).toBe(true);
    }
    const ci = read(dir, '.github/workflows/django-ci.yml');
    const test = ci.jobs.test as {
      strategy: { matrix: Record<string, string[]> };
      services?: Record<string, unknown>;
    } & Workflow['jobs'][string];
    expect(test.strategy.matrix['python-version']).toEqual(['3.12']); // .python-version
    expect(Object.keys(test.services ?? {})).toEqual(['postgres']); // psycopg in requirements.txt
    expect(ci.on).toMatchObject({ push: { branches: ['main'] } });
    const compose = parseYaml(fs.readFileSync(path.join(dir, 'compose.yaml'), 'utf8')) as { services: Record<string, { image?: string }> };
    expect(Object.keys(compose.services).sort()).toEqual(['db', 'migrate', 'web']);
    expect(compose.services.db!.image).toBe('postgres:17');
    expect(fs.readFileSync(path.join(dir, 'Dockerfile'), 'utf8')).toMatch(/gunicorn/);
    expect(r.stdout).toMatch(/Python 3\.12 \(from \.python-version\)/);
    expect(r.stdout).toMatch(/database: postgresql \(psycopg in requirements\.txt\)/);
    expect(r.stdout).toMatch(/secret +SSH_PRIVATE_KEY/);
    expect(r.stdout).toMatch(/variable DEPLOY_HOSTS/);
    expect(r.stdout).toMatch(/Required reviewers/);
    expect(r.stdout).toMatch(/optional: variable IMAGE_REGISTRY: another registry than ghcr\.io/);
    expect(r.stdout).toMatch(/optional: variables APP_NAME, APP_PORT, PROXY_PORT/);
  });

  it('writes only the stages asked for, in order, and keeps existing files unless --force', () => {
    const dir = project('example');
    const first = slipway(['init', 'ci'], dir);
    expect(first.code).toBe(0);
    expect(fs.readdirSync(path.join(dir, '.github', 'workflows'))).toEqual(['django-ci.yml']);
    expect(first.stdout).toMatch(/No secrets or variables to create/);
    fs.writeFileSync(path.join(dir, '.github', 'workflows', 'django-ci.yml'), '# mine\n');
    const again = slipway(['init', 'rollback', 'ci'], dir);
    expect(again.code).toBe(1);
    expect(again.stderr.trim().split('\n')).toEqual([
      'slipway: .github/workflows/django-ci.yml already exists: pass --force to overwrite.',
    ]);
    expect(fs.readFileSync(path.join(dir, '.github', 'workflows', 'django-ci.yml'), 'utf8')).toBe('# mine\n');
    expect(fs.existsSync(path.join(dir, '.github', 'workflows', 'django-rollback.yml')), 'nothing half-done').toBe(false);
    const forced = slipway(['init', 'rollback', 'ci', '--force'], dir);
    expect(forced.code).toBe(0);
    expect(forced.stdout.indexOf('django-ci.yml')).toBeLessThan(forced.stdout.indexOf('django-rollback.yml'));
    expect(fs.readFileSync(path.join(dir, '.github', 'workflows', 'django-ci.yml'), 'utf8')).toMatch(/^# Slipway starter workflow/);
  });

  it.each([
    [
      'aws-eb',
      'django-cd-aws.yml',
      'aws-actions/configure-aws-credentials@v6',
      /variable AWS_ROLE_ARN/,
      /repository level[^]*IMAGE_REGISTRY/,
    ],
    [
      'cloud-run',
      'django-cd-cloud-run.yml',
      'google-github-actions/auth@v3',
      /variable GCP_WORKLOAD_IDENTITY_PROVIDER/,
      /repository level[^]*GAR_REPOSITORY/,
    ],
    ['heroku', 'django-cd-heroku.yml', undefined, /secret +HEROKU_API_KEY/, /optional: variable IMAGE_REGISTRY/],
    ['ssh', 'django-cd.yml', undefined, /secret +SSH_PRIVATE_KEY/, /optional: variable IMAGE_REGISTRY/],
  ])(
    '--provider %s writes that provider’s deploy (the starter template %s) and the settings it needs',
    (provider, template, auth, setting, registry) => {
      const dir = project('example');
      const r = slipway(['init', 'cd', '--provider', provider, '--dir', dir], tmp);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(setting);
      expect(r.stdout).toMatch(registry);
      const cd = read(dir, '.github/workflows/django-cd.yml');
      const staging = cd.jobs.staging!;
      expect(staging.steps.find((s) => s.uses?.includes('/deploy@'))!.with!.provider).toBe(provider);
      expect(staging.steps.some((s) => s.uses === auth)).toBe(auth !== undefined);
      // One renderer: for a project at the root on main, init writes the starter template with the branch filled in.
      const starter = fs.readFileSync(path.join(REPO_ROOT, 'workflow-templates', template), 'utf8');
      expect(fs.readFileSync(path.join(dir, '.github/workflows/django-cd.yml'), 'utf8')).toBe(starter.replace('$default-branch', 'main'));
    },
  );

  it('finds manage.py in a subfolder and SQLite when nothing else is used', () => {
    const dir = project('test/fixtures/subfolder');
    const r = slipway(['init', 'ci', 'docker'], dir);
    expect(r.code).toBe(0);
    const ci = read(dir, '.github/workflows/django-ci.yml');
    const setup = ci.jobs.test!.steps.find((s) => s.uses?.includes('setup-django'))!;
    expect(setup.with!['working-directory']).toBe('backend');
    expect(ci.jobs.test!.services).toBeUndefined();
    expect(r.stdout).toMatch(/database: sqlite/);
    const compose = parseYaml(fs.readFileSync(path.join(dir, 'compose.yaml'), 'utf8')) as { services: Record<string, unknown> };
    expect(Object.keys(compose.services).sort()).toEqual(['migrate', 'web']);
  });

  it.each([
    ['uv-project', /dependencies: uv/],
    ['poetry-project', /dependencies: poetry/],
    ['pytest-project', /tests: pytest/],
  ])('reads %s', (fixture, expected) => {
    const dir = project(`test/fixtures/${fixture}`);
    const r = slipway(['init', 'ci'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(expected);
  });

  it.each([
    [['init', 'deploy'], 2, /^slipway: Unknown stage `deploy`: use one of ci, docker, cd, rollback/],
    [['init', '--provider', 'fly'], 2, /^slipway: Unknown provider `fly`: use one of ssh, heroku, aws-eb, cloud-run\.$/],
    [['init', '--provider'], 2, /^slipway: --provider needs a value\.$/],
    [['init', '--frobnicate'], 2, /^slipway: Unknown option --frobnicate/],
    [['deploy'], 2, /^slipway: Unknown command `deploy`/],
    [['init'], 1, /^slipway: No manage\.py in .* or below it: run slipway init in a Django project \(or pass --dir PATH\)\.$/],
  ])('%j: exit %i, one line', (args, code, message) => {
    const dir = fs.mkdtempSync(path.join(tmp, 'empty-'));
    const r = slipway(args, dir);
    expect(r.code).toBe(code);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(message);
    expect(r.stdout).toBe('');
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
