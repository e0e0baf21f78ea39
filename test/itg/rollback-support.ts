/**
 * What the rollback integration tests and bench/rollback share, on top of deploy-support (the
 * example app's image, the loopback "VPS", wrk): later releases of the app built FROM that image
 * with the migrations of test/fixtures/rollback-v2 and -v3, and small database helpers.
 */
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../harness/job';

export function sh(tool: string, args: string[], env: Record<string, string> = {}, input?: string): string {
  return execFileSync(tool, args, { env: { ...process.env, ...env }, input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 << 20 })
    .toString()
    .trim();
}

function hashDir(dir: string, hash: crypto.Hash): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.name === '__pycache__') continue;
    const p = path.join(dir, e.name);
    hash.update(e.name);
    if (e.isDirectory()) hashDir(p, hash);
    else hash.update(fs.readFileSync(p));
  }
}

/**
 * `FROM base` + the fixture's app/ overlay (test/fixtures/rollback-<variant>), tagged by content,
 * pushed to the loopback registry; returns the reference by digest.
 */
export function buildVariant(variant: 'v2' | 'v3', base: string, env: Record<string, string>): { ref: string; tag: string } {
  const dir = path.join(REPO_ROOT, 'test', 'fixtures', `rollback-${variant}`);
  const hash = crypto.createHash('sha256').update(base);
  hashDir(dir, hash);
  const id = hash.digest('hex').slice(0, 12);
  const tag = `slipway-rollback-test/shop:${variant}-${id}`;
  const denv = { DOCKER_BUILDKIT: '0', ...(env.DOCKER_HOST ? { DOCKER_HOST: env.DOCKER_HOST } : {}) };
  try {
    sh('docker', ['image', 'inspect', tag], denv);
  } catch {
    sh('docker', ['build', '--quiet', '--build-arg', `BASE=${base}`, '--tag', tag, dir], denv);
  }
  const repo = `${env.SLIPWAY_TEST_REGISTRY ?? '127.0.0.1:5000'}/slipway-rollback-test/shop`;
  sh('docker', ['tag', tag, `${repo}:${variant}-${id}`], denv);
  sh('docker', ['push', '--quiet', `${repo}:${variant}-${id}`], denv);
  const digests = JSON.parse(sh('docker', ['image', 'inspect', '--format', '{{json .RepoDigests}}', tag], denv)) as string[];
  const ref = digests.find((d) => d.startsWith(`${repo}@`));
  if (!ref) throw new Error(`no registry digest for ${tag}`);
  return { ref, tag };
}

/** PostgreSQL on 127.0.0.1 as postgres (trust). */
export const pg = {
  url: (db: string) => `postgres://postgres@127.0.0.1:5432/${db}`,
  recreate(db: string): void {
    sh('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', 'postgres', '-q', '-c', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`]);
    sh('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', 'postgres', '-q', '-c', `CREATE DATABASE ${db}`]);
  },
  drop(db: string): void {
    sh('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', 'postgres', '-q', '-c', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`]);
  },
  query(db: string, sql: string): string {
    return sh('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', db, '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql]);
  },
};

/** MariaDB on 127.0.0.1 as root (no password). */
export const maria = {
  url: (db: string) => `mysql://root@127.0.0.1:3306/${db}`,
  recreate(db: string): void {
    sh('mysql', ['-h', '127.0.0.1', '-u', 'root', '-e', `DROP DATABASE IF EXISTS ${db}; CREATE DATABASE ${db}`]);
  },
  drop(db: string): void {
    sh('mysql', ['-h', '127.0.0.1', '-u', 'root', '-e', `DROP DATABASE IF EXISTS ${db}`]);
  },
  query(db: string, sql: string): string {
    return sh('mysql', ['-h', '127.0.0.1', '-u', 'root', '-N', '-B', db, '-e', sql]);
  },
};

/** A bare venv for the setup-django state the migrate action requires (it runs in the image). */
export function bareVenv(): string {
  const dir = path.join(os.tmpdir(), 'slipway-rollback-bare-venv');
  if (!fs.existsSync(path.join(dir, 'bin', 'python'))) sh('python3', ['-m', 'venv', '--without-pip', dir]);
  return dir;
}
