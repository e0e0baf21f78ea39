import { UserError } from '@slipway/toolkit/errors';
import { tokenize } from '@slipway/toolkit/flags';
import type { Slot } from './haproxy';

/**
 * The remote argv of `ssh-runtime: release-dir` (no Docker on the host), pure so each is
 * unit-tested: where a release lives, how its venv is built, how its gunicorn starts and stops,
 * how `current` moves. Every argv goes through `shellQuote` in the ssh client; the scripts
 * below are constants that take their values as positional arguments, never spliced in.
 *
 * Layout under <remote-dir>/<app>:
 *   releases/<release-id>/        the commit's files (git archive), .venv/, gunicorn.log
 *   env/<release-id>.env          the release's environment, 0600, from stdin
 *   shared/<dir>                  `shared-dirs`, linked into every release
 *   <slot>.pid                    the gunicorn master serving (or starting on) that slot
 *   current -> releases/<id>      moved atomically (rename(2)) once traffic has moved
 *   current.json                  release id, slot, commit: what serves now
 */
export interface ReleaseLayout {
  /** <remote-dir>/<app> */
  dir: string;
  /** The folder holding manage.py, relative to the repository root ('' for the root). */
  projectDir: string;
}

export type Dependencies =
  { kind: 'requirements'; files: string[] } | { kind: 'uv'; dir: string } | { kind: 'pyproject'; requirements: string[] };

export interface GunicornSpec {
  wsgiApp: string;
  args: string[];
  settingsModule?: string;
}

export const releaseDir = (l: ReleaseLayout, id: string): string => `${l.dir}/releases/${id}`;
export const appDir = (l: ReleaseLayout, id: string): string => (l.projectDir ? `${releaseDir(l, id)}/${l.projectDir}` : releaseDir(l, id));
export const venvDir = (l: ReleaseLayout, id: string): string => `${releaseDir(l, id)}/.venv`;
export const envFilePath = (l: ReleaseLayout, id: string): string => `${l.dir}/env/${id}.env`;
export const pidFile = (l: ReleaseLayout, slot: Slot): string => `${l.dir}/${slot}.pid`;
export const logFile = (l: ReleaseLayout, id: string): string => `${releaseDir(l, id)}/gunicorn.log`;

/** Inside a release, relative to the repository root. */
const inRelease = (l: ReleaseLayout, id: string, rel: string): string => `${releaseDir(l, id)}/${rel}`;

export function unpackArgv(l: ReleaseLayout, id: string): string[] {
  return ['tar', '-x', '-z', '-f', '-', '-C', releaseDir(l, id)];
}

export function venvArgv(l: ReleaseLayout, id: string, python: string): string[] {
  return [python, '-m', 'venv', venvDir(l, id)];
}

/** Installs the release's dependencies into its venv (`python -m venv` made it; uv sync fills it). */
export function installArgv(l: ReleaseLayout, id: string, deps: Dependencies, python: string): string[] {
  const pip = [`${venvDir(l, id)}/bin/python`, '-m', 'pip', 'install', '--disable-pip-version-check', '--no-input'];
  switch (deps.kind) {
    case 'requirements':
      return [...pip, ...deps.files.flatMap((f) => ['-r', inRelease(l, id, f)])];
    case 'pyproject':
      return [...pip, ...deps.requirements];
    case 'uv':
      return [
        'env',
        `UV_PROJECT_ENVIRONMENT=${venvDir(l, id)}`,
        'UV_PYTHON_DOWNLOADS=never',
        'uv',
        'sync',
        '--locked',
        '--no-dev',
        '--python',
        python,
        '--directory',
        deps.dir ? inRelease(l, id, deps.dir) : releaseDir(l, id),
      ];
  }
}

/**
 * Runs `argv` in the release's project folder with the release's environment: the env file is
 * read by Python (Docker env-file lines, KEY=value, the value taken as it is) and handed over
 * with execve, so no value is on a command line or parsed by a shell. Variables already set
 * (PORT, DJANGO_SETTINGS_MODULE) are defaults the file may override.
 */
export const ENV_LOADER = [
  'import os, sys',
  'env = dict(os.environ)',
  'with open(sys.argv[1], encoding="utf-8") as f:',
  '    for line in f.read().splitlines():',
  '        if line and not line.startswith("#") and "=" in line:',
  '            k, v = line.split("=", 1)',
  '            env[k] = v',
  'os.chdir(sys.argv[2])',
  'os.execvpe(sys.argv[3], sys.argv[3:], env)',
].join('\n');

export function withEnvArgv(l: ReleaseLayout, id: string, defaults: Record<string, string>, argv: string[]): string[] {
  const vars = Object.entries(defaults).map(([k, v]) => `${k}=${v}`);
  return ['env', ...vars, `${venvDir(l, id)}/bin/python`, '-c', ENV_LOADER, envFilePath(l, id), appDir(l, id), ...argv];
}

export function manageArgv(l: ReleaseLayout, id: string, settingsModule: string | undefined, args: string[]): string[] {
  const defaults: Record<string, string> = settingsModule ? { DJANGO_SETTINGS_MODULE: settingsModule } : {};
  return withEnvArgv(l, id, defaults, [`${venvDir(l, id)}/bin/python`, 'manage.py', ...args]);
}

/**
 * The release's venv Python with `args`, as manageArgv runs manage.py (env file read on the
 * host, project folder, DJANGO_SETTINGS_MODULE), its pid written to `pidFile` first: every exec
 * after it keeps that pid, so the process can be stopped by it (the migrate helper on a timeout).
 */
export function releasePythonArgv(
  l: ReleaseLayout,
  id: string,
  settingsModule: string | undefined,
  args: string[],
  pidFile: string,
): string[] {
  const defaults: Record<string, string> = { PYTHONUNBUFFERED: '1' };
  if (settingsModule) defaults.DJANGO_SETTINGS_MODULE = settingsModule;
  return [
    'sh',
    '-c',
    'echo "$$" >"$1" || exit 70; shift; exec "$@"',
    'slipway-python',
    pidFile,
    ...withEnvArgv(l, id, defaults, [`${venvDir(l, id)}/bin/python`, ...args]),
  ];
}

/** TERM to the process whose pid `releasePythonArgv` wrote, then the pidfile goes. */
export function killPidArgv(pidFile: string): string[] {
  return [
    'sh',
    '-c',
    'pid=$(cat "$1" 2>/dev/null); case "$pid" in ""|*[!0-9]*) ;; *) kill -TERM "$pid" 2>/dev/null;; esac; rm -f "$1"',
    'slipway-kill',
    pidFile,
  ];
}

/** Flags of `gunicorn-args` the action sets itself. */
const OWN_FLAGS = /^(-b|--bind|-D|--daemon|-p|--pid|--chdir|--error-logfile|--log-file)(=|$)|^-[bp].+/;

export function checkGunicornArgs(args: string[]): string[] {
  const own = args.find((a) => OWN_FLAGS.test(a));
  if (own) {
    throw new UserError(
      `Input \`gunicorn-args\` must not set ${own.split('=')[0]}: the action binds the slot's port, daemonizes with a pidfile and logs to the release.`,
    );
  }
  return args;
}

/** Starts the release's gunicorn as a daemon on the slot's loopback port, its pid in the slot's pidfile. */
export function gunicornArgv(l: ReleaseLayout, id: string, slot: Slot, port: number, g: GunicornSpec): string[] {
  const defaults: Record<string, string> = { PORT: String(port) };
  if (g.settingsModule) defaults.DJANGO_SETTINGS_MODULE = g.settingsModule;
  return withEnvArgv(l, id, defaults, [
    `${venvDir(l, id)}/bin/gunicorn`,
    g.wsgiApp,
    '--bind',
    `127.0.0.1:${port}`,
    '--chdir',
    appDir(l, id),
    '--daemon',
    '--pid',
    pidFile(l, slot),
    '--error-logfile',
    logFile(l, id),
    ...g.args,
  ]);
}

/**
 * Stops the gunicorn whose master is in the pidfile ($1): TERM (gunicorn's graceful stop: workers
 * finish their requests), wait up to $2 seconds, then KILL the whole process group (gunicorn's
 * daemon is a session leader). A zombie counts as gone. Prints `stopped`, `killed` or `none`.
 */
export const STOP_SCRIPT = [
  'pid=$(cat "$1" 2>/dev/null)',
  'case "$pid" in ""|*[!0-9]*) rm -f "$1"; echo none; exit 0;; esac',
  'alive() { st=$(sed "s/.*) //" /proc/$pid/stat 2>/dev/null | cut -c1); [ -n "$st" ] && [ "$st" != Z ]; }',
  'if ! alive; then rm -f "$1"; echo none; exit 0; fi',
  'kill -TERM "$pid" 2>/dev/null',
  'n=0',
  'while alive; do',
  '  n=$((n + 1))',
  '  if [ "$n" -gt $(($2 * 5)) ]; then kill -KILL -"$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null; rm -f "$1"; echo killed; exit 0; fi',
  '  sleep 0.2',
  'done',
  'rm -f "$1"',
  'echo stopped',
].join('\n');

export function stopArgv(l: ReleaseLayout, slot: Slot, graceSec: number): string[] {
  return ['sh', '-c', STOP_SCRIPT, 'slipway-stop', pidFile(l, slot), String(Math.max(1, Math.ceil(graceSec)))];
}

/** `current` -> releases/<id>, replaced by rename(2): a reader sees the old link or the new one. */
export function switchLinkArgv(l: ReleaseLayout, id: string): string[][] {
  return [
    ['ln', '-s', '-f', '-n', `releases/${id}`, `${l.dir}/current.new`],
    ['mv', '-T', '-f', `${l.dir}/current.new`, `${l.dir}/current`],
  ];
}

/** Links `shared/<d>` into the release (made if missing; what the commit had there is replaced). */
export function sharedLinkArgv(l: ReleaseLayout, id: string, dirs: string[]): string[][] {
  return dirs.flatMap((d) => [
    ['mkdir', '-p', `${l.dir}/shared/${d}`],
    ['rm', '-rf', `${appDir(l, id)}/${d}`],
    ['ln', '-s', '-n', `${l.dir}/shared/${d}`, `${appDir(l, id)}/${d}`],
  ]);
}

/** The release's env file, linked as .env in the project folder (for apps that read one). */
export function envLinkArgv(l: ReleaseLayout, id: string): string[] {
  return ['ln', '-s', '-f', '-n', envFilePath(l, id), `${appDir(l, id)}/.env`];
}

const RELEASE_NAME = /^[0-9]{8}-[0-9]{6}-[0-9a-z]{1,7}-[0-9a-f]{3}$/;

/**
 * Inside a release dir from its creation until it is recorded as serving: a dir that still has it
 * and is not serving was left by a deploy that died (SSH cut, runner killed) before cleaning up.
 */
export const UNFINISHED_MARK = '.slipway-unfinished';
export const unfinishedMark = (l: ReleaseLayout, id: string): string => `${releaseDir(l, id)}/${UNFINISHED_MARK}`;

/** Lists `<dir>/releases/<id>/.slipway-unfinished` (one path a line). */
export function unfinishedArgv(l: ReleaseLayout): string[] {
  return ['find', `${l.dir}/releases`, '-mindepth', '2', '-maxdepth', '2', '-name', UNFINISHED_MARK];
}

/**
 * The release dirs to remove: all but the newest `keep`, never the serving one (ids sort by time).
 * `unfinished` ones (never served) are removed and do not count: they would push a good release out.
 */
export function releasesToPrune(names: string[], keep: number, serving: string | undefined, unfinished: string[] = []): string[] {
  const ids = names.filter((n) => RELEASE_NAME.test(n) && n !== serving).sort((a, b) => b.localeCompare(a));
  const dead = ids.filter((n) => unfinished.includes(n));
  return [...dead, ...ids.filter((n) => !dead.includes(n)).slice(Math.max(0, keep - (serving ? 1 : 0)))];
}

/** A `shared-dirs` entry: a relative path of plain names. */
export function checkSharedDir(value: string): string {
  const d = value.replace(/\/+$/, '');
  if (!/^[A-Za-z0-9_][A-Za-z0-9._-]*(\/[A-Za-z0-9_][A-Za-z0-9._-]*)*$/.test(d) || d.split('/').some((p) => p === '..' || p === '.')) {
    throw new UserError(`Input \`shared-dirs\`: ${JSON.stringify(value)} must be a relative path of letters, digits, . _ - (e.g. media).`);
  }
  return d;
}

/**
 * `restart-commands`: one command a line, split into argv like a shell would split it (quotes,
 * backslashes) but never run by one: `systemctl restart celery` runs systemctl, and `;`, `$(…)`
 * or `>` are plain characters of an argument.
 */
export function parseRestartCommands(text: string): string[][] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => tokenize(line, 'restart-commands'))
    .filter((argv) => argv.length > 0);
}

/** gunicorn's app: module[:callable]. */
export function checkWsgiApp(value: string): string {
  if (!/^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*(:[A-Za-z_][\w]*(\(\))?)?$/.test(value)) {
    throw new UserError(
      `Input \`wsgi-app\` must be module[:callable] (e.g. shop.wsgi or shop.wsgi:application); got ${JSON.stringify(value)}.`,
    );
  }
  return value;
}

export function checkRemotePython(value: string): string {
  if (!/^[A-Za-z0-9._/+-]+$/.test(value) || value.startsWith('-')) {
    throw new UserError(`Input \`remote-python\` must be a program name or absolute path (e.g. python3.12); got ${JSON.stringify(value)}.`);
  }
  return value;
}
