/**
 * What the rollback integration tests and bench/rollback share, on top of deploy-support (the
 * example app's image, the loopback "VPS", wrk): later releases of the app built FROM that image
 * with the migrations of test/fixtures/rollback-v2 and -v3, and small database helpers.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
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

/**
 * A git remote over smart HTTP on 127.0.0.1 (`git http-backend` as CGI), that answers only
 * requests carrying `Authorization: Basic base64(x-access-token:<token>)`, as GitHub takes an
 * installation token: the way rollback's `revert` must reach an https origin.
 */
export class GitHttpRemote {
  readonly requests: { method: string; path: string; authorization: string | undefined }[] = [];
  private server?: http.Server;
  url = '';

  constructor(
    readonly root: string,
    readonly token: string,
  ) {}

  async start(): Promise<string> {
    const expected = `Basic ${Buffer.from(`x-access-token:${this.token}`).toString('base64')}`;
    this.server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://remote');
      const authorization = req.headers.authorization;
      this.requests.push({ method: req.method ?? 'GET', path: url.pathname, authorization });
      if (authorization?.replace(/^basic /i, 'Basic ') !== expected) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' });
        res.end('Unauthorized');
        return;
      }
      const cgi = spawn('git', ['http-backend'], {
        env: {
          ...process.env,
          GIT_PROJECT_ROOT: this.root,
          GIT_HTTP_EXPORT_ALL: '1',
          REMOTE_USER: 'x-access-token', // lets http-backend accept pushes
          REQUEST_METHOD: req.method ?? 'GET',
          PATH_INFO: decodeURIComponent(url.pathname),
          QUERY_STRING: url.search.slice(1),
          CONTENT_TYPE: req.headers['content-type'] ?? '',
          HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
          GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
        },
      });
      req.pipe(cgi.stdin);
      let head = Buffer.alloc(0);
      let sent = false;
      cgi.stdout.on('data', (chunk: Buffer) => {
        if (sent) return void res.write(chunk);
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        let status = 200;
        const headers: Record<string, string> = {};
        for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
          const [k, ...v] = line.split(':');
          if (k!.toLowerCase() === 'status') status = Number.parseInt(v.join(':').trim(), 10);
          else headers[k!] = v.join(':').trim();
        }
        res.writeHead(status, headers);
        res.write(head.subarray(end + 4));
        sent = true;
      });
      cgi.on('close', () => res.end());
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
