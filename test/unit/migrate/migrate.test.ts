import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { mysqlOptionFile, pgEnv, requireClient } from '@slipway/toolkit/db-clients';
import type { DatabaseSettings } from '@slipway/toolkit/django';
import { getInputs, wantsBackup } from '../../../packages/migrate/src/context';
import { HELPER_SCRIPT } from '../../../packages/migrate/src/helper-script';
import { envFileText, imageHost } from '../../../packages/migrate/src/host';
import { lintPlan, parseAnswer, type Finding } from '../../../packages/migrate/src/lib';

const saved = { ...process.env };
afterEach(() => {
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  Object.assign(process.env, saved);
});

function inputs(values: Record<string, string>): void {
  for (const [k, v] of Object.entries(values)) process.env[`INPUT_${k.toUpperCase()}`] = v;
}

describe('getInputs', () => {
  it('reads the defaults', () => {
    process.env.GITHUB_WORKSPACE = '/ws';
    process.env.RUNNER_TEMP = '/rt';
    expect(getInputs()).toMatchObject({
      mode: 'apply',
      database: 'default',
      failOn: 'error',
      backup: 'auto',
      backupDir: '/rt/slipway-backups',
      backupRetentionDays: 7,
      lockTimeoutMs: 300_000,
      timeoutMs: 30_000,
      image: '',
      env: {},
    });
  });

  it.each([
    [{ mode: 'yolo' }, 'Input `mode` must be one of apply, plan, check; got "yolo".'],
    [{ 'fail-on': 'info' }, 'Input `fail-on` must be one of error, warning, never; got "info".'],
    [{ backup: 'yes' }, 'Input `backup` must be one of auto, true, false; got "yes".'],
    [{ 'lock-timeout': 'soon' }, 'Input `lock-timeout` must be a duration such as 90s, 5m or 1h30m; got "soon".'],
    [{ 'backup-retention-days': '0' }, 'Input `backup-retention-days` must be a whole number from 1 to 90; got "0".'],
    [{ database: 'a b' }, 'Input `database` must be an alias from settings.DATABASES'],
    [{ image: '--privileged' }, 'Input `image` must be an image reference'],
    [{ env: 'not a line' }, 'Input `env` line 1: expected KEY=value.'],
    [{ 'working-directory': 'a\nb' }, 'Input `working-directory` must be one folder path on one line.'],
  ])('rejects %j', (values, message) => {
    inputs(values);
    expect(() => getInputs()).toThrow(message);
  });

  it('resolves backup-dir against the workspace and reads env lines', () => {
    process.env.GITHUB_WORKSPACE = '/ws';
    inputs({ 'backup-dir': 'backups', env: 'A=1\nSECRET_TOKEN="x y"' });
    expect(getInputs()).toMatchObject({ backupDir: '/ws/backups', env: { A: '1', SECRET_TOKEN: 'x y' } });
  });
});

describe('wantsBackup', () => {
  it.each([
    ['apply', 'auto', 0, false],
    ['apply', 'auto', 2, true],
    ['apply', 'true', 0, true],
    ['apply', 'false', 2, false],
    ['plan', 'true', 2, false],
    ['check', 'auto', 2, false],
  ] as const)('mode %s backup %s pending %d -> %s', (mode, backup, pending, want) => {
    expect(wantsBackup({ mode, backup }, pending)).toBe(want);
  });
});

const finding = (severity: 'error' | 'warning', allowed = false): Finding => ({
  migration: 'a.0002',
  app: 'a',
  name: '0002',
  operation: '#1 X',
  rule: severity === 'error' ? 'drop-column' : 'index-not-concurrent',
  severity,
  reason: 'r',
  allowed,
  file: null,
  line: null,
});

describe('lintPlan', () => {
  const all = [finding('error'), finding('warning'), finding('error', true)];
  it.each([
    ['error', 1],
    ['warning', 2],
    ['never', 0],
  ] as const)('fail-on %s blocks %d (accepted never block)', (failOn, n) => {
    const { blocking, accepted } = lintPlan(all, failOn);
    expect(blocking).toHaveLength(n);
    expect(accepted).toHaveLength(1);
  });
});

describe('helper', () => {
  it('the embedded script is helper.py (regenerate with node packages/migrate/scripts/gen-helper.mjs)', () => {
    const py = fs.readFileSync(path.join(__dirname, '../../../packages/migrate/src/helper.py'), 'utf8');
    expect(HELPER_SCRIPT).toBe(py);
  });
  it('reads the last SLIPWAY_JSON line among other output', () => {
    expect(parseAnswer('Operations to perform:\nSLIPWAY_JSON:{"a":1}\nnoise\nSLIPWAY_JSON:{"b":2}\n')).toEqual({ b: 2 });
    expect(parseAnswer('Traceback ...')).toBeUndefined();
  });
});

const db = (over: Partial<DatabaseSettings>): DatabaseSettings => ({
  alias: 'default',
  engine: 'django.db.backends.postgresql',
  vendor: 'postgresql',
  name: 'shop',
  user: 'app',
  password: 'pa:ss\\word',
  host: 'db.internal',
  port: '6543',
  options: {},
  testName: null,
  ...over,
});

describe('database clients: credentials in 0600 files, never argv or env values', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-unit-'));
  it('pgEnv writes a PGPASSFILE with the password escaped', () => {
    const env = pgEnv(db({}), dir);
    expect(env).toMatchObject({ PGHOST: 'db.internal', PGPORT: '6543', PGUSER: 'app', PGDATABASE: 'shop' });
    expect(Object.values(env).join(' ')).not.toContain('pa:ss');
    expect(fs.readFileSync(env.PGPASSFILE!, 'utf8')).toBe('*:*:*:*:pa\\:ss\\\\word\n');
    expect(fs.statSync(env.PGPASSFILE!).mode & 0o777).toBe(0o600);
  });
  it('mysqlOptionFile writes a [client] option file', () => {
    const file = mysqlOptionFile(db({ vendor: 'mysql', password: 'p"w', port: '3307' }), dir);
    expect(fs.readFileSync(file, 'utf8')).toBe('[client]\nuser="app"\npassword="p\\"w"\nhost="db.internal"\nprotocol=tcp\nport=3307\n');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });
  it('names the package to install when a client is missing', () => {
    expect(() => requireClient('pg_dump', 'the backup', '/nonexistent')).toThrow(
      'pg_dump is not installed, and the backup needs it: install the PostgreSQL client matching the server major (Debian/Ubuntu: `sudo apt-get install -y postgresql-client`).',
    );
  });
});

describe('image host', () => {
  it('passes the environment through a 0600 --env-file, never on argv', () => {
    const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-unit-'));
    const host = imageHost({
      image: 'reg/app@sha256:abc',
      settingsModule: 's.settings',
      env: { DATABASE_URL: 'postgres://u:secret@h/d' },
      tempDir: temp,
      localPython: 'python3',
    });
    const cmd = host.pythonCommand(['manage.py', 'migrate']);
    expect(cmd.tool).toBe('docker');
    const envFile = cmd.args[cmd.args.indexOf('--env-file') + 1]!;
    const name = cmd.args[cmd.args.indexOf('--name') + 1]!;
    expect(name).toMatch(/^slipway-migrate-local-[0-9a-f]{8}$/);
    expect(cmd.args).toEqual([
      'run',
      '--rm',
      '-i',
      '--name',
      name,
      '--network',
      'host',
      '--env-file',
      envFile,
      'reg/app@sha256:abc',
      'python',
      'manage.py',
      'migrate',
    ]);
    expect(cmd.args.join(' ')).not.toContain('secret');
    expect(fs.readFileSync(envFile, 'utf8')).toBe(
      'DATABASE_URL=postgres://u:secret@h/d\nPYTHONUNBUFFERED=1\nDJANGO_SETTINGS_MODULE=s.settings\n',
    );
    expect(typeof cmd.stop).toBe('function');
    // Each container its own name, so a stop never reaches another run's.
    expect(host.pythonCommand(['x']).args).not.toContain(name);
    expect(fs.statSync(envFile).mode & 0o777).toBe(0o600);
    host.dispose();
    expect(fs.existsSync(envFile)).toBe(false);
  });
  it('names containers after the run, and passes working-directory to the helper, not to docker', () => {
    process.env.GITHUB_RUN_ID = '12345';
    const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-unit-'));
    const host = imageHost({ image: 'app:1', projectDir: 'src', env: {}, tempDir: temp, localPython: 'python3' });
    const cmd = host.pythonCommand(['-V']);
    expect(cmd.args[cmd.args.indexOf('--name') + 1]).toMatch(/^slipway-migrate-12345-[0-9a-f]{8}$/);
    expect(cmd.args).not.toContain('--workdir');
    expect(fs.readFileSync(cmd.args[cmd.args.indexOf('--env-file') + 1]!, 'utf8')).toBe('PYTHONUNBUFFERED=1\nSLIPWAY_PROJECT_DIR=src\n');
    host.dispose();
  });
  it('refuses values docker cannot carry in an env file', () => {
    expect(() => envFileText({ KEY: 'a\nb' })).toThrow('Environment variable KEY has a newline');
  });
});
