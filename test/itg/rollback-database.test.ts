/**
 * Rollbacks that move the database too, on the real stack: releases of the example shop deployed
 * by the real deploy action (migrate: true) to the loopback "VPS", a real PostgreSQL and a real
 * MariaDB. migrate-back across catalog and orders (with their data migrations), refusal when an
 * irreversible migration is on the path, restore-backup after data was written. PostgreSQL runs
 * with the Sentry stand-in. Records in the directory store; migrate-back from records in GitHub
 * Deployments (deploy creates them after its migrations) is covered by deploy-ssh-migrate.test.ts.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyWorkspace, Job, type StepResult } from '../harness/job';
import { seedSetupDjango } from '../harness/python-env';
import { SentryStub } from '../stubs/sentry-api';
import { buildDeployImage, cleanupHost, deployServices, sshInputs } from './deploy-support';
import { bareVenv, buildVariant, maria, pg } from './rollback-support';

const PG_DB = 'slipway_rollback_pg';
const MY_DB = 'slipway_rollback_my';
const SENTRY_TOKEN = 'sntrys_rollback_itg_token_4321';

let env: Record<string, string>;
let images: { v1: string; v2: string; v3: string };
let ssh: { key: string; knownHosts: string; port: string };
let remoteDir: string;

function target(app: string, proxyPort: number, appPort: number, databaseUrl: string) {
  const common = {
    provider: 'ssh',
    environment: 'staging',
    hosts: `root@127.0.0.1:${ssh.port}`,
    'ssh-private-key': ssh.key,
    'ssh-known-hosts': ssh.knownHosts,
    'app-name': app,
    'app-port': String(appPort),
    'proxy-port': String(proxyPort),
    'proxy-address': '127.0.0.1',
    'remote-dir': remoteDir,
    'health-timeout': '60s',
    env: `DATABASE_URL=${databaseUrl}\nDJANGO_SECRET_KEY=rollback-db-itg-secret-0123456789\nDJANGO_SECURE_SSL_REDIRECT=false\nDJANGO_LOG_LEVEL=WARNING`,
  };
  return {
    deploy: (image: string, over: Record<string, string> = {}) => ({ ...common, image, migrate: 'true', ...over }),
    rollback: (over: Record<string, string> = {}) => ({ ...common, ...over }),
    current: () => (JSON.parse(fs.readFileSync(path.join(remoteDir, app, 'current'), 'utf8')) as { releaseId: string }).releaseId,
  };
}

const ok = (r: StepResult): void => expect(r.failure, r.log).toBeUndefined();

beforeAll(() => {
  env = deployServices();
  Object.assign(process.env, { DOCKER_HOST: env.DOCKER_HOST ?? process.env.DOCKER_HOST });
  const base = buildDeployImage(env);
  const v2 = buildVariant('v2', base.tag, env);
  images = { v1: base.ref, v2: v2.ref, v3: buildVariant('v3', v2.tag, env).ref };
  ssh = sshInputs(env);
  remoteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-rollback-db-host-'));
});

afterAll(() => {
  if (!env) return;
  // Both apps share the remote dir: one call, so the second app's HAProxy is found before the dir goes.
  cleanupHost(['shoprbpg', 'shoprbmy'], remoteDir, env);
  pg.drop(PG_DB);
  maria.drop(MY_DB);
});

describe('rollback with the database (PostgreSQL, Sentry)', () => {
  const t = () => target('shoprbpg', 18690, 18610, pg.url(PG_DB));
  const sentry = new SentryStub({ token: SENTRY_TOKEN, org: 'acme', projects: ['shop'], repositories: ['acme/shop'] });
  let job: Job;
  let a: string;
  let b: string;
  const columns = () =>
    pg.query(
      PG_DB,
      "SELECT table_name || '.' || column_name FROM information_schema.columns WHERE column_name IN ('barcode', 'note') ORDER BY 1",
    );
  const applied = () => pg.query(PG_DB, "SELECT app || '.' || name FROM django_migrations WHERE app IN ('catalog', 'orders') ORDER BY id");

  beforeAll(async () => {
    pg.recreate(PG_DB);
    const sentryUrl = await sentry.start();
    job = new Job({
      workspace: emptyWorkspace(),
      env: { SENTRY_AUTH_TOKEN: SENTRY_TOKEN, SENTRY_ORG: 'acme', SENTRY_PROJECT: 'shop', SENTRY_URL: sentryUrl },
    });
  });
  afterAll(async () => {
    await sentry.server.stop();
  });

  it('migrate-back across catalog and orders: plan first, old code serves, then the schema goes back', async () => {
    const store = { 'release-store': 'releases', 'github-token': '' };
    const first = await job.run('deploy', t().deploy(images.v1, { ...store, 'setup-host': 'true' }), {
      env: { GITHUB_SHA: 'a'.repeat(40) },
    });
    ok(first);
    a = first.outputs['release-id']!;
    pg.query(PG_DB, "INSERT INTO catalog_category (name, slug) VALUES ('Tea', 'tea')");
    pg.query(
      PG_DB,
      "INSERT INTO catalog_product (category_id, name, slug, description, price, stock, created_at) SELECT id, n, lower(n), '', 3.5, 5, now() FROM catalog_category, (VALUES ('Green'), ('Black')) AS v(n)",
    );
    const second = await job.run('deploy', t().deploy(images.v2, store), { env: { GITHUB_SHA: 'b'.repeat(40) } });
    ok(second);
    b = second.outputs['release-id']!;
    // The new code writes to the new schema.
    pg.query(PG_DB, "INSERT INTO orders_order (email, status, created_at, note) VALUES ('ann@example.com', 'paid', now(), 'gift wrap')");
    expect(columns().split('\n')).toEqual(['catalog_product.barcode', 'orders_order.note']);

    const dry = await job.run('rollback', t().rollback({ ...store, 'dry-run': 'true' }));
    ok(dry);
    expect(dry.log).toContain('Database: migrate-back');
    expect(dry.log).toContain('Migrations: unapply orders: 0003_order_note; unapply catalog: 0005_product_barcode');
    // In the order the migrations are unapplied (orders.0003 depends on catalog.0005, so it goes first).
    expect(dry.log).toMatch(
      /Data lost: column orders_order\.note \(1 row\(s\) with data\); column catalog_product\.barcode \(2 row\(s\) with data\)/,
    );
    expect(dry.summary).toContain('rollback plan (dry run)');
    expect(columns().split('\n')).toHaveLength(2);
    expect(t().current()).toBe(b);

    const recordsDir = path.join(job.workspace, 'releases', 'staging');
    const recordsBefore = fs.readdirSync(recordsDir).length;
    const result = await job.run('rollback', t().rollback(store));
    ok(result);
    expect(t().current()).toBe(a);
    expect(columns()).toBe('');
    expect(applied().split('\n').sort()).toEqual([
      'catalog.0001_initial',
      'catalog.0002_product_slug',
      'catalog.0003_populate_product_slugs',
      'catalog.0004_product_slug_unique',
      'orders.0001_initial',
      'orders.0002_order_order_status_created_idx_and_more',
    ]);
    expect(pg.query(PG_DB, 'SELECT count(*) FROM orders_order')).toBe('1');
    // The order rule: traffic moved to the old release before the schema went back.
    expect(result.log.indexOf(`Serving ${a} again`)).toBeLessThan(result.log.indexOf('Migrating the database back'));
    expect(result.log.indexOf(`Serving ${a} again`)).toBeLessThan(result.log.indexOf('Backed up the database as it is now'));
    // Records: a new record marked as a rollback of B, with the state it left; B is inactive now.
    expect(fs.readdirSync(recordsDir)).toHaveLength(recordsBefore + 1);
    const read = (id: string) => JSON.parse(fs.readFileSync(path.join(recordsDir, `${id}.json`), 'utf8')) as Record<string, unknown>;
    const rb = read(result.outputs['release-id']!);
    expect(rb).toMatchObject({
      rollbackOf: b,
      image: images.v1,
      outcome: 'success',
      migrations: { after: { catalog: '0004_product_slug_unique' } },
    });
    expect(fs.existsSync(rb.backup as string)).toBe(true);
    expect(read(b)).toMatchObject({ outcome: 'success', details: { inactive: true, rolledBackBy: rb.id } });
    // Sentry: the deploy of the release serving again.
    const deploys = sentry.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/deploys/'));
    expect(deploys.at(-1)?.json).toMatchObject({ environment: 'staging' });
    expect(deploys.at(-1)?.path).toContain('a'.repeat(40));
    expect(result.summary).toContain('Backup taken before');
  });

  it('refuses up front when an irreversible migration is on the path, naming it; nothing changed', async () => {
    const store = { 'release-store': 'releases', 'github-token': '' };
    const third = await job.run('deploy', t().deploy(images.v3, store), { env: { GITHUB_SHA: 'c'.repeat(40) } });
    ok(third);
    const c = third.outputs['release-id']!;
    const recordsDir = path.join(job.workspace, 'releases', 'staging');
    const before = { applied: applied(), records: fs.readdirSync(recordsDir).length };
    const result = await job.run('rollback', t().rollback({ ...store, to: a }));
    expect(result.exitCode).toBe(1);
    expect(result.failure).toBe(
      'rollback failed: Rollback refused: migrating back would unapply catalog.0006_uppercase_barcodes, which cannot be unapplied (RunPython). ' +
        'Use `database: restore-backup` (the backup recorded before it) or `database: none`; nothing was changed.',
    );
    expect(result.summary).toContain('rollback: refused');
    expect(t().current()).toBe(c);
    expect(applied()).toBe(before.applied);
    expect(fs.readdirSync(recordsDir)).toHaveLength(before.records);
  });
});

describe('rollback with restore-backup (MariaDB, directory store)', () => {
  const t = () => target('shoprbmy', 18695, 18620, maria.url(MY_DB));

  it('restores the backup recorded before the deploy; the summary states what was lost', async () => {
    maria.recreate(MY_DB);
    const workspace = emptyWorkspace();
    const job = new Job({ workspace });
    seedSetupDjango(job, { venv: bareVenv(), projectDir: workspace, settingsModule: 'shop.settings' });
    const store = { 'release-store': 'releases', 'github-token': '' };
    const first = await job.run('deploy', t().deploy(images.v1, { ...store, 'setup-host': 'true' }));
    ok(first);
    maria.query(MY_DB, "INSERT INTO catalog_category (name, slug) VALUES ('Tea', 'tea')");
    maria.query(
      MY_DB,
      "INSERT INTO catalog_product (category_id, name, slug, description, price, stock, created_at) SELECT id, 'Green', 'green', '', 3.5, 5, NOW() FROM catalog_category",
    );
    // The migrate action backs up, then applies; deploy records its state and backup.
    const migrated = await job.run('migrate', {
      image: images.v2,
      backup: 'true',
      'backup-dir': 'backups',
      env: `DATABASE_URL=${maria.url(MY_DB)}\nDJANGO_SECRET_KEY=rollback-db-itg-secret-0123456789`,
    });
    ok(migrated);
    const second = await job.run('deploy', t().deploy(images.v2, { ...store, migrate: 'false' }));
    ok(second);
    const rec = JSON.parse(
      fs.readFileSync(path.join(workspace, 'releases', 'staging', `${second.outputs['release-id']}.json`), 'utf8'),
    ) as { backup: string };
    expect(rec.backup).toMatch(/backups\/.*\.sql$/);
    // Written after the deploy: two orders; they are what the restore loses.
    maria.query(
      MY_DB,
      "INSERT INTO orders_order (email, status, created_at, note) VALUES ('ann@example.com', 'paid', NOW(), 'a'), ('bob@example.com', 'pending', NOW(), 'b')",
    );

    const result = await job.run('rollback', t().rollback({ ...store, database: 'restore-backup' }));
    ok(result);
    expect(t().current()).toBe(first.outputs['release-id']);
    expect(maria.query(MY_DB, 'SELECT count(*) FROM orders_order')).toBe('0');
    expect(maria.query(MY_DB, 'SELECT count(*) FROM catalog_product')).toBe('1');
    expect(
      maria.query(
        MY_DB,
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND column_name IN ('barcode', 'note')",
      ),
    ).toBe('0');
    expect(result.log).toMatch(/Data lost: every write since the backup of \S+ \(1 release\(s\) undone\)/);
    expect(result.summary).toContain('Data lost by the restore');
    expect(result.summary).toMatch(/orders_order<\/td><td>2<\/td><td>0<\/td><td>2 row\(s\) lost/);
    const rb = JSON.parse(fs.readFileSync(path.join(workspace, 'releases', 'staging', `${result.outputs['release-id']}.json`), 'utf8')) as {
      backup: string;
      rollbackOf: string;
    };
    expect(rb.rollbackOf).toBe(second.outputs['release-id']);
    expect(fs.existsSync(rb.backup)).toBe(true);
  });
});
