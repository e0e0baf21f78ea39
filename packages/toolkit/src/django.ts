import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from './errors';
import { execTool } from './exec';
import { maskSecret } from './secrets';

/** Directories never searched for manage.py: environments, caches, dependencies. */
const SKIP_DIRS = new Set([
  '.git',
  '.hg',
  'node_modules',
  '.venv',
  'venv',
  'env',
  '.env',
  '.tox',
  '.nox',
  '__pycache__',
  'site-packages',
  '.mypy_cache',
  '.pytest_cache',
  '.ruff_cache',
  'build',
  'dist',
  'staticfiles',
  '.direnv',
  '.cache',
]);
const MAX_DEPTH = 4;

/**
 * Finds the project's manage.py: in `workingDirectory` when given, else at the workspace root,
 * else by a shallow search. Several candidates are an error listing them.
 */
export function findManagePy(root: string, workingDirectory?: string): string {
  if (workingDirectory) {
    const dir = path.resolve(root, workingDirectory);
    const file = path.join(dir, 'manage.py');
    if (!fs.existsSync(file)) {
      throw new UserError(
        `No manage.py in \`working-directory\` (${path.relative(root, dir) || '.'}): point it at the folder that holds manage.py.`,
      );
    }
    return file;
  }
  const atRoot = path.join(root, 'manage.py');
  if (fs.existsSync(atRoot)) return atRoot;
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isFile() && e.name === 'manage.py') found.push(path.join(dir, e.name));
    }
    if (depth >= MAX_DEPTH) return;
    for (const e of entries) {
      if (e.isDirectory() && !SKIP_DIRS.has(e.name) && !e.name.startsWith('.')) walk(path.join(dir, e.name), depth + 1);
    }
  };
  walk(root, 1);
  if (found.length === 1) return found[0]!;
  if (found.length === 0) {
    throw new UserError(
      'No manage.py found in the workspace: check out the Django project first, or set `working-directory` to the folder that holds manage.py.',
    );
  }
  const list = found
    .map((f) => path.relative(root, f))
    .sort()
    .join(', ');
  throw new UserError(`Several manage.py files found (${list}): set \`working-directory\` to the one to use.`);
}

/** The DJANGO_SETTINGS_MODULE default that manage.py sets, if it sets one. */
export function settingsModuleFromManagePy(text: string): string | undefined {
  const m = /DJANGO_SETTINGS_MODULE["']\s*,\s*["']([A-Za-z_][\w.]*)["']/.exec(text);
  return m?.[1];
}

export interface DatabaseSettings {
  alias: string;
  engine: string;
  /** postgresql | mysql | sqlite | oracle | other, from the engine's module name. */
  vendor: string;
  name: string;
  user: string;
  password: string;
  host: string;
  port: string;
  options: Record<string, unknown>;
  testName: string | null;
}

export interface DjangoInfo {
  djangoVersion: string;
  databases: DatabaseSettings[];
  installedApps: string[];
  staticfilesStorage: string;
  staticRoot: string | null;
  wsgiApplication: string | null;
  asgiApplication: string | null;
  debug: boolean;
}

/**
 * Asks Django itself: settings resolved exactly as the project's settings module resolves them
 * (DATABASE_URL, separate variables, local files, anything), after django.setup().
 * Prints one JSON line; a failure to import reports Django's own first error line.
 */
const INSPECT_SCRIPT = String.raw`
import json, sys, traceback
def first_line(exc):
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()
    return text[-1] if text else type(exc).__name__
try:
    import django
except Exception as exc:
    print(json.dumps({"error": "import-django", "message": first_line(exc)})); sys.exit(0)
try:
    from django.conf import settings
    django.setup()
    dbs = []
    for alias, db in settings.DATABASES.items():
        engine = db.get("ENGINE", "")
        dbs.append({
            "alias": alias, "engine": engine,
            "vendor": next((v for v in ("postgresql", "postgis", "mysql", "sqlite3", "spatialite", "oracle") if v in engine), "other"),
            "name": str(db.get("NAME") or ""), "user": str(db.get("USER") or ""),
            "password": str(db.get("PASSWORD") or ""), "host": str(db.get("HOST") or ""),
            "port": str(db.get("PORT") or ""),
            "options": {k: v for k, v in (db.get("OPTIONS") or {}).items() if isinstance(v, (str, int, float, bool))},
            "testName": (db.get("TEST") or {}).get("NAME"),
        })
    storages = getattr(settings, "STORAGES", {}) or {}
    static_storage = (storages.get("staticfiles") or {}).get("BACKEND") or getattr(settings, "STATICFILES_STORAGE", "")
    print(json.dumps({
        "djangoVersion": django.get_version(), "databases": dbs,
        "installedApps": list(settings.INSTALLED_APPS),
        "staticfilesStorage": static_storage,
        "staticRoot": str(settings.STATIC_ROOT) if getattr(settings, "STATIC_ROOT", None) else None,
        "wsgiApplication": getattr(settings, "WSGI_APPLICATION", None),
        "asgiApplication": getattr(settings, "ASGI_APPLICATION", None),
        "debug": bool(settings.DEBUG),
    }))
except Exception as exc:
    print(json.dumps({"error": "settings", "message": first_line(exc)}))
`;

const VENDORS: Record<string, string> = { postgis: 'postgresql', sqlite3: 'sqlite', spatialite: 'sqlite' };

export async function inspectDjango(opts: {
  python: string;
  projectDir: string;
  settingsModule: string;
  env?: Record<string, string>;
}): Promise<DjangoInfo> {
  const result = await execTool(opts.python, ['-c', INSPECT_SCRIPT], {
    cwd: opts.projectDir,
    env: { ...opts.env, DJANGO_SETTINGS_MODULE: opts.settingsModule, PYTHONPATH: pythonPath(opts.projectDir) },
    silent: true,
    quiet: true,
    label: 'Inspecting the Django project',
  });
  const line = result.stdout.trim().split('\n').pop() ?? '';
  let parsed: DjangoInfo & { error?: string; message?: string };
  try {
    parsed = JSON.parse(line) as typeof parsed;
  } catch {
    throw new UserError(`Could not inspect the Django project: ${line || result.stderr.trim().split('\n').pop() || 'no output'}`);
  }
  if (parsed.error === 'import-django') {
    throw new UserError(`Django is not installed in the environment (${parsed.message ?? ''}): add it to the project's dependencies.`);
  }
  if (parsed.error) {
    throw new UserError(`Settings module \`${opts.settingsModule}\` failed to load: ${parsed.message ?? ''}`);
  }
  for (const db of parsed.databases) {
    maskSecret(db.password);
    db.vendor = VENDORS[db.vendor] ?? db.vendor;
  }
  return parsed;
}

function pythonPath(projectDir: string): string {
  return [projectDir, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter);
}
