/**
 * migrate with `image`: the release image's own Python and migrations (the example app's deploy
 * image), run by the real dockerd (--network host) against PostgreSQL. The project's environment
 * reaches the container only through a 0600 --env-file that is gone afterwards: a `docker`
 * wrapper first on PATH records every argv and the env file's mode, and execs the real client.
 */
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyProject, Job, REPO_ROOT } from '../harness/job';
import { preparedVenv, seedSetupDjango } from '../harness/python-env';
import { ensureServices } from '../harness/services';
import { buildDeployImage } from './deploy-support';

const DB = 'slipway_migrate_image';
/** Databases of the runs without setup-django: in the image's WORKDIR, and stopped at apply-timeout. */
const DB_NOSETUP = 'slipway_migrate_image_nosetup';
const DB_SLOW = 'slipway_migrate_image_slow';
const DB_ABORT = 'slipway_migrate_image_abort';
const SLOW_FIXTURE = path.join(REPO_ROOT, 'test', 'fixtures', 'migrate-slow-image');
const SECRET = 'h4-Image-Pw-7c1e9b';

function psql(sql: string, db = 'postgres'): string {
  return execFileSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', db, '-AtqX', '-v', 'ON_ERROR_STOP=1', '-c', sql])
    .toString()
    .trim();
}

/** A `docker` that logs its argv (one JSON array a line) and each --env-file's mode and variable names. */
function dockerWrapper(dir: string, log: string): void {
  const real = execFileSync('sh', ['-c', 'command -v docker']).toString().trim();
  const script = `#!/usr/bin/env python3
import json, os, stat, sys
args = sys.argv[1:]
record = {"argv": args, "envFiles": [], "ppid": os.getppid()}
for i, a in enumerate(args[:-1]):
    if a == "--env-file":
        f = args[i + 1]
        names = [line.split("=", 1)[0] for line in open(f).read().splitlines() if "=" in line]
        record["envFiles"].append({"path": f, "mode": oct(stat.S_IMODE(os.stat(f).st_mode)), "names": names})
with open(${JSON.stringify(log)}, "a") as out:
    out.write(json.dumps(record) + "\\n")
os.execv(${JSON.stringify(real)}, [${JSON.stringify(real)}] + args)
`;
  fs.writeFileSync(path.join(dir, 'docker'), script, { mode: 0o755 });
}

interface Call {
  argv: string[];
  envFiles: { path: string; mode: string; names: string[] }[];
  /** The process that ran docker: the action's node. */
  ppid: number;
}

function readCalls(log: string): Call[] {
  return fs
    .readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Call);
}

let services: Record<string, string> = {};
let image = '';
let baseTag = '';
let venv = '';
const started: string[] = [];

function docker(args: string[]): string {
  const env = { ...process.env, DOCKER_BUILDKIT: '0', ...(services.DOCKER_HOST ? { DOCKER_HOST: services.DOCKER_HOST } : {}) };
  return execFileSync('docker', args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    .toString()
    .trim();
}

/** The deploy image with WORKDIR /, no DJANGO_SETTINGS_MODULE and a migration that sleeps (see the fixture's README). */
function slowImage(): string {
  const hash = crypto.createHash('sha256').update(baseTag);
  for (const f of fs.readdirSync(SLOW_FIXTURE).sort()) hash.update(f).update(fs.readFileSync(path.join(SLOW_FIXTURE, f)));
  const tag = `slipway-migrate-test/slow:${hash.digest('hex').slice(0, 12)}`;
  try {
    docker(['image', 'inspect', tag]);
  } catch {
    docker(['build', '--quiet', '--build-arg', `BASE=${baseTag}`, '--tag', tag, SLOW_FIXTURE]);
  }
  return tag;
}

/** The container names a run's docker calls used (from the wrapper's log). */
function containerNames(log: string): string[] {
  return readCalls(log)
    .filter((c) => c.argv[0] === 'run')
    .map((c) => c.argv[c.argv.indexOf('--name') + 1]!);
}

beforeAll(() => {
  services = ensureServices(['docker', 'base-image', 'registry']);
  const built = buildDeployImage(services);
  image = built.ref;
  baseTag = built.tag;
  venv = preparedVenv([path.join(REPO_ROOT, 'example', 'requirements.txt')]);
  for (const db of [DB, DB_NOSETUP, DB_SLOW, DB_ABORT]) {
    psql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    psql(`CREATE DATABASE ${db}`);
  }
});

afterAll(() => {
  // Whatever a failed assertion left behind.
  for (const name of started) {
    try {
      docker(['rm', '-f', name]);
    } catch {
      // gone, as it should be
    }
  }
  for (const db of [DB, DB_NOSETUP, DB_SLOW, DB_ABORT]) psql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
});

describe('migrate in the release image (PostgreSQL)', () => {
  it('plans, backs up and applies inside one container; the secret never reaches the docker argv or the log', async () => {
    const ws = copyProject('example');
    const url = `postgres://postgres:${SECRET}@127.0.0.1:5432/${DB}`;
    const j = new Job({
      workspace: ws,
      env: { DJANGO_DEBUG: 'true', DATABASE_URL: url, ...(services.DOCKER_HOST ? { DOCKER_HOST: services.DOCKER_HOST } : {}) },
    });
    seedSetupDjango(j, { venv, projectDir: ws, settingsModule: 'shop.settings' });
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-h4-docker-'));
    const log = path.join(bin, 'calls.jsonl');
    dockerWrapper(bin, log);
    j.path.push(bin);
    // A database already at catalog 0001 (made on the runner), so the backup has something in it.
    execFileSync(path.join(venv, 'bin', 'python'), ['manage.py', 'migrate', '-v0', 'catalog', '0001'], {
      cwd: ws,
      env: { ...process.env, DJANGO_DEBUG: 'true', DATABASE_URL: url, DJANGO_SETTINGS_MODULE: 'shop.settings' },
    });

    const step = await j.run('migrate', { image, 'fail-on': 'never', 'backup-dir': 'backups' });
    expect(step.exitCode, step.log).toBe(0);
    expect(JSON.parse(step.outputs['previous-state']!)).toMatchObject({ catalog: '0001_initial', orders: null });
    expect(JSON.parse(step.outputs['current-state']!)).toMatchObject({
      catalog: '0004_product_slug_unique',
      orders: '0002_order_order_status_created_idx_and_more',
    });
    expect(psql("SELECT max(name) FROM django_migrations WHERE app = 'catalog'", DB)).toBe('0004_product_slug_unique');
    // The backup: pg_dump on the runner with the settings the image's Django resolved, taken before applying.
    expect(step.outputs.backup).toMatch(/slipway_migrate_image-.*\.dump$/);
    const listing = execFileSync('pg_restore', ['-l', step.outputs.backup!]).toString();
    expect(listing).toContain('TABLE public catalog_product');
    expect(listing).not.toContain('TABLE public orders_order');

    const calls = readCalls(log);
    // One container for the whole run: settings, plan, lint, lock, apply and state in one Django.
    expect(calls).toHaveLength(1);
    const [call] = calls;
    expect(call!.argv.slice(0, 9)).toEqual([
      'run',
      '--rm',
      '-i',
      '--name',
      expect.stringMatching(/^slipway-migrate-1-[0-9a-f]{8}$/),
      '--network',
      'host',
      '--env-file',
      call!.envFiles[0]!.path,
    ]);
    expect(call!.argv).toContain(image);
    expect(JSON.stringify(call!.argv)).not.toContain(SECRET);
    expect(call!.envFiles).toHaveLength(1);
    const envFile = call!.envFiles[0]!;
    expect(envFile.path.startsWith(j.runnerTemp)).toBe(true);
    expect(envFile.mode).toBe('0o600');
    expect(envFile.names).toEqual(expect.arrayContaining(['DATABASE_URL', 'DJANGO_DEBUG', 'DJANGO_SETTINGS_MODULE']));
    expect(fs.existsSync(call!.envFiles[0]!.path)).toBe(false);
    expect(fs.existsSync(path.dirname(call!.envFiles[0]!.path))).toBe(false);
    expect(step.masks).toContain(SECRET);
    expect(step.shownLog).not.toContain(SECRET);
    expect(step.log).toContain('Lock taken.');

    // Nothing left to do: a second run in the image applies nothing and takes no backup.
    const again = await j.run('migrate', { image, 'fail-on': 'never' });
    expect(again.exitCode, again.log).toBe(0);
    expect(again.outputs.applied).toBe('[]');
    expect(again.outputs.backup).toBe('');
  });

  it('runs without setup-django: the project is the image WORKDIR, the settings its ENV; runner mode still asks for setup-django', async () => {
    // No checkout, no venv, no Slipway state: only the image and the database.
    const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-h10-empty-ws-'));
    const url = `postgres://postgres:${SECRET}@127.0.0.1:5432/${DB_NOSETUP}`;
    const j = new Job({
      workspace: ws,
      env: { DJANGO_DEBUG: 'true', DATABASE_URL: url, ...(services.DOCKER_HOST ? { DOCKER_HOST: services.DOCKER_HOST } : {}) },
    });
    const step = await j.run('migrate', { image, 'fail-on': 'never' });
    expect(step.exitCode, step.log).toBe(0);
    expect(step.log).toContain('Project: /app in the image (its WORKDIR)');
    expect(step.log).toContain("Settings: shop.settings, from the image's environment (ENV DJANGO_SETTINGS_MODULE)");
    expect(JSON.parse(step.outputs['current-state']!)).toMatchObject({
      catalog: '0004_product_slug_unique',
      orders: '0002_order_order_status_created_idx_and_more',
    });
    expect(psql("SELECT max(name) FROM django_migrations WHERE app = 'orders'", DB_NOSETUP)).toBe(
      '0002_order_order_status_created_idx_and_more',
    );
    // The backup (pg_dump on the runner, in RUNNER_TEMP) and the recorded state for later steps.
    expect(step.outputs.backup).toMatch(new RegExp(`^${j.runnerTemp}/slipway-backups/${DB_NOSETUP}-.*\\.dump$`));
    expect(fs.statSync(step.outputs.backup!).size).toBeGreaterThan(0);
    const state = JSON.parse(fs.readFileSync(path.join(j.runnerTemp, 'slipway', 'state.json'), 'utf8')) as Record<string, unknown>;
    expect(state.setupDjango).toBeUndefined();
    expect(state.migrate).toMatchObject({ currentState: { catalog: '0004_product_slug_unique' }, backup: step.outputs.backup });
    expect(step.shownLog).not.toContain(SECRET);

    const runner = await j.run('migrate', { 'fail-on': 'never' });
    expect(runner.exitCode).toBe(1);
    expect(runner.failure).toBe("migrate failed: migrate needs setup-django's results: has setup-django run earlier in this job?");
  });

  it('apply-timeout kills and removes the container, so its connection and the migration lock end with the step', async () => {
    const slow = slowImage();
    const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-h10-empty-ws-'));
    const url = `postgres://postgres:${SECRET}@127.0.0.1:5432/${DB_SLOW}`;
    const j = new Job({
      workspace: ws,
      env: { DJANGO_DEBUG: 'true', DATABASE_URL: url, ...(services.DOCKER_HOST ? { DOCKER_HOST: services.DOCKER_HOST } : {}) },
    });
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-h10-docker-'));
    const log = path.join(bin, 'calls.jsonl');
    dockerWrapper(bin, log);
    j.path.push(bin);
    const advisoryLocks = `SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND l.granted AND d.datname = '${DB_SLOW}'`;
    // While it runs: the lock is seen held (so the check after it means something).
    let heldSeen = false;
    const poll = setInterval(() => {
      if (psql(advisoryLocks) !== '0') heldSeen = true;
      if (fs.existsSync(log)) for (const n of containerNames(log)) if (!started.includes(n)) started.push(n);
    }, 500);
    let step;
    try {
      step = await j.run('migrate', {
        image: slow,
        'working-directory': 'app',
        'apply-timeout': '10s',
        'fail-on': 'never',
        backup: 'false',
      });
    } finally {
      clearInterval(poll);
    }
    expect(step.exitCode, step.log).toBe(1);
    expect(heldSeen).toBe(true);
    expect(step.log).toContain('Project: /app in the image (`working-directory: app`)');
    expect(step.log).toContain('Settings: shop.settings, from the default /app/manage.py sets (DJANGO_SETTINGS_MODULE unset)');
    expect(step.failure).toMatch(
      /^migrate failed: Migration catalog\.0005_sleep failed \(timed out after 10s\)\. The database is at .*catalog: 0004_product_slug_unique, .*orders: \(none\)/,
    );
    expect(JSON.parse(step.outputs['current-state']!)).toMatchObject({ catalog: '0004_product_slug_unique' });

    // The session's container, and the fresh one that read the state afterwards: both gone.
    const names = containerNames(log);
    expect(names).toHaveLength(2);
    expect(step.log).toContain(`Stopping container ${names[0]} (docker kill, docker rm -f)`);
    for (const name of names) expect(docker(['ps', '-a', '--filter', `name=^/${name}$`, '--format', '{{.Names}}'])).toBe('');
    // No connection left on the database and the lock free: another session takes it at once.
    // (the server ends a backend shortly after its client's socket closes: allow it 5 s)
    const connections = (): string => psql(`SELECT count(*) FROM pg_stat_activity WHERE datname = '${DB_SLOW}'`);
    for (let i = 0; i < 25 && connections() !== '0'; i++) execFileSync('sleep', ['0.2']);
    expect(connections()).toBe('0');
    expect(psql(advisoryLocks)).toBe('0');
    const ident = `slipway-migrate:postgresql:127.0.0.1:${DB_SLOW}`;
    const key = crypto.createHash('sha256').update(ident).digest().readBigInt64BE(0);
    expect(psql(`SELECT pg_try_advisory_lock(${key})`, DB_SLOW)).toBe('t');
  });

  it('a cancelled step (SIGINT, as the runner sends first) kills and removes the container before it ends', async () => {
    const slow = slowImage();
    const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-h10-empty-ws-'));
    const url = `postgres://postgres:${SECRET}@127.0.0.1:5432/${DB_ABORT}`;
    const j = new Job({
      workspace: ws,
      env: { DJANGO_DEBUG: 'true', DATABASE_URL: url, ...(services.DOCKER_HOST ? { DOCKER_HOST: services.DOCKER_HOST } : {}) },
    });
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-h10-docker-'));
    const log = path.join(bin, 'calls.jsonl');
    dockerWrapper(bin, log);
    j.path.push(bin);
    const advisoryLocks = `SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND l.granted AND d.datname = '${DB_ABORT}'`;
    const sleeping = `SELECT count(*) FROM django_migrations WHERE app = 'catalog' AND name = '0004_product_slug_unique'`;
    // Cancel once the lock is held and 0004 is applied (0005, the sleep, is running).
    let cancelled: Call | undefined;
    const poll = setInterval(() => {
      if (cancelled || !fs.existsSync(log)) return;
      for (const n of containerNames(log)) if (!started.includes(n)) started.push(n);
      let busy = false;
      try {
        busy = psql(advisoryLocks) !== '0' && psql(sleeping, DB_ABORT) === '1';
      } catch {
        // django_migrations not created yet
      }
      if (!busy) return;
      cancelled = readCalls(log)[0]!;
      process.kill(cancelled.ppid, 'SIGINT');
    }, 300);
    let step;
    try {
      step = await j.run(
        'migrate',
        { image: slow, 'working-directory': 'app', 'fail-on': 'never', backup: 'false' },
        { timeoutMs: 120_000 },
      );
    } finally {
      clearInterval(poll);
    }
    expect(cancelled, step.log).toBeDefined();
    expect(step.exitCode).not.toBe(0);
    expect(step.durationMs).toBeLessThan(60_000);
    const names = containerNames(log);
    expect(names).toHaveLength(1);
    expect(step.log).toContain(`SIGINT: killing and removing container ${names[0]} (docker kill, docker rm -f)`);
    expect(docker(['ps', '-a', '--filter', `name=^/${names[0]}$`, '--format', '{{.Names}}'])).toBe('');
    const connections = (): string => psql(`SELECT count(*) FROM pg_stat_activity WHERE datname = '${DB_ABORT}'`);
    for (let i = 0; i < 25 && connections() !== '0'; i++) execFileSync('sleep', ['0.2']);
    expect(connections()).toBe('0');
    expect(psql(advisoryLocks)).toBe('0');
    expect(psql("SELECT count(*) FROM django_migrations WHERE name = '0005_sleep'", DB_ABORT)).toBe('0');
  });
});
