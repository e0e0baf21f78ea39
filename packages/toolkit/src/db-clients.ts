import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { DatabaseSettings } from './django';
import { UserError } from './errors';

/**
 * Connection facts (as Django resolved them) turned into what the vendors' command-line clients
 * read: environment and 0600 files, never argv, so no password shows in a process listing.
 */

const INSTALL: Record<string, string> = {
  pg_dump: 'install the PostgreSQL client matching the server major (Debian/Ubuntu: `sudo apt-get install -y postgresql-client`)',
  pg_restore: 'install the PostgreSQL client (Debian/Ubuntu: `sudo apt-get install -y postgresql-client`)',
  psql: 'install the PostgreSQL client (Debian/Ubuntu: `sudo apt-get install -y postgresql-client`)',
  mysqldump: 'install the MySQL/MariaDB client (Debian/Ubuntu: `sudo apt-get install -y mariadb-client` or `default-mysql-client`)',
  mysql: 'install the MySQL/MariaDB client (Debian/Ubuntu: `sudo apt-get install -y mariadb-client` or `default-mysql-client`)',
};

/** The full path of `tool` on PATH, or a UserError saying how to install it. */
export function requireClient(tool: string, why: string, searchPath = process.env.PATH ?? ''): string {
  for (const dir of searchPath.split(path.delimiter).filter(Boolean)) {
    const file = path.join(dir, tool);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // keep looking
    }
  }
  throw new UserError(`${tool} is not installed, and ${why} needs it: ${INSTALL[tool] ?? `install ${tool}`}.`);
}

/** host:port as the client would reach it (Django's empty HOST means the local default). */
export function endpoint(db: DatabaseSettings): { host: string; port: number } {
  const port = Number(db.port) || (db.vendor === 'mysql' ? 3306 : 5432);
  return { host: db.host || (db.vendor === 'mysql' ? 'localhost' : 'localhost'), port };
}

/** Waits until host:port accepts a TCP connection; a UserError naming host:port after `timeoutMs`. */
export async function waitForTcp(host: string, port: number, timeoutMs: number): Promise<void> {
  if (host.startsWith('/')) return; // a Unix socket folder: nothing to probe over TCP
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const left = deadline - Date.now();
    const error = await new Promise<string | undefined>((resolve) => {
      const socket = net.connect({ host, port });
      const timer = setTimeout(
        () => {
          socket.destroy();
          resolve('no answer');
        },
        Math.min(left, 3000),
      );
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.end();
        resolve(undefined);
      });
      socket.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        resolve(e.code ?? e.message);
      });
    });
    if (error === undefined) return;
    last = error;
    await new Promise((r) => setTimeout(r, Math.min(500, Math.max(0, deadline - Date.now()))));
  }
  throw new UserError(`The database at ${host}:${port} did not accept connections within ${Math.round(timeoutMs / 1000)}s (${last}).`);
}

/** libpq's environment: PGPASSFILE (0600, in `dir`) for the password, never PGPASSWORD or argv. */
export function pgEnv(db: DatabaseSettings, dir: string): Record<string, string> {
  const env: Record<string, string> = { PGDATABASE: db.name, PGCONNECT_TIMEOUT: '10' };
  if (db.host) env.PGHOST = db.host;
  if (db.port) env.PGPORT = db.port;
  if (db.user) env.PGUSER = db.user;
  const sslmode = db.options.sslmode;
  if (typeof sslmode === 'string') env.PGSSLMODE = sslmode;
  // Always our own file (empty without a password), so no ~/.pgpass of the runner is read.
  const esc = (v: string): string => v.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
  const file = path.join(dir, 'pgpass');
  fs.writeFileSync(file, db.password ? `*:*:*:*:${esc(db.password)}\n` : '', { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  env.PGPASSFILE = file;
  return env;
}

/** A MySQL option file (0600, in `dir`) for --defaults-extra-file, which must be the first argument. */
export function mysqlOptionFile(db: DatabaseSettings, dir: string): string {
  const q = (v: string): string => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  const lines = ['[client]'];
  if (db.user) lines.push(`user=${q(db.user)}`);
  if (db.password) lines.push(`password=${q(db.password)}`);
  if (db.host && !db.host.startsWith('/')) lines.push(`host=${q(db.host)}`, 'protocol=tcp');
  if (db.host?.startsWith('/')) lines.push(`socket=${q(db.host)}`);
  if (db.port) lines.push(`port=${db.port}`);
  const charset = db.options.charset;
  if (typeof charset === 'string') lines.push(`default-character-set=${charset}`);
  const file = path.join(dir, 'my.cnf');
  fs.writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return file;
}

/** A private temporary folder for client credential files; remove it with `fs.rmSync(dir, {recursive})`. */
export function credentialsDir(parent: string): string {
  fs.mkdirSync(parent, { recursive: true });
  return fs.mkdtempSync(path.join(parent, 'slipway-db-'));
}
