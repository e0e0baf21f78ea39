import * as fs from 'node:fs';
import * as path from 'node:path';
import { findManagePy, settingsModuleFromManagePy } from '@slipway/toolkit/django';
import { UserError } from '@slipway/toolkit/errors';
import { detectProject, type ProjectKind } from '@slipway/toolkit/package-manager';
import { readWantedPython } from '@slipway/toolkit/python-version';
import type { DatabaseVendor } from './workflows';

/**
 * What `init` learns about a Django project by reading its files (nothing is run or imported):
 * the same detection setup-django does at run time, so the workflow it writes agrees with it.
 */
export interface ProjectFacts {
  root: string;
  /** Folder holding manage.py, relative to root ('' for the root). */
  workingDirectory: string;
  settingsModule: string | undefined;
  /** As the project asks for it (e.g. `3.12`, `>=3.10`), and where that was read. */
  python: { text: string; source: string } | undefined;
  packageManager: ProjectKind | 'unknown';
  database: { vendor: DatabaseVendor; evidence: string };
  dockerfile: string | undefined;
  tests: { runner: 'pytest' | 'django'; files: number };
  defaultBranch: string | undefined;
}

export function inspectProject(root: string): ProjectFacts {
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) {
    throw new UserError(`No such folder: ${root}`);
  }
  let managePy: string;
  try {
    managePy = findManagePy(root);
  } catch (error) {
    if (error instanceof UserError && /No manage\.py/.test(error.message)) {
      throw new UserError(`No manage.py in ${root} or below it: run slipway init in a Django project (or pass --dir PATH).`);
    }
    throw error;
  }
  const projectDir = path.dirname(managePy);
  const dirs = ancestors(projectDir, root);
  const settingsModule = settingsModuleFromManagePy(fs.readFileSync(managePy, 'utf8'));
  const wanted = safe(() => readWantedPython(dirs));
  const project = safe(() => detectProject(dirs, 'auto', [], root));
  return {
    root,
    workingDirectory: path.relative(root, projectDir),
    settingsModule,
    python: wanted ? { text: wanted.text, source: path.relative(root, wanted.source) || wanted.source } : undefined,
    packageManager: project?.kind ?? 'unknown',
    database: detectDatabase(projectDir, dirs, settingsModule),
    dockerfile: ['Dockerfile', 'Containerfile']
      .flatMap((name) => dirs.map((d) => path.join(d, name)))
      .map((f) => (fs.existsSync(f) ? path.relative(root, f) : undefined))
      .find(Boolean),
    tests: detectTests(projectDir, dirs),
    defaultBranch: gitDefaultBranch(root),
  };
}

/** From the project's folder up to the root, nearest first. */
function ancestors(dir: string, root: string): string[] {
  const out = [dir];
  let d = dir;
  while (path.relative(root, d) && path.dirname(d) !== d) {
    d = path.dirname(d);
    out.push(d);
  }
  return out;
}

function safe<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

const ENGINE = /django\.(?:contrib\.gis\.)?db\.backends\.(postgresql|postgis|postgresql_psycopg2|mysql|sqlite3|spatialite)/;
const URL_SCHEME = /^\s*(?:export\s+)?DATABASE_URL\s*=\s*["']?(postgres(?:ql)?|postgis|pgsql|mysql2?|mysqlgis|sqlite|spatialite)/m;
const DRIVERS: [RegExp, DatabaseVendor][] = [
  [/^\s*(psycopg2?(?:-binary)?|psycopg\[[^\]]*\]|asyncpg)\b/im, 'postgresql'],
  [/^\s*["']?(psycopg2?(?:-binary)?|psycopg)\b/im, 'postgresql'],
  [/^\s*["']?(mysqlclient|pymysql)\b/im, 'mysql'],
];

function vendorOf(word: string): DatabaseVendor {
  if (/^(postgres|pgsql|postgis)/.test(word)) return 'postgresql';
  if (/^mysql/.test(word)) return 'mysql';
  return 'sqlite';
}

/**
 * The engine the settings use, by evidence in order: an ENGINE written in the settings, a
 * DATABASE_URL in an env file, a database driver in the dependencies; else SQLite (Django's
 * default). A literal sqlite ENGINE next to a server driver means "SQLite locally, the driver's
 * server in production": the server wins, so CI tests against what production runs.
 */
export function detectDatabase(
  projectDir: string,
  dirs: string[],
  settingsModule: string | undefined,
): { vendor: DatabaseVendor; evidence: string } {
  const settingsFiles = settingsModule ? settingsPaths(projectDir, settingsModule) : [];
  let sqliteSeen: string | undefined;
  for (const file of settingsFiles) {
    const m = ENGINE.exec(fs.readFileSync(file, 'utf8'));
    if (!m) continue;
    const vendor = vendorOf(m[1]!.replace('sqlite3', 'sqlite'));
    if (vendor !== 'sqlite') return { vendor, evidence: `ENGINE in ${path.relative(projectDir, file)}` };
    sqliteSeen ??= `ENGINE in ${path.relative(projectDir, file)}`;
  }
  for (const dir of dirs) {
    for (const name of ['.env', '.env.example', '.env.sample', '.env.template']) {
      const file = path.join(dir, name);
      if (!fs.existsSync(file)) continue;
      const m = URL_SCHEME.exec(fs.readFileSync(file, 'utf8'));
      if (m) return { vendor: vendorOf(m[1]!), evidence: `DATABASE_URL in ${name}` };
    }
  }
  for (const dir of dirs) {
    for (const name of dependencyFiles(dir)) {
      const text = fs.readFileSync(path.join(dir, name), 'utf8');
      for (const [re, vendor] of DRIVERS) {
        const m = re.exec(text);
        if (m) return { vendor, evidence: `${m[1]} in ${path.relative(projectDir, path.join(dir, name)) || name}` };
      }
    }
  }
  return { vendor: 'sqlite', evidence: sqliteSeen ?? "Django's default (no other engine found)" };
}

function dependencyFiles(dir: string): string[] {
  const names: string[] = [];
  for (const n of ['requirements.txt', 'requirements-dev.txt', 'pyproject.toml', 'Pipfile']) {
    if (fs.existsSync(path.join(dir, n))) names.push(n);
  }
  const reqDir = path.join(dir, 'requirements');
  if (fs.existsSync(reqDir) && fs.statSync(reqDir).isDirectory()) {
    for (const f of fs.readdirSync(reqDir).sort()) if (f.endsWith('.txt')) names.push(path.join('requirements', f));
  }
  return names;
}

/** shop.settings → shop/settings.py, or every .py in a shop/settings/ package. */
function settingsPaths(projectDir: string, module: string): string[] {
  const base = path.join(projectDir, ...module.split('.'));
  if (fs.existsSync(`${base}.py`)) return [`${base}.py`];
  if (fs.existsSync(base) && fs.statSync(base).isDirectory()) {
    return fs
      .readdirSync(base)
      .filter((f) => f.endsWith('.py'))
      .sort()
      .map((f) => path.join(base, f));
  }
  return [];
}

function detectTests(projectDir: string, dirs: string[]): { runner: 'pytest' | 'django'; files: number } {
  const pytest = dirs.some((d) => {
    if (fs.existsSync(path.join(d, 'pytest.ini')) || fs.existsSync(path.join(d, 'conftest.py'))) return true;
    const cfg = ['pyproject.toml', 'setup.cfg', 'tox.ini'].map((n) => path.join(d, n)).filter((f) => fs.existsSync(f));
    return cfg.some((f) => /\[(tool\.pytest\.ini_options|tool:pytest|pytest)\]/.test(fs.readFileSync(f, 'utf8')));
  });
  let files = 0;
  const walk = (dir: string, depth: number): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) {
        if (depth < 5 && !entry.name.startsWith('.') && !SKIP.has(entry.name)) walk(path.join(dir, entry.name), depth + 1);
      } else if (/^(tests?\.py|test_.*\.py|.*_tests?\.py)$/.test(entry.name)) {
        files++;
      }
    }
  };
  walk(projectDir, 0);
  return { runner: pytest ? 'pytest' : 'django', files };
}

const SKIP = new Set(['node_modules', 'venv', 'env', '__pycache__', 'site-packages', 'staticfiles', 'build', 'dist']);

/** origin's HEAD branch, else the branch checked out; undefined outside git. Read from files only. */
function gitDefaultBranch(root: string): string | undefined {
  const git = path.join(root, '.git');
  if (!fs.existsSync(git) || !fs.statSync(git).isDirectory()) return undefined;
  const originHead = path.join(git, 'refs', 'remotes', 'origin', 'HEAD');
  const head = fs.existsSync(originHead) ? originHead : path.join(git, 'HEAD');
  const m = /^ref: refs\/(?:remotes\/origin|heads)\/(\S+)/.exec(fs.readFileSync(head, 'utf8'));
  return m?.[1];
}
