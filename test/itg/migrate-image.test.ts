/**
 * migrate with `image`: the release image's own Python and migrations (the example app's deploy
 * image), run by the real dockerd (--network host) against PostgreSQL. The project's environment
 * reaches the container only through a 0600 --env-file that is gone afterwards: a `docker`
 * wrapper first on PATH records every argv and the env file's mode, and execs the real client.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyProject, Job, REPO_ROOT } from '../harness/job';
import { preparedVenv, seedSetupDjango } from '../harness/python-env';
import { ensureServices } from '../harness/services';
import { buildDeployImage } from './deploy-support';

const DB = 'slipway_migrate_image';
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
record = {"argv": args, "envFiles": []}
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

let services: Record<string, string> = {};
let image = '';
let venv = '';

beforeAll(() => {
  services = ensureServices(['docker', 'base-image', 'registry']);
  image = buildDeployImage(services).ref;
  venv = preparedVenv([path.join(REPO_ROOT, 'example', 'requirements.txt')]);
  psql(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  psql(`CREATE DATABASE ${DB}`);
});

afterAll(() => {
  psql(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
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

    const calls = fs
      .readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { argv: string[]; envFiles: { path: string; mode: string; names: string[] }[] });
    // One container for the whole run: settings, plan, lint, lock, apply and state in one Django.
    expect(calls).toHaveLength(1);
    const [call] = calls;
    expect(call!.argv.slice(0, 7)).toEqual(['run', '--rm', '-i', '--network', 'host', '--env-file', call!.envFiles[0]!.path]);
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
});
