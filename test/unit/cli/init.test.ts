import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseInitArgs } from '../../../packages/cli/src/index';
import { optionalSettings, parseStages, pythonMatrix, requiredSettings, UsageError } from '../../../packages/cli/src/init';
import { detectDatabase, type ProjectFacts } from '../../../packages/cli/src/inspect';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function project(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-cli-unit-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

describe('parseStages', () => {
  it.each([
    [[], ['ci', 'docker', 'cd', 'rollback']],
    [
      ['rollback', 'ci'],
      ['ci', 'rollback'],
    ],
    [['cd', 'cd'], ['cd']],
  ])('%j -> %j', (input, expected) => expect(parseStages(input)).toEqual(expected));

  it('refuses an unknown stage as a usage error', () => {
    expect(() => parseStages(['test'])).toThrow(UsageError);
  });
});

describe('parseInitArgs', () => {
  it.each([
    [['--provider', 'heroku'], { provider: 'heroku', force: false, dir: '/w' }],
    [['--provider=aws-eb', '--force', 'ci'], { provider: 'aws-eb', force: true, stages: ['ci'] }],
    [['--dir', 'sub'], { dir: '/w/sub', provider: 'ssh' }],
  ])('%j', (argv, expected) => expect(parseInitArgs(argv, '/w')).toMatchObject(expected));

  it.each([[['--provider', 'fly']], [['--dir']], [['--force=yes']], [['-x']]])('%j is a usage error', (argv) => {
    expect(() => parseInitArgs(argv, '/w')).toThrow(UsageError);
  });
});

describe('detectDatabase', () => {
  it.each([
    [{ 'app/settings.py': "ENGINE = 'django.db.backends.mysql'" }, 'mysql', 'ENGINE in app/settings.py'],
    [
      { 'app/settings.py': "'ENGINE': 'django.db.backends.sqlite3'", 'requirements.txt': 'psycopg2-binary==2.9\n' },
      'postgresql',
      'psycopg2-binary in requirements.txt',
    ],
    [{ 'app/settings.py': '', '.env.example': 'DATABASE_URL=mysql://u:p@h/db\n' }, 'mysql', 'DATABASE_URL in .env.example'],
    [
      { 'app/settings.py': '', 'pyproject.toml': '[project]\ndependencies = [\n  "PyMySQL>=1",\n]\n' },
      'mysql',
      'PyMySQL in pyproject.toml',
    ],
    [{ 'app/settings/base.py': "'django.contrib.gis.db.backends.postgis'" }, 'postgresql', 'ENGINE in app/settings/base.py'],
    [{ 'app/settings.py': '', 'requirements.txt': 'Django==5.2\n' }, 'sqlite', "Django's default (no other engine found)"],
  ])('%j -> %s', (files, vendor, evidence) => {
    const dir = project(files);
    expect(detectDatabase(dir, [dir], 'app.settings')).toEqual({ vendor, evidence });
  });
});

describe('pythonMatrix', () => {
  const facts = (text: string | undefined): ProjectFacts => ({ python: text ? { text, source: 'x' } : undefined }) as ProjectFacts;
  it.each([
    ['3.12', ['3.12']],
    ['3.11.7', ['3.11']],
    ['python-3.13.1', ['3.13']],
    ['>=3.11,<3.14', ['3.11', '3.13']],
    ['~=3.12', ['3.12', '3.14']],
    [undefined, ['3.12', '3.13']],
  ])('%s -> %j', (text, expected) => expect(pythonMatrix(facts(text))).toEqual(expected));
});

describe('requiredSettings', () => {
  it('CI alone needs nothing but GITHUB_TOKEN', () => expect(requiredSettings(['ci', 'docker'], 'ssh')).toEqual([]));
  it('rollback alone on cloud-run logs in to the registry host but pushes nothing', () => {
    const repo = requiredSettings(['rollback'], 'cloud-run').filter((s) => s.scope === 'repository');
    expect(repo.map((s) => s.name)).toEqual(['IMAGE_REGISTRY']);
  });
  it.each([
    ['ssh', ['DATABASE_URL', 'DJANGO_SECRET_KEY', 'DJANGO_ALLOWED_HOSTS', 'DEPLOY_HOSTS', 'SSH_PRIVATE_KEY', 'SSH_KNOWN_HOSTS']],
    [
      'aws-eb',
      [
        'DATABASE_URL',
        'DJANGO_SECRET_KEY',
        'DJANGO_ALLOWED_HOSTS',
        'AWS_ROLE_ARN',
        'AWS_REGION',
        'EB_APPLICATION',
        'EB_ENVIRONMENT',
        'EB_S3_BUCKET',
        'repository:IMAGE_REGISTRY',
        'repository:AWS_ROLE_ARN',
        'repository:AWS_REGION',
      ],
    ],
    [
      'cloud-run',
      [
        'DATABASE_URL',
        'DJANGO_SECRET_KEY',
        'DJANGO_ALLOWED_HOSTS',
        'GCP_WORKLOAD_IDENTITY_PROVIDER',
        'GCP_SERVICE_ACCOUNT',
        'GCP_REGION',
        'CLOUD_RUN_SERVICE',
        'repository:IMAGE_REGISTRY',
        'repository:GAR_REPOSITORY',
        'repository:GCP_WORKLOAD_IDENTITY_PROVIDER',
        'repository:GCP_SERVICE_ACCOUNT',
      ],
    ],
    ['heroku', ['DATABASE_URL', 'DJANGO_SECRET_KEY', 'DJANGO_ALLOWED_HOSTS', 'HEROKU_APP', 'HEROKU_API_KEY']],
  ] as const)('%s', (provider, names) => {
    const settings = requiredSettings(['cd'], provider);
    // The clouds' build job runs in no environment: it reads repository-level variables.
    expect(settings.map((s) => (s.scope === 'repository' ? `repository:${s.name}` : s.name))).toEqual(names);
    expect(settings.find((s) => s.name.endsWith('KEY') || s.name === 'DATABASE_URL')?.kind).toBe('secret');
  });
});

describe('optionalSettings', () => {
  it.each([
    [['ci', 'docker'], 'ssh', []],
    [['cd'], 'ssh', ['IMAGE_REGISTRY', 'APP_NAME']],
    [['rollback'], 'ssh', ['IMAGE_REGISTRY', 'APP_NAME']],
    [['cd'], 'heroku', ['IMAGE_REGISTRY']],
    [['cd'], 'aws-eb', []],
    [['cd', 'rollback'], 'cloud-run', []],
  ] as const)('%j %s', (stages, provider, names) => {
    const lines = optionalSettings([...stages], provider);
    expect(lines).toHaveLength(names.length);
    names.forEach((n, i) => expect(lines[i]).toContain(n));
  });
});
