import { describe, expect, it } from 'vitest';
import { buildArgv, runArgv } from '@slipway/toolkit/docker';
import { planLogin, registryKind } from '../../../packages/build-image/src/registry';
import { collectIndexSettings, parsePipConfigList } from '../../../packages/build-image/src/index-settings';
import { buildFailure, cacheUse, instructionLine } from '../../../packages/build-image/src/build';

describe('registry conventions', () => {
  it.each([
    ['ghcr.io', 'ghcr'],
    ['docker.io', 'dockerhub'],
    ['123456789012.dkr.ecr.eu-west-1.amazonaws.com', 'ecr'],
    ['public.ecr.aws', 'ecr-public'],
    ['europe-west1-docker.pkg.dev', 'gar'],
    ['eu.gcr.io', 'gar'],
    ['registry.digitalocean.com', 'docr'],
    ['127.0.0.1:5001', 'other'],
  ])('%s is %s', (host, kind) => expect(registryKind(host)).toBe(kind));

  const base = { username: '', password: '', githubToken: '', actor: 'octocat', push: true };
  it.each([
    // given credentials
    [
      { registry: 'ghcr.io', password: 'pat' },
      { username: 'octocat', password: 'pat', secretUsername: false },
    ],
    [
      { registry: 'ghcr.io', username: 'bot', password: 'pat' },
      { username: 'bot', password: 'pat', secretUsername: false },
    ],
    [
      { registry: '123456789012.dkr.ecr.us-east-2.amazonaws.com', password: 'tok' },
      { username: 'AWS', password: 'tok', secretUsername: false },
    ],
    [
      { registry: 'europe-docker.pkg.dev', password: '{"type":"service_account"}' },
      { username: '_json_key', password: '{"type":"service_account"}', secretUsername: false },
    ],
    [
      { registry: 'europe-docker.pkg.dev', password: 'ya29.token' },
      { username: 'oauth2accesstoken', password: 'ya29.token', secretUsername: false },
    ],
    [
      { registry: 'registry.digitalocean.com', password: 'dop_v1_x' },
      { username: 'dop_v1_x', password: 'dop_v1_x', secretUsername: true },
    ],
    [
      { registry: '127.0.0.1:5001', username: 'slipway', password: 'pw' },
      { username: 'slipway', password: 'pw', secretUsername: false },
    ],
    // none given: registry conventions
    [
      { registry: 'ghcr.io', githubToken: 'ghs_x' },
      { username: 'octocat', password: 'ghs_x', secretUsername: false },
    ],
    [
      { registry: '123456789012.dkr.ecr.eu-west-1.amazonaws.com' },
      { username: 'AWS', password: { tool: 'aws', args: ['ecr', 'get-login-password', '--region', 'eu-west-1'] }, secretUsername: false },
    ],
    [
      { registry: 'public.ecr.aws' },
      {
        username: 'AWS',
        password: { tool: 'aws', args: ['ecr-public', 'get-login-password', '--region', 'us-east-1'] },
        secretUsername: false,
      },
    ],
    [
      { registry: 'us-docker.pkg.dev' },
      { username: 'oauth2accesstoken', password: { tool: 'gcloud', args: ['auth', 'print-access-token'] }, secretUsername: false },
    ],
  ])('login %j', (input, expected) => {
    expect(planLogin({ ...base, ...input })).toMatchObject(expected);
  });

  it('needs no login for an open registry, or without push', () => {
    expect(planLogin({ ...base, registry: '127.0.0.1:5000' })).toBeUndefined();
    expect(planLogin({ ...base, registry: 'ghcr.io', push: false })).toBeUndefined();
  });

  it.each([
    [{ registry: 'docker.io', password: 'x' }, 'Input `registry-username` is required to log in to docker.io (your Docker Hub user name).'],
    [{ registry: 'r.example.com', username: 'u' }, 'Input `registry-username` is set but `registry-password` is empty'],
    [{ registry: 'ghcr.io' }, 'Pushing to ghcr.io needs a token'],
  ])('refuses %j', (input, message) => {
    expect(() => planLogin({ ...base, ...input })).toThrow(message);
  });
});

describe('docker argv', () => {
  const spec = {
    context: '/ws',
    dockerfile: '/ws/Dockerfile',
    tags: ['r/x:1', 'r/x:latest'],
    target: 'prod',
    buildArgs: [['A', '1']] as [string, string][],
    labels: { 'org.opencontainers.image.revision': 'abc' },
    iidfile: '/t/iid',
    network: 'host',
  };
  it('classic', () => {
    expect(buildArgv(spec, 'classic')).toEqual([
      'build',
      '--file',
      '/ws/Dockerfile',
      '--tag',
      'r/x:1',
      '--tag',
      'r/x:latest',
      '--target',
      'prod',
      '--build-arg',
      'A=1',
      '--label',
      'org.opencontainers.image.revision=abc',
      '--network',
      'host',
      '--iidfile',
      '/t/iid',
      '--force-rm',
      '/ws',
    ]);
    expect(() => buildArgv({ ...spec, secrets: { s: '/t/s' } }, 'classic')).toThrow('classic builder has no build secrets');
  });
  it('buildx: secrets by file, platforms, cache, load', () => {
    const argv = buildArgv(
      {
        ...spec,
        secrets: { 'index-env': '/t/env' },
        platforms: ['linux/amd64'],
        cacheFrom: ['type=gha'],
        cacheTo: ['type=gha,mode=max'],
        load: true,
      },
      'buildx',
    );
    expect(argv.slice(0, 2)).toEqual(['buildx', 'build']);
    expect(argv).toEqual(
      expect.arrayContaining([
        '--secret',
        'id=index-env,src=/t/env',
        '--platform',
        'linux/amd64',
        '--cache-from',
        'type=gha',
        '--cache-to',
        'type=gha,mode=max',
        '--load',
      ]),
    );
    expect(argv.at(-1)).toBe('/ws');
  });
  it('run takes settings from an env file, never argv values', () => {
    expect(
      runArgv({ image: 'i', rm: true, network: 'host', envFile: '/t/e', entrypoint: 'python', command: ['manage.py', 'check'] }),
    ).toEqual(['run', '--rm', '--network', 'host', '--env-file', '/t/e', '--entrypoint', 'python', 'i', 'manage.py', 'check']);
  });
});

describe('index settings', () => {
  it('reads pip config list, first scope wins', () => {
    const text =
      ":env:.find-links='/opt/wheels'\nglobal.cert='/etc/ssl/certs/ca.crt'\nglobal.extra-index-url='file:///opt/pypi/simple https://x.example/simple'\nglobal.constraint='/etc/c.txt'\nuser.index-url='https://u:p@idx.example/simple'";
    expect(parsePipConfigList(text)).toEqual({
      PIP_FIND_LINKS: '/opt/wheels',
      PIP_CERT: '/etc/ssl/certs/ca.crt',
      PIP_EXTRA_INDEX_URL: 'file:///opt/pypi/simple https://x.example/simple',
      PIP_INDEX_URL: 'https://u:p@idx.example/simple',
    });
  });
  it('packs remote URLs (uv too) and the CA bundle; drops local paths', () => {
    const s = collectIndexSettings(
      { PIP_INDEX_URL: "https://user:p'w@idx.example/simple", PIP_FIND_LINKS: '/opt/wheels', PIP_CERT: '/etc/hostname' },
      { PIP_EXTRA_INDEX_URL: 'file:///opt/pypi/simple' },
    );
    const env = s.secrets['index-env']!.toString();
    expect(env).toContain(`export PIP_INDEX_URL='https://user:p'\\''w@idx.example/simple'\n`);
    expect(env).toContain(`export UV_INDEX_URL='https://user:p'\\''w@idx.example/simple'\n`);
    expect(env).toContain(`export PIP_CERT='/run/secrets/index-ca'\n`);
    expect(env).not.toContain('/opt/wheels');
    expect(env).not.toContain('file://');
    expect(s.secrets['index-ca']).toBeDefined();
    expect(s.described.join(' ')).not.toContain("p'w");
    expect(s.skipped.sort()).toEqual([
      'PIP_EXTRA_INDEX_URL file:///opt/pypi/simple (not reachable from inside a build)',
      'PIP_FIND_LINKS /opt/wheels (not reachable from inside a build)',
    ]);
  });
  it('nothing configured, nothing sent', () => {
    expect(collectIndexSettings({}, {}).secrets).toEqual({});
  });
});

describe('build output', () => {
  const classic = [
    'Step 1/5 : ARG V=3',
    'Step 2/5 : FROM python:3.11-slim',
    ' ---> 203f62e112ab',
    'Step 3/5 : COPY requirements.txt ./',
    ' ---> Using cache',
    ' ---> 111',
    'Step 4/5 : RUN pip install -r requirements.txt',
    ' ---> Running in 1f33',
    'ERROR: No matching distribution found for nosuchpkg==9',
    "The command '/bin/sh -c pip install -r requirements.txt' returned a non-zero code: 1",
  ].join('\n');
  it('classic failure: step, instruction, last lines', () => {
    expect(buildFailure(classic, 'classic')).toEqual({
      step: '4/5',
      instruction: 'RUN pip install -r requirements.txt',
      index: 4,
      lastLines:
        "ERROR: No matching distribution found for nosuchpkg==9\nThe command '/bin/sh -c pip install -r requirements.txt' returned a non-zero code: 1",
    });
    expect(cacheUse(classic, 'classic')).toEqual({ reused: 1, steps: 4 });
  });
  it('buildx failure', () => {
    const out = [
      '#5 [builder 2/4] COPY requirements.txt ./',
      '#5 CACHED',
      '#6 [builder 3/4] RUN pip install -r requirements.txt',
      '#6 0.512 ERROR: No matching distribution found for nosuchpkg==9',
      '#6 ERROR: process "/bin/sh -c pip install -r requirements.txt" did not complete successfully: exit code: 1',
    ].join('\n');
    expect(buildFailure(out, 'buildx')).toMatchObject({
      step: 'builder 3/4',
      instruction: 'RUN pip install -r requirements.txt',
      lastLines: 'ERROR: No matching distribution found for nosuchpkg==9',
    });
    expect(cacheUse(out, 'buildx')).toEqual({ reused: 1, steps: 2 });
  });
  it('maps a step to its Dockerfile line (continuations and comments skipped)', () => {
    const text = '# c\nARG V=3\n\nFROM x AS b\nRUN a \\\n  && b\n# note\nCOPY . .\n';
    expect(instructionLine(text, 1)).toBe(2);
    expect(instructionLine(text, 3)).toBe(5);
    expect(instructionLine(text, 4)).toBe(8);
  });
});
