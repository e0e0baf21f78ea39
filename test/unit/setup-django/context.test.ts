import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { aptArgv, checkLocation, getInputs, parseCheckOutput } from '../../../packages/setup-django/src/context';
import { unknownPackages } from '../../../packages/setup-django/src/system-packages';

const set: string[] = [];
function inputs(values: Record<string, string>): void {
  for (const [k, v] of Object.entries(values)) {
    const name = `INPUT_${k.toUpperCase()}`;
    process.env[name] = v;
    set.push(name);
  }
}
afterEach(() => {
  for (const name of set.splice(0)) delete process.env[name];
  delete process.env.GITHUB_WORKSPACE;
});

describe('getInputs', () => {
  it('has working defaults with no inputs', () => {
    const got = getInputs();
    expect(got).toMatchObject({ packageManager: 'auto', installer: 'uv', cache: true, check: 'false', waitTimeoutMs: 60_000, waitFor: [] });
    expect(got.pythonVersion).toBeUndefined();
  });

  it('parses every input', () => {
    const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-ctx-'));
    fs.writeFileSync(path.join(ws, 'ci.env'), 'DATABASE_URL=postgres://u:p@localhost/db\nAPI_TOKEN="abc"\n');
    process.env.GITHUB_WORKSPACE = ws;
    inputs({
      'python-version': '3.12',
      'package-manager': 'poetry',
      installer: 'pip',
      extras: 'prod, pg',
      groups: 'dev',
      'system-packages': 'libpq-dev gettext\nlibjpeg-dev',
      cache: 'false',
      'settings-module': 'mysite.settings.ci',
      'env-file': 'ci.env',
      'secret-keys': 'API_TOKEN',
      check: 'deploy',
      'wait-for': 'postgres://localhost:5432/db, redis://localhost',
      'wait-timeout': '2m',
    });
    const got = getInputs();
    expect(got.pythonVersion).toMatchObject({ specifier: '==3.12.*' });
    expect(got.systemPackages).toEqual(['libpq-dev', 'gettext', 'libjpeg-dev']);
    expect([...got.envFile.keys()]).toEqual(['DATABASE_URL', 'API_TOKEN']);
    expect(got.waitFor.map((s) => [s.kind, s.port])).toEqual([
      ['postgres', 5432],
      ['redis', 6379],
    ]);
    expect(got).toMatchObject({
      packageManager: 'poetry',
      installer: 'pip',
      extras: ['prod', 'pg'],
      cache: false,
      check: 'deploy',
      waitTimeoutMs: 120_000,
    });
  });

  it.each([
    [{ 'package-manager': 'conda' }, /^Input `package-manager` .*conda/],
    [{ installer: 'pdm' }, /^Input `installer`/],
    [{ cache: 'yes' }, /^Input `cache`/],
    [{ check: 'strict' }, /^Input `check`/],
    [{ 'python-version': 'latest' }, /^Input `python-version`: `latest` is not a Python version/],
    [{ 'system-packages': 'libpq-dev; rm -rf /' }, /^Input `system-packages`: `libpq-dev;` is not a Debian package name/],
    [{ 'settings-module': 'my-site/settings' }, /^Input `settings-module`/],
    [{ 'wait-for': 'ftp://localhost' }, /^Input `wait-for`: ftp is not supported/],
    [{ 'wait-for': 'tcp://localhost' }, /^Input `wait-for`: tcp:\/\/localhost needs a port/],
    [{ 'wait-timeout': 'soon' }, /^Input `wait-timeout`/],
    [{ 'env-file': 'missing.env' }, /^Input `env-file`: missing.env does not exist\.$/],
    [{ extras: 'a b' }, /^Input `extras`/],
  ])('rejects %j', (values, message) => {
    process.env.GITHUB_WORKSPACE = os.tmpdir();
    inputs(values);
    expect(() => getInputs()).toThrow(message);
  });

  it('rejects a malformed env-file naming the file and line', () => {
    const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-ctx-'));
    fs.writeFileSync(path.join(ws, 'bad.env'), 'OK=1\nthis is not dotenv\n');
    process.env.GITHUB_WORKSPACE = ws;
    inputs({ 'env-file': 'bad.env' });
    expect(() => getInputs()).toThrow('env-file bad.env line 2: expected KEY=value.');
  });
});

describe('aptArgv', () => {
  it('runs apt-get directly as root and through sudo -n otherwise, waiting for the dpkg lock; simulates without root', () => {
    expect(aptArgv(['libpq-dev'], true)).toEqual({
      update: ['apt-get', ['-q', '-o', 'DPkg::Lock::Timeout=120', 'update']],
      simulate: ['apt-get', ['-q', '--simulate', 'install', '--no-install-recommends', 'libpq-dev']],
      install: ['apt-get', ['-q', '-o', 'DPkg::Lock::Timeout=120', 'install', '-y', '--no-install-recommends', 'libpq-dev']],
    });
    const user = aptArgv(['a', 'b'], false);
    expect(user.install).toEqual([
      'sudo',
      ['-n', 'apt-get', '-q', '-o', 'DPkg::Lock::Timeout=120', 'install', '-y', '--no-install-recommends', 'a', 'b'],
    ]);
    expect(user.simulate[0]).toBe('apt-get');
  });
});

describe('unknownPackages', () => {
  it.each([
    ['E: Unable to locate package nope-pkg', ['nope-pkg']],
    ["E: Package 'python-old' has no installation candidate", ['python-old']],
    ["E: Version '9.9' for 'sl' was not found", ['sl=9.9']],
    ['Inst sl (5.02-1+b1 Debian:12/stable [amd64])\nConf sl (5.02-1+b1 Debian:12/stable [amd64])', []],
  ])('%s', (output, names) => {
    expect(unknownPackages(output)).toEqual(names);
  });
});

describe('parseCheckOutput', () => {
  it('turns check messages (with hints) into levels', () => {
    const text = [
      'SystemCheckError: System check identified some issues:',
      '',
      'ERRORS:',
      "orders.Order.total: (fields.E130) DecimalFields must define a 'decimal_places' attribute.",
      '',
      'WARNINGS:',
      '?: (security.W004) You have not set a value for the SECURE_HSTS_SECONDS setting.',
      '\tHINT: Set it to a positive integer.',
      '?: (myapp.I001) Just so you know.',
      '',
      'System check identified 3 issues (0 silenced).',
    ].join('\n');
    expect(parseCheckOutput(text)).toEqual([
      {
        level: 'error',
        id: 'fields.E130',
        object: 'orders.Order.total',
        message: "DecimalFields must define a 'decimal_places' attribute.",
      },
      {
        level: 'warning',
        id: 'security.W004',
        object: '?',
        message: 'You have not set a value for the SECURE_HSTS_SECONDS setting. Hint: Set it to a positive integer.',
      },
      { level: 'notice', id: 'myapp.I001', object: '?', message: 'Just so you know.' },
    ]);
  });
});

describe('checkLocation', () => {
  it('points model messages at models.py lines and project-wide ones at the settings file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-check-'));
    fs.mkdirSync(path.join(dir, 'shop'));
    fs.mkdirSync(path.join(dir, 'orders'));
    fs.writeFileSync(path.join(dir, 'shop', 'settings.py'), 'DEBUG = False\n');
    fs.writeFileSync(
      path.join(dir, 'orders', 'models.py'),
      'from django.db import models\n\n\nclass Order(models.Model):\n    total = models.DecimalField()\n',
    );
    expect(checkLocation('?', dir, 'shop.settings')).toEqual({ file: path.join(dir, 'shop', 'settings.py') });
    expect(checkLocation('orders.Order.total', dir, 'shop.settings')).toEqual({ file: path.join(dir, 'orders', 'models.py'), line: 5 });
    expect(checkLocation('orders.Order', dir, 'shop.settings')).toEqual({ file: path.join(dir, 'orders', 'models.py'), line: 4 });
    expect(checkLocation('admin.LogEntry', dir, 'shop.settings')).toEqual({});
  });
});
