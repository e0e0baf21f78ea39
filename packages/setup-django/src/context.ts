import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseDotenv } from '@slipway/toolkit/dotenv';
import { UserError } from '@slipway/toolkit/errors';
import { getBoolean, getChoice, getDuration, getList, getString } from '@slipway/toolkit/inputs';
import { parseVersionRequest, type WantedPython } from '@slipway/toolkit/python-version';
import { workspaceDir } from '@slipway/toolkit/runner';
import { parseService, type Service } from '@slipway/toolkit/wait-for';

export const PACKAGE_MANAGERS = ['auto', 'pip', 'uv', 'poetry', 'pipenv'] as const;
export const INSTALLERS = ['uv', 'pip'] as const;
export const CHECK_MODES = ['false', 'true', 'deploy'] as const;

export interface Inputs {
  pythonVersion?: WantedPython;
  workingDirectory: string;
  packageManager: (typeof PACKAGE_MANAGERS)[number];
  installer: (typeof INSTALLERS)[number];
  requirements: string[];
  extras: string[];
  groups: string[];
  systemPackages: string[];
  cache: boolean;
  settingsModule: string;
  /** The env-file's variables, parsed (empty without env-file). */
  envFile: Map<string, string>;
  envFilePath: string;
  secretKeys: string[];
  check: (typeof CHECK_MODES)[number];
  waitFor: Service[];
  waitTimeoutMs: number;
}

const APT_PACKAGE = /^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?(=[A-Za-z0-9.+:~-]+)?$/;
const MODULE = /^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Every input, validated (and the env-file read and parsed) before anything runs. */
export function getInputs(): Inputs {
  const root = workspaceDir();
  const version = getString('python-version');
  const systemPackages = getList('system-packages', { commas: true }).flatMap((p) => p.split(/\s+/));
  for (const p of systemPackages) {
    if (!APT_PACKAGE.test(p)) throw new UserError(`Input \`system-packages\`: \`${p}\` is not a Debian package name (e.g. libpq-dev).`);
  }
  const settingsModule = getString('settings-module');
  if (settingsModule && !MODULE.test(settingsModule)) {
    throw new UserError(`Input \`settings-module\`: \`${settingsModule}\` is not a dotted module path (e.g. mysite.settings).`);
  }
  const extras = getList('extras');
  const groups = getList('groups');
  for (const [input, list] of [
    ['extras', extras],
    ['groups', groups],
  ] as const) {
    const bad = list.find((n) => !NAME.test(n));
    if (bad) throw new UserError(`Input \`${input}\`: \`${bad}\` is not a valid name (letters, digits, . _ -).`);
  }
  const secretKeys = getList('secret-keys');
  const badKey = secretKeys.find((k) => !ENV_NAME.test(k));
  if (badKey) throw new UserError(`Input \`secret-keys\`: \`${badKey}\` is not a variable name.`);
  const envFilePath = getString('env-file');
  return {
    pythonVersion: version ? parseVersionRequest(version, 'Input `python-version`') : undefined,
    workingDirectory: getString('working-directory'),
    packageManager: getChoice('package-manager', PACKAGE_MANAGERS, 'auto'),
    installer: getChoice('installer', INSTALLERS, 'uv'),
    requirements: getList('requirements'),
    extras,
    groups,
    systemPackages,
    cache: getBoolean('cache', true),
    settingsModule,
    envFile: envFilePath ? readEnvFile(root, envFilePath) : new Map<string, string>(),
    envFilePath,
    secretKeys,
    check: getChoice('check', CHECK_MODES, 'false'),
    waitFor: getList('wait-for').map((url) => parseService(url)),
    waitTimeoutMs: getDuration('wait-timeout', 60_000),
  };
}

function readEnvFile(root: string, file: string): Map<string, string> {
  const full = path.resolve(root, file);
  if (!fs.existsSync(full)) throw new UserError(`Input \`env-file\`: ${file} does not exist.`);
  return parseDotenv(fs.readFileSync(full, 'utf8'), `env-file ${file}`);
}

/**
 * `apt-get` argv for system-packages (with sudo -n when not root). dpkg's lock is waited for
 * (a runner's own apt timers can hold it); the simulated install needs no root.
 */
export function aptArgv(
  packages: string[],
  isRoot: boolean,
): { update: [string, string[]]; simulate: [string, string[]]; install: [string, string[]] } {
  const wrap = (args: string[]): [string, string[]] => (isRoot ? ['apt-get', args] : ['sudo', ['-n', 'apt-get', ...args]]);
  const lock = ['-o', 'DPkg::Lock::Timeout=120'];
  return {
    update: wrap(['-q', ...lock, 'update']),
    simulate: ['apt-get', ['-q', '--simulate', 'install', '--no-install-recommends', ...packages]],
    install: wrap(['-q', ...lock, 'install', '-y', '--no-install-recommends', ...packages]),
  };
}

export interface CheckMessage {
  level: 'error' | 'warning' | 'notice';
  id: string;
  object: string;
  message: string;
}

/** Messages of `manage.py check` output (`obj: (app.E001) text` plus an optional `HINT:` line). */
export function parseCheckOutput(text: string): CheckMessage[] {
  const out: CheckMessage[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\S.*?): \(([\w.]+\.([CEWID])\d+)\) (.*)$/.exec(lines[i]!);
    if (!m) continue;
    const [, object, id, letter, message] = m as unknown as [string, string, string, string, string];
    const hint = /^\s+HINT: (.*)$/.exec(lines[i + 1] ?? '');
    const level = letter === 'C' || letter === 'E' ? 'error' : letter === 'W' ? 'warning' : 'notice';
    out.push({ level, id, object, message: hint ? `${message} Hint: ${hint[1]}` : message });
  }
  return out;
}

/**
 * Where a check message points in the project, for its annotation: a model (`app.Model[.field]`)
 * to the line in <app>/models.py, a project-wide message (`?`) to the settings file.
 */
export function checkLocation(object: string, projectDir: string, settingsModule: string): { file?: string; line?: number } {
  const read = (file: string): string | undefined => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined);
  if (object === '?') {
    const file = path.join(projectDir, ...settingsModule.split('.')) + '.py';
    return read(file) !== undefined ? { file } : {};
  }
  const [app, model, field] = object.split('.');
  if (!app || !model) return {};
  const file = path.join(projectDir, app, 'models.py');
  const text = read(file);
  if (text === undefined) return {};
  const lines = text.split('\n');
  const classLine = lines.findIndex((l) => new RegExp(`^class ${model}\\b`).test(l));
  if (classLine < 0) return { file };
  const fieldLine = field ? lines.findIndex((l, i) => i > classLine && new RegExp(`^\\s+${field}\\s*=`).test(l)) : -1;
  return { file, line: (fieldLine >= 0 ? fieldLine : classLine) + 1 };
}
