/**
 * migrate against real databases: the example app on SQLite, PostgreSQL and MariaDB, the
 * dangerous-migrations fixture through the linter, two concurrent runs for the lock, and a
 * migration that fails half-way restored from its backup.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyProject, Job, REPO_ROOT } from '../harness/job';
import { preparedVenv, seedSetupDjango } from '../harness/python-env';

const PG = 'postgres://postgres@127.0.0.1:5432';
const MY = 'mysql://root@127.0.0.1:3306';
let venv = '';
const made: string[] = [];

function psql(sql: string, db = 'postgres'): string {
  return execFileSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', db, '-AtqX', '-v', 'ON_ERROR_STOP=1', '-c', sql])
    .toString()
    .trim();
}
function advisoryLocks(db: string): string {
  return psql(
    `SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND d.datname = '${db}'`,
  );
}
function mysql(sql: string, db?: string): string {
  return execFileSync('mysql', ['-h', '127.0.0.1', '-uroot', '-N', '-B', ...(db ? [db] : []), '-e', sql])
    .toString()
    .trim();
}
function freshPg(name: string): string {
  psql(`DROP DATABASE IF EXISTS ${name}`);
  psql(`CREATE DATABASE ${name}`);
  made.push(`pg:${name}`);
  return `${PG}/${name}`;
}
function freshMy(name: string): string {
  mysql(`DROP DATABASE IF EXISTS ${name}; CREATE DATABASE ${name} CHARACTER SET utf8mb4`);
  made.push(`my:${name}`);
  return `${MY}/${name}`;
}

const jobEnv = new Map<Job, Record<string, string>>();

function job(project: string, settingsModule: string, env: Record<string, string> = {}): Job {
  const ws = copyProject(project);
  const j = new Job({ workspace: ws, env: { DJANGO_DEBUG: 'true', ...env } });
  seedSetupDjango(j, { venv, projectDir: ws, settingsModule });
  jobEnv.set(j, { DJANGO_DEBUG: 'true', ...env });
  return j;
}

/** manage.py in the job's workspace, with the job's environment (test set-up, not the action). */
function manage(j: Job, args: string[]): string {
  return execFileSync(path.join(venv, 'bin', 'python'), ['manage.py', ...args], {
    cwd: j.workspace,
    env: { ...process.env, ...j.env, ...jobEnv.get(j) },
  }).toString();
}

beforeAll(() => {
  venv = preparedVenv([path.join(REPO_ROOT, 'example', 'requirements.txt')]);
});

afterAll(() => {
  for (const m of made) {
    const [kind, name] = m.split(':');
    if (kind === 'pg') psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    else mysql(`DROP DATABASE IF EXISTS ${name}`);
  }
});

describe('migrate on SQLite (example app)', () => {
  it('plans, applies with a backup, records the states, and a second run has nothing to do', async () => {
    const j = job('example', 'shop.settings');
    manage(j, ['migrate', 'catalog', '0001', '-v0']);
    execFileSync('sqlite3', [
      path.join(j.workspace, 'db.sqlite3'),
      "INSERT INTO catalog_category (name, slug) VALUES ('c', 'c'); INSERT INTO catalog_product (name, description, price, stock, created_at, category_id) VALUES ('a', '', 1, 1, '2026-01-01', 1), ('b', '', 1, 1, '2026-01-01', 1), ('b', '', 1, 1, '2026-01-01', 1)",
    ]);

    const check = await j.run('migrate', { mode: 'check' });
    expect(check.exitCode).toBe(1);
    expect(check.failure).toMatch(/^migrate failed: \d+ migration\(s\) pending: .*catalog\.0002_product_slug/);

    // catalog.0002 adds a NOT NULL column without db_default to an existing table: an error.
    const blocked = await j.run('migrate', {});
    expect(blocked.exitCode).toBe(1);
    expect(blocked.failure).toContain('not-null-without-db-default');
    expect(blocked.failure).toContain('nothing was applied');
    expect(JSON.parse(blocked.outputs.findings!)).toEqual([
      expect.objectContaining({ migration: 'catalog.0002_product_slug', severity: 'error' }),
    ]);
    expect(manage(j, ['showmigrations', 'catalog'])).toContain('[ ] 0002_product_slug');

    const step = await j.run('migrate', { 'fail-on': 'never', 'backup-dir': 'backups' });
    expect(step.exitCode, step.log).toBe(0);
    expect(JSON.parse(step.outputs['previous-state']!)).toMatchObject({ catalog: '0001_initial', orders: null });
    expect(JSON.parse(step.outputs['current-state']!)).toMatchObject({
      catalog: '0004_product_slug_unique',
      orders: '0002_order_order_status_created_idx_and_more',
    });
    expect(JSON.parse(step.outputs.applied!)).toContain('catalog.0003_populate_product_slugs');
    const backup = step.outputs.backup!;
    expect(backup.startsWith(path.join(j.workspace, 'backups'))).toBe(true);
    expect(fs.statSync(backup).mode & 0o777).toBe(0o600);
    // The backup is the database before migrating: catalog at 0001, three products.
    const rows = execFileSync('sqlite3', [
      backup,
      "SELECT count(*) FROM catalog_product; SELECT max(name) FROM django_migrations WHERE app='catalog'",
    ]);
    expect(rows.toString().trim().split('\n')).toEqual(['3', '0001_initial']);
    expect(step.summary).toContain('not uploaded (no artifact service)');
    const state = JSON.parse(fs.readFileSync(j.env.SLIPWAY_STATE_FILE!, 'utf8')) as { migrate: { backup: string; applied: string[] } };
    expect(state.migrate.backup).toBe(backup);

    const again = await j.run('migrate', {});
    expect(again.exitCode).toBe(0);
    expect(again.outputs.applied).toBe('[]');
    expect(again.outputs.backup).toBe('');
    expect(await j.run('migrate', { mode: 'check' }).then((s) => s.exitCode)).toBe(0);
  });

  it('rejects bad input in one line before touching anything', async () => {
    const j = job('example', 'shop.settings');
    const bad = await j.run('migrate', { mode: 'yolo' });
    expect(bad.failure).toBe('migrate failed: Input `mode` must be one of apply, plan, check; got "yolo".');
    const alias = await j.run('migrate', { database: 'reports' });
    expect(alias.failure).toMatch(/^migrate failed: Input `database`: alias "reports" is not in settings.DATABASES \(have: default\)\.$/);
    const ro = path.join(j.workspace, 'ro');
    fs.writeFileSync(ro, 'a file, not a folder');
    const dir = await j.run('migrate', { 'backup-dir': 'ro/backups', 'fail-on': 'never' });
    expect(dir.failure).toMatch(/^migrate failed: Input `backup-dir` \(.*ro\/backups\) is not a writable folder/);
    expect(manage(j, ['showmigrations', 'catalog'])).toContain('[ ] 0001_initial');
    const nomanage = await j.run('migrate', { 'working-directory': 'catalog' });
    expect(nomanage.failure).toMatch(/^migrate failed: No manage.py in `working-directory`/);
  });
});

describe('migrate on PostgreSQL', () => {
  it('lints the dangerous migrations with the SQL Django would run, honours slipway_allow', async () => {
    const url = freshPg('slipway_migrate_lint');
    const j = job('test/fixtures/dangerous-migrations', 'mysite.settings_db', { DATABASE_URL: url });
    fs.writeFileSync(
      path.join(j.workspace, 'mysite', 'settings_db.py'),
      'import os\nimport dj_database_url\nfrom .settings import *  # noqa\nDATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}\n',
    );
    manage(j, ['migrate', '-v0', 'accounts', '0001']);
    const mig = path.join(j.workspace, 'accounts', 'migrations', '0004_remove_customer_nickname.py');
    fs.appendFileSync(mig, '    slipway_allow = ["drop-column"]\n');
    const step = await j.run('migrate', { mode: 'plan' });
    expect(step.exitCode, step.log).toBe(0);
    const findings = JSON.parse(step.outputs.findings!) as { migration: string; rule: string; severity: string; allowed: boolean }[];
    const got = findings.map(
      (f) => `${f.migration.replace('accounts.', '').slice(0, 4)} ${f.rule} ${f.severity}${f.allowed ? ' allowed' : ''}`,
    );
    expect(got).toEqual([
      '0002 not-null-without-db-default error',
      '0003 index-not-concurrent warning',
      '0003 foreign-key-validates warning',
      '0004 drop-column error allowed',
      '0005 rename-column error',
      '0006 column-type-change warning',
      '0007 index-not-concurrent warning',
      '0007 unique-not-concurrent warning',
      '0008 irreversible-python error',
      '0009 irreversible-sql error',
    ]);
    const ann = step.annotations.find((a) => a.message.includes('rename-column'));
    expect(ann).toMatchObject({ level: 'error', file: 'accounts/migrations/0005_rename_customer_name_full_name.py', line: 13 });
    expect(step.summary).toContain('Lint findings');
    expect(psql("SELECT count(*) FROM django_migrations WHERE app='accounts'", 'slipway_migrate_lint')).toBe('1');
  });

  it('backs up, takes the lock, applies; a second run waits for the lock and times out clearly', async () => {
    const url = freshPg('slipway_migrate_pg');
    const j = job('example', 'shop.settings', { DATABASE_URL: url, DJANGO_CONN_MAX_AGE: '0' });
    // Hold the same advisory lock from another job's migrate run: start one on a slow apply.
    const holder = job('example', 'shop.settings', { DATABASE_URL: url });
    const slow = path.join(holder.workspace, 'catalog', 'migrations', '0005_slow.py');
    fs.writeFileSync(
      slow,
      'import time\nfrom django.db import migrations\n\nclass Migration(migrations.Migration):\n    dependencies = [("catalog", "0004_product_slug_unique")]\n    operations = [migrations.RunPython(lambda a, s: time.sleep(6), migrations.RunPython.noop)]\n',
    );
    const first = holder.run('migrate', { 'fail-on': 'never', backup: 'false' });
    for (let i = 0; i < 100 && advisoryLocks('slipway_migrate_pg') === '0'; i++) {
      await new Promise((r) => setTimeout(r, 200));
    }
    const second = await j.run('migrate', { 'fail-on': 'never', 'lock-timeout': '1s' });
    expect(second.exitCode).toBe(1);
    expect(second.failure).toMatch(
      /^migrate failed: Another migration holds the migration lock on the database at 127\.0\.0\.1:5432 \(held by backend pid \d+.*\).*Nothing was applied\.$/,
    );
    expect((await first).exitCode).toBe(0);
    // The lock was released: the next run takes it, finds nothing pending for its own graph, backs up on request.
    const third = await j.run('migrate', { 'fail-on': 'never', backup: 'true', 'backup-dir': 'b' });
    expect(third.exitCode, third.log).toBe(0);
    expect(third.outputs.backup).toMatch(/slipway_migrate_pg-.*\.dump$/);
    expect(execFileSync('pg_restore', ['-l', third.outputs.backup!]).toString()).toContain('TABLE public catalog_product');
    expect(advisoryLocks('slipway_migrate_pg')).toBe('0');
  });

  it('library: migrateBackTo the recorded previous state, and restoreBackup to the exact prior content', async () => {
    const url = freshPg('slipway_migrate_back');
    const j = job('example', 'shop.settings', { DATABASE_URL: url, DJANGO_CONN_MAX_AGE: '0' });
    manage(j, ['migrate', '-v0', 'catalog', '0001']);
    psql("INSERT INTO catalog_category (name, slug) VALUES ('c', 'c')", 'slipway_migrate_back');
    const dumpBefore = (): string =>
      execFileSync('pg_dump', ['-h', '127.0.0.1', '-U', 'postgres', '--schema-only', 'slipway_migrate_back'])
        .toString()
        .replace(/^\\(un)?restrict .*$/gm, '') +
      psql("SELECT count(*), md5(string_agg(app || name, ',' ORDER BY id)) FROM django_migrations", 'slipway_migrate_back');
    const before = dumpBefore();
    const step = await j.run('migrate', { 'fail-on': 'never' });
    expect(step.exitCode, step.log).toBe(0);
    const previous = JSON.parse(step.outputs['previous-state']!) as Record<string, string | null>;

    const lib = await import('../../packages/migrate/src/lib');
    const p = {
      host: lib.runnerHost({
        python: path.join(venv, 'bin', 'python'),
        managePy: path.join(j.workspace, 'manage.py'),
        settingsModule: 'shop.settings',
        env: { DATABASE_URL: url, DJANGO_DEBUG: 'true' },
      }),
      database: 'default',
    };
    const dry = await lib.migrateBackTo(p, previous, { dryRun: true });
    expect(dry.steps.every((s) => s.backwards)).toBe(true);
    expect(dry.steps.map((s) => `${s.app}.${s.name}`)).toContain('catalog.0003_populate_product_slugs');
    const back = await lib.migrateBackTo(p, previous);
    expect(back.state).toEqual(previous);
    expect(await lib.migrationState(p)).toEqual(previous);

    // And the other way back: the backup, exactly (schema and migration records).
    await lib.withMigrationLock(p, 5000, async () => {
      const db = await lib.databaseSettings(p);
      await lib.restoreBackup(p, db, { file: step.outputs.backup!, tool: 'pg_dump' });
    });
    expect(dumpBefore()).toBe(before);
  });

  it('says which host:port is unreachable within timeout, never the password', async () => {
    const j = job('example', 'shop.settings', { DATABASE_URL: 'postgres://app:s3cret-pw@127.0.0.1:5999/x' });
    const step = await j.run('migrate', { timeout: '2s' });
    expect(step.failure).toBe('migrate failed: The database at 127.0.0.1:5999 did not accept connections within 2s (ECONNREFUSED).');
    expect(step.shownLog).not.toContain('s3cret-pw');
    expect(step.masks).toContain('s3cret-pw');
    expect(step.durationMs).toBeLessThan(15_000);
  });
});

describe('migrate on MariaDB', () => {
  it('a migration failing half-way: reported state, clear failure, backup restores the exact prior content', async () => {
    const url = freshMy('slipway_migrate_half');
    const j = job('test/fixtures/migrate-halfway', 'site_cfg.settings', { DATABASE_URL: url });
    manage(j, ['migrate', '-v0', 'inventory', '0001']);
    mysql(
      'INSERT INTO inventory_item (name, quantity) VALUES ' + Array.from({ length: 50 }, (_, i) => `('item ${i}', ${i})`).join(','),
      'slipway_migrate_half',
    );
    const fingerprint = (): string =>
      mysql(
        "CHECKSUM TABLE inventory_item, django_migrations; SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='slipway_migrate_half' ORDER BY TABLE_NAME, ORDINAL_POSITION",
        'slipway_migrate_half',
      );
    const before = fingerprint();

    const step = await j.run('migrate', {});
    expect(step.exitCode).toBe(1);
    expect(step.failure).toMatch(
      /^migrate failed: Migration inventory\.0002_fails_halfway failed \(RuntimeError: slipway fixture: this data migration always fails\)\. The database is at inventory: 0001_initial; MySQL\/MariaDB cannot roll back schema changes.* Backup from just before: .*\.sql\.$/,
    );
    expect(JSON.parse(step.outputs['current-state']!)).toEqual({ inventory: '0001_initial' });
    expect(step.outputs.applied).toBe('[]');
    expect(fingerprint()).not.toBe(before); // the sku column stayed: MariaDB DDL is not transactional

    const { restoreBackup, databaseSettings, runnerHost } = await import('../../packages/migrate/src/lib');
    const p = {
      host: runnerHost({
        python: path.join(venv, 'bin', 'python'),
        managePy: path.join(j.workspace, 'manage.py'),
        settingsModule: 'site_cfg.settings',
        env: { DATABASE_URL: url },
      }),
      database: 'default',
    };
    const db = await databaseSettings(p);
    await restoreBackup(p, db, { file: step.outputs.backup!, tool: 'mysqldump' });
    expect(fingerprint()).toBe(before);
  });

  it('applies the example app on MariaDB with a mysqldump backup', async () => {
    const url = freshMy('slipway_migrate_ex');
    const j = job('example', 'shop.settings', { DATABASE_URL: url });
    const step = await j.run('migrate', {});
    expect(step.exitCode, step.log).toBe(0);
    expect(JSON.parse(step.outputs['current-state']!)).toMatchObject({ catalog: '0004_product_slug_unique' });
    expect(fs.readFileSync(step.outputs.backup!, 'utf8')).toContain('-- MariaDB dump');
    // A password flag as its own argv word (a temp dir such as slipway-db-pq7R1T must not match).
    expect(step.log).not.toMatch(/(?:^|\s)(?:--password|-p\S)/m);
  });
});

/**
 * A migration that, in the run whose environment names SLIPWAY_TEST_HOLD, says it is running
 * (so the lock is held) and waits until the test lets it go; elsewhere it does nothing.
 */
const HOLDING_MIGRATION = `import os
import time
from django.db import migrations


def hold(apps, schema_editor):
    marker = os.environ.get("SLIPWAY_TEST_HOLD")
    if not marker:
        return
    open(marker + ".held", "w").close()
    for _ in range(1200):
        if os.path.exists(marker + ".release"):
            return
        time.sleep(0.05)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0004_product_slug_unique")]
    operations = [migrations.RunPython(hold, migrations.RunPython.noop)]
`;

const SECOND_ONLY_MIGRATION = `from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalog", "0005_hold")]
    operations = [migrations.RunSQL("SELECT 1", "SELECT 1")]
`;

async function until(what: string, ok: () => boolean, ms = 120_000): Promise<void> {
  for (const end = Date.now() + ms; !ok();) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.each([
  {
    vendor: 'MariaDB (GET_LOCK)',
    url: () => freshMy('slipway_migrate_lock'),
    where: String.raw`127\.0\.0\.1:3306`,
    holder: String.raw`held by connection \d+`,
    // The lock's name, as the helper derives it from vendor, HOST and NAME.
    held: () =>
      mysql(
        `SELECT IS_USED_LOCK('slipway:${createHash('sha256').update('slipway-migrate:mysql:127.0.0.1:slipway_migrate_lock').digest('hex').slice(0, 48)}') IS NOT NULL`,
      ) === '1',
    applied: (url: string) => mysql("SELECT name FROM django_migrations WHERE app='catalog' ORDER BY name", url.split('/').pop()),
  },
  {
    vendor: 'SQLite (lock file)',
    url: () => `sqlite:///${path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-h4-lock-')), 'shared.sqlite3')}`,
    where: String.raw`/.*/shared\.sqlite3`,
    holder: String.raw`lock file /.*/shared\.sqlite3\.slipway-lock held by another process`,
    held: (url: string) =>
      spawnSync('python3', [
        '-c',
        'import fcntl, os, sys; fcntl.flock(os.open(sys.argv[1], os.O_RDWR | os.O_CREAT), fcntl.LOCK_EX | fcntl.LOCK_NB)',
        `${url.slice('sqlite:///'.length)}.slipway-lock`,
      ]).status !== 0,
    applied: (url: string) =>
      execFileSync('sqlite3', [url.slice('sqlite:///'.length), "SELECT name FROM django_migrations WHERE app='catalog' ORDER BY name"])
        .toString()
        .trim(),
  },
])('migrate on $vendor: lock contention', ({ url: makeUrl, where, holder, held, applied }) => {
  it('a second run waits for the lock, times out in one clear line, and applies nothing', async () => {
    const url = makeUrl();
    const marker = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-h4-hold-')), 'hold');
    const first = job('example', 'shop.settings', { DATABASE_URL: url, DJANGO_CONN_MAX_AGE: '0', SLIPWAY_TEST_HOLD: marker });
    fs.writeFileSync(path.join(first.workspace, 'catalog', 'migrations', '0005_hold.py'), HOLDING_MIGRATION);
    // The second run's project has one more migration, so "nothing applied" is visible in the table.
    const second = job('example', 'shop.settings', { DATABASE_URL: url, DJANGO_CONN_MAX_AGE: '0' });
    fs.writeFileSync(path.join(second.workspace, 'catalog', 'migrations', '0005_hold.py'), HOLDING_MIGRATION);
    fs.writeFileSync(path.join(second.workspace, 'catalog', 'migrations', '0006_second_only.py'), SECOND_ONLY_MIGRATION);

    const running = first.run('migrate', { 'fail-on': 'never', backup: 'false' });
    try {
      await until('the first run to hold the lock inside its apply', () => fs.existsSync(`${marker}.held`));
      expect(held(url)).toBe(true);
      const waited = await second.run('migrate', { 'fail-on': 'never', 'lock-timeout': '2s', 'backup-dir': 'b' });
      expect(waited.exitCode).toBe(1);
      expect(waited.failure).toMatch(
        new RegExp(
          `^migrate failed: Another migration holds the migration lock on the database at ${where} \\(${holder}\\); gave up waiting: raise \`lock-timeout\` or retry when it is done\\. Nothing was applied\\.$`,
        ),
      );
      expect(waited.log).toContain('Taking the migration lock (waiting up to 2s)');
      expect(waited.log).not.toContain('Applying migrations');
      expect(waited.outputs.applied).toBeUndefined();
      expect(fs.readdirSync(path.join(second.workspace, 'b'))).toEqual([]); // no backup: it is taken under the lock
    } finally {
      fs.writeFileSync(`${marker}.release`, '');
    }
    const done = await running;
    expect(done.exitCode, done.log).toBe(0);
    expect(JSON.parse(done.outputs.applied!)).toContain('catalog.0005_hold');
    expect(applied(url).split('\n')).toEqual([
      '0001_initial',
      '0002_product_slug',
      '0003_populate_product_slugs',
      '0004_product_slug_unique',
      '0005_hold',
    ]);
    expect(held(url)).toBe(false);
  });
});

describe('migrate on SQLite: apply-timeout', () => {
  it('stops a migration that runs past apply-timeout: a clear failure, the state it left, the lock free', async () => {
    const marker = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-h4-hold-')), 'hold');
    const j = job('example', 'shop.settings', { SLIPWAY_TEST_HOLD: marker });
    manage(j, ['migrate', '-v0']);
    fs.writeFileSync(path.join(j.workspace, 'catalog', 'migrations', '0005_hold.py'), HOLDING_MIGRATION);
    const step = await j.run('migrate', { 'fail-on': 'never', backup: 'false', 'apply-timeout': '4s' });
    expect(step.exitCode).toBe(1);
    expect(fs.existsSync(`${marker}.held`)).toBe(true); // it was running when it was stopped
    expect(step.failure).toMatch(
      /^migrate failed: Migration catalog\.0005_hold failed \(timed out after 4s\)\. The database is at .*catalog: 0004_product_slug_unique, .*; the failed migration was rolled back/,
    );
    expect(JSON.parse(step.outputs['current-state']!)).toMatchObject({ catalog: '0004_product_slug_unique' });
    expect(step.outputs.applied).toBe('[]');
    expect(step.log).toContain('Lock released.');
    const lockFile = path.join(j.workspace, 'db.sqlite3.slipway-lock');
    const free = spawnSync('python3', [
      '-c',
      'import fcntl, os, sys; fcntl.flock(os.open(sys.argv[1], os.O_RDWR), fcntl.LOCK_EX | fcntl.LOCK_NB)',
      lockFile,
    ]);
    expect(free.status, free.stderr.toString()).toBe(0);
  });
});
