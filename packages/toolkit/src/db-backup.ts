import * as fs from 'node:fs';
import * as path from 'node:path';
import { credentialsDir, mysqlOptionFile, pgEnv, requireClient } from './db-clients';
import type { DatabaseSettings } from './django';
import { UserError } from './errors';
import { execTool } from './exec';
import { runnerTemp } from './runner';

/**
 * Database backups with the vendors' own tools, credentials in 0600 files or env (never argv):
 * PostgreSQL `pg_dump -Fc`, MySQL/MariaDB `mysqldump --single-transaction`, SQLite an online
 * copy through Python's sqlite3 backup API. And the way back, for rollback.
 */

export interface Backup {
  file: string;
  vendor: string;
  tool: string;
  bytes: number;
}

const SQLITE_COPY = `import sqlite3, sys
src = sqlite3.connect(sys.argv[1]); dst = sqlite3.connect(sys.argv[2])
with dst: src.backup(dst)
dst.close(); src.close()`;

/** Fails with one line unless `dir` exists (or can be made) and is writable. */
export function ensureWritableDir(dir: string, inputName: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.accessSync(dir, fs.constants.W_OK);
    const probe = path.join(dir, `.slipway-probe-${process.pid}`);
    fs.writeFileSync(probe, '');
    fs.rmSync(probe);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new UserError(`Input \`${inputName}\` (${dir}) is not a writable folder (${code}): choose a folder the job can write.`);
  }
}

export function backupFileName(db: DatabaseSettings, when = new Date()): string {
  const stamp = when
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const base = path.basename(db.name).replace(/[^\w.-]+/g, '_') || db.alias;
  const ext = db.vendor === 'postgresql' ? 'dump' : db.vendor === 'mysql' ? 'sql' : 'sqlite3';
  return `${base}-${stamp}.${ext}`;
}

/** Checks the client tools a backup of `db` needs, before anything runs. */
export function requireBackupTools(db: DatabaseSettings): void {
  if (db.vendor === 'postgresql') requireClient('pg_dump', 'the backup of a PostgreSQL database');
  else if (db.vendor === 'mysql') requireClient('mysqldump', 'the backup of a MySQL/MariaDB database');
  else if (db.vendor !== 'sqlite') throw new UserError(`No backup method for the ${db.engine} backend: set \`backup: false\`.`);
}

export async function backupDatabase(db: DatabaseSettings, opts: { dir: string; python: string; file?: string }): Promise<Backup> {
  const file = path.resolve(opts.file ?? path.join(opts.dir, backupFileName(db)));
  const creds = credentialsDir(runnerTemp());
  const partial = `${file}.partial`;
  try {
    let tool: string;
    if (db.vendor === 'postgresql') {
      tool = 'pg_dump';
      await execTool(requireClient('pg_dump', 'the backup'), ['--format=custom', '--no-password', `--file=${partial}`], {
        env: pgEnv(db, creds),
        label: 'Backing up the PostgreSQL database',
      });
    } else if (db.vendor === 'mysql') {
      tool = 'mysqldump';
      const out = fs.openSync(partial, 'w', 0o600);
      fs.closeSync(out);
      await execTool(
        requireClient('mysqldump', 'the backup'),
        [
          `--defaults-extra-file=${mysqlOptionFile(db, creds)}`,
          '--single-transaction',
          '--routines',
          '--triggers',
          '--hex-blob',
          `--result-file=${partial}`,
          '--',
          db.name,
        ],
        { label: 'Backing up the MySQL database', silent: true },
      );
    } else if (db.vendor === 'sqlite') {
      tool = 'sqlite3 backup API';
      if (!fs.existsSync(db.name)) throw new UserError(`The SQLite database ${db.name} does not exist: nothing to back up.`);
      await execTool(opts.python, ['-c', SQLITE_COPY, db.name, partial], { label: 'Backing up the SQLite database' });
    } else {
      throw new UserError(`No backup method for the ${db.engine} backend: set \`backup: false\`.`);
    }
    fs.chmodSync(partial, 0o600);
    fs.renameSync(partial, file);
    return { file, vendor: db.vendor, tool, bytes: fs.statSync(file).size };
  } finally {
    fs.rmSync(partial, { force: true });
    fs.rmSync(creds, { recursive: true, force: true });
  }
}

/** Drops the tables, views and sequences of schema public, keeping the schema (its owner, ACL). */
const CLEAR_PUBLIC_SCHEMA = `DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT format('DROP %s IF EXISTS %I.%I CASCADE',
      CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
      n.nspname, c.relname) AS stmt
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
    ORDER BY c.relkind = 'S'
  LOOP EXECUTE r.stmt; END LOOP;
END $$;
`;

/**
 * Puts the database back to exactly the backup's content: tables the backup does not hold (made
 * by later migrations) are dropped first. PostgreSQL: the tables of schema public are dropped,
 * then pg_restore (other schemas and functions are left as they are); MySQL: every table is dropped, then the dump is fed to `mysql` on stdin;
 * SQLite: an online copy back.
 */
export async function restoreDatabase(db: DatabaseSettings, file: string, opts: { python: string }): Promise<void> {
  if (!fs.existsSync(file)) throw new UserError(`The backup ${file} does not exist.`);
  const creds = credentialsDir(runnerTemp());
  try {
    if (db.vendor === 'postgresql') {
      const env = pgEnv(db, creds);
      await execTool(requireClient('psql', 'restoring a PostgreSQL backup'), ['--no-password', '-v', 'ON_ERROR_STOP=1', '-q'], {
        env,
        input: CLEAR_PUBLIC_SCHEMA,
        label: 'Dropping the tables of the public schema',
      });
      await execTool(
        requireClient('pg_restore', 'restoring a PostgreSQL backup'),
        ['--no-password', '--no-owner', '--exit-on-error', '--single-transaction', `--dbname=${db.name}`, file],
        { env, label: 'Restoring the PostgreSQL backup' },
      );
    } else if (db.vendor === 'mysql') {
      const mysql = requireClient('mysql', 'restoring a MySQL backup');
      const options = mysqlOptionFile(db, creds);
      const tables = await execTool(mysql, [`--defaults-extra-file=${options}`, '-N', '-B', '-e', 'SHOW FULL TABLES', '--', db.name], {
        silent: true,
        label: 'Listing tables',
      });
      const drops = tables.stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => line.split('\t'))
        .map(([name, type]) => `DROP ${type === 'VIEW' ? 'VIEW' : 'TABLE'} IF EXISTS \`${name!.replace(/`/g, '``')}\`;`);
      const input = Buffer.concat([
        Buffer.from(`SET FOREIGN_KEY_CHECKS=0;\n${drops.join('\n')}\n`),
        fs.readFileSync(file),
        Buffer.from('\nSET FOREIGN_KEY_CHECKS=1;\n'),
      ]);
      await execTool(mysql, [`--defaults-extra-file=${options}`, '--', db.name], { input, label: 'Restoring the MySQL backup' });
    } else if (db.vendor === 'sqlite') {
      await execTool(opts.python, ['-c', SQLITE_COPY, file, db.name], { label: 'Restoring the SQLite backup' });
    } else {
      throw new UserError(`No restore method for the ${db.engine} backend.`);
    }
  } finally {
    fs.rmSync(creds, { recursive: true, force: true });
  }
}
