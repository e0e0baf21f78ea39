import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { UserError } from './errors';

/**
 * Which tool owns a project's dependencies, and the argv that installs them into a given
 * virtualenv. Detection looks in the folders from the project's own up to the workspace root
 * and takes the nearest folder holding any dependency file; in it, a lockfile wins over loose
 * requirements: uv.lock, poetry.lock, Pipfile(.lock), requirements*.txt, pyproject.toml [project].
 * Everything here is pure: the caller runs the argv with execTool.
 */
export type ProjectKind = 'uv' | 'poetry' | 'pipenv' | 'requirements' | 'pyproject';
export type ManagerChoice = 'auto' | 'pip' | 'uv' | 'poetry' | 'pipenv';
export type Installer = 'uv' | 'pip';

export interface DependencyProject {
  kind: ProjectKind;
  /** The folder holding the dependency files (the install runs there). */
  dir: string;
  /** Files whose content decides the environment (hashed into the cache key). */
  files: string[];
  /** requirements files to install (kind requirements). */
  requirements: string[];
}

const LOCKS: Record<'uv' | 'poetry' | 'pipenv', string> = { uv: 'uv.lock', poetry: 'poetry.lock', pipenv: 'Pipfile.lock' };
const LOCK_HINT: Record<'uv' | 'poetry' | 'pipenv', string> = { uv: 'uv lock', poetry: 'poetry lock', pipenv: 'pipenv lock' };

export function detectProject(dirs: string[], choice: ManagerChoice, requirementsInput: string[], root: string): DependencyProject {
  if (requirementsInput.length) {
    if (choice !== 'auto' && choice !== 'pip') {
      throw new UserError(`Input \`requirements\` works with \`package-manager\` auto or pip, not ${choice}.`);
    }
    const files = requirementsInput.map((f) => path.resolve(root, f));
    for (const f of files) {
      if (!fs.existsSync(f)) throw new UserError(`Input \`requirements\`: ${path.relative(root, f)} does not exist.`);
    }
    return { kind: 'requirements', dir: path.dirname(files[0]!), files: withIncludes(files), requirements: files };
  }
  const has = (dir: string, name: string): boolean => fs.existsSync(path.join(dir, name));
  if (choice === 'uv' || choice === 'poetry' || choice === 'pipenv') {
    const dir = dirs.find((d) => has(d, LOCKS[choice]));
    if (!dir) {
      throw new UserError(
        `\`package-manager: ${choice}\` needs ${LOCKS[choice]}, found none in ${dirs.map((d) => path.relative(root, d) || '.').join(', ')}: commit it (\`${LOCK_HINT[choice]}\`) or set \`package-manager\` to auto.`,
      );
    }
    return lockProject(choice, dir);
  }
  for (const dir of dirs) {
    if (choice === 'auto') {
      for (const kind of ['uv', 'poetry', 'pipenv'] as const) if (has(dir, LOCKS[kind])) return lockProject(kind, dir);
      if (has(dir, 'Pipfile')) {
        throw new UserError(
          `${path.relative(root, path.join(dir, 'Pipfile'))} has no Pipfile.lock beside it: commit one (\`pipenv lock\`).`,
        );
      }
    }
    const reqs = defaultRequirements(dir);
    if (reqs.length) return { kind: 'requirements', dir, files: withIncludes(reqs), requirements: reqs };
    const pyproject = path.join(dir, 'pyproject.toml');
    if (fs.existsSync(pyproject) && /^\s*\[project\]/m.test(fs.readFileSync(pyproject, 'utf8'))) {
      return { kind: 'pyproject', dir, files: [pyproject], requirements: [] };
    }
  }
  const where = dirs.map((d) => path.relative(root, d) || '.').join(', ');
  throw new UserError(
    `No dependency files found in ${where} (looked for uv.lock, poetry.lock, Pipfile.lock, requirements*.txt, pyproject.toml [project]): add one or set \`requirements\`.`,
  );
}

function lockProject(kind: 'uv' | 'poetry' | 'pipenv', dir: string): DependencyProject {
  const manifest = kind === 'pipenv' ? 'Pipfile' : 'pyproject.toml';
  const files = [path.join(dir, LOCKS[kind]), path.join(dir, manifest)].filter((f) => fs.existsSync(f));
  return { kind, dir, files, requirements: [] };
}

/**
 * requirements.txt plus requirements-dev.txt / requirements-test.txt beside it; else, in a
 * requirements/ folder, the first of test, ci, dev, local, base (those usually `-r base.txt`).
 */
export function defaultRequirements(dir: string): string[] {
  const main = path.join(dir, 'requirements.txt');
  if (fs.existsSync(main)) {
    const extra = ['requirements-dev.txt', 'requirements-test.txt'].map((n) => path.join(dir, n)).filter((f) => fs.existsSync(f));
    return [main, ...extra];
  }
  for (const name of ['test', 'ci', 'dev', 'local', 'base']) {
    const file = path.join(dir, 'requirements', `${name}.txt`);
    if (fs.existsSync(file)) return [file];
  }
  return [];
}

/** The files plus every file they include with -r / -c (followed recursively, each once). */
export function withIncludes(files: string[]): string[] {
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file) || !fs.existsSync(file)) return;
    seen.add(file);
    for (const line of fs.readFileSync(file, 'utf8').split(/\r?\n/)) {
      const m = /^\s*(?:-r|-c|--requirement|--constraint)[\s=]+(\S+)/.exec(line);
      if (m) visit(path.resolve(path.dirname(file), m[1]!));
    }
  };
  files.forEach(visit);
  return [...seen];
}

/**
 * The requirement lines of a PEP 621 project: [project].dependencies, the chosen
 * optional-dependencies extras, and PEP 735 [dependency-groups] (with include-group).
 */
export function pyprojectRequirements(tomlText: string, extras: string[], groups: string[], file = 'pyproject.toml'): string[] {
  const data = parseToml(tomlText) as {
    project?: { dependencies?: string[]; 'optional-dependencies'?: Record<string, string[]> };
    'dependency-groups'?: Record<string, (string | { 'include-group': string })[]>;
  };
  const out = [...(data.project?.dependencies ?? [])];
  const optional = data.project?.['optional-dependencies'] ?? {};
  for (const extra of extras) {
    const deps = optional[extra];
    if (!deps)
      throw new UserError(`Input \`extras\`: ${file} has no extra \`${extra}\` (has: ${Object.keys(optional).join(', ') || 'none'}).`);
    out.push(...deps);
  }
  const table = data['dependency-groups'] ?? {};
  const expand = (name: string, trail: string[]): string[] => {
    const group = table[name];
    if (!group)
      throw new UserError(
        `Input \`groups\`: ${file} has no dependency group \`${name}\` (has: ${Object.keys(table).join(', ') || 'none'}).`,
      );
    if (trail.includes(name)) throw new UserError(`${file}: dependency group \`${name}\` includes itself.`);
    return group.flatMap((item) => (typeof item === 'string' ? [item] : expand(item['include-group'], [...trail, name])));
  };
  for (const group of groups) out.push(...expand(group, []));
  return [...new Set(out)];
}

/** How to create the virtualenv: `uv venv` (fast, no pip inside) or the stdlib venv with pip. */
export function venvCreateArgv(installer: Installer, interpreter: string, venv: string, uv = 'uv'): [string, string[]] {
  return installer === 'uv'
    ? [uv, ['venv', '--no-project', '--python', interpreter, '--quiet', venv]]
    : [interpreter, ['-m', 'venv', venv]];
}

/** Installs requirements files into the venv whose interpreter is `venvPython`. */
export function requirementsInstallArgv(installer: Installer, venvPython: string, files: string[], uv = 'uv'): [string, string[]] {
  const reqs = files.flatMap((f) => ['-r', f]);
  return installer === 'uv'
    ? [uv, ['pip', 'install', '--python', venvPython, ...reqs]]
    : [venvPython, ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', ...reqs]];
}

/** `uv sync` into our venv (UV_PROJECT_ENVIRONMENT), exactly as locked. */
export function uvSyncArgv(interpreter: string, extras: string[], groups: string[]): string[] {
  return ['sync', '--locked', '--python', interpreter, ...extras.flatMap((e) => ['--extra', e]), ...groups.flatMap((g) => ['--group', g])];
}

/** `poetry install` into the active venv (VIRTUAL_ENV), the project itself left out. */
export function poetryInstallArgv(extras: string[], groups: string[]): string[] {
  return ['install', '--no-root', '--no-interaction', ...groups.flatMap((g) => ['--with', g]), ...extras.flatMap((e) => ['--extras', e])];
}

/** `pipenv requirements`: the lock as pinned requirement lines; `dev` selects [dev-packages]. */
export function pipenvRequirementsArgv(groups: string[]): string[] {
  const categories = groups.filter((g) => g !== 'dev');
  return [
    'requirements',
    ...(groups.includes('dev') ? ['--dev'] : []),
    ...(categories.length ? ['--categories', ['packages', ...categories].join(',')] : []),
  ];
}

/** A program on PATH, found without starting a process. */
export function which(name: string, pathVar = process.env.PATH ?? ''): string | undefined {
  for (const dir of pathVar.split(path.delimiter).filter(Boolean)) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * uv reads neither pip.conf nor PIP_* variables: carry the host's pip index settings over to
 * uv's variables, unless uv's own are set, so a private index configured for pip keeps working.
 * Extra indexes get pip's semantics (best version across indexes), as a pip user expects.
 */
export function uvIndexEnv(env: NodeJS.ProcessEnv, pipConfigTexts: string[]): Record<string, string> {
  const conf: Record<string, string> = {};
  for (const text of pipConfigTexts) Object.assign(conf, parsePipConf(text));
  const pick = (envName: string, key: string): string | undefined => env[envName] || conf[key];
  const out: Record<string, string> = {};
  const index = pick('PIP_INDEX_URL', 'index-url');
  const extra = pick('PIP_EXTRA_INDEX_URL', 'extra-index-url');
  const findLinks = pick('PIP_FIND_LINKS', 'find-links');
  const cert = pick('PIP_CERT', 'cert');
  if (index && !env.UV_INDEX_URL && !env.UV_DEFAULT_INDEX) out.UV_DEFAULT_INDEX = index;
  if (extra && !env.UV_EXTRA_INDEX_URL && !env.UV_INDEX) {
    out.UV_INDEX = extra.split(/\s+/).filter(Boolean).join(' ');
    if (!env.UV_INDEX_STRATEGY) out.UV_INDEX_STRATEGY = 'unsafe-best-match';
  }
  if (findLinks && !env.UV_FIND_LINKS) out.UV_FIND_LINKS = findLinks.split(/\s+/).filter(Boolean).join(',');
  // pip's CA bundle (a TLS-inspecting proxy's CA, typically) for uv, and for poetry/pipenv (requests).
  if (cert && !env.SSL_CERT_FILE) out.SSL_CERT_FILE = cert;
  if (cert && !env.REQUESTS_CA_BUNDLE) out.REQUESTS_CA_BUNDLE = cert;
  return out;
}

/** `[global]` and `[install]` keys of a pip.conf (install wins, as in pip). */
export function parsePipConf(text: string): Record<string, string> {
  const sections: Record<string, Record<string, string>> = {};
  let section = '';
  let lastKey = '';
  for (const raw of text.split(/\r?\n/)) {
    if (/^\s*[#;]/.test(raw) || !raw.trim()) continue;
    const head = /^\s*\[([^\]]+)\]/.exec(raw);
    if (head) {
      section = head[1]!.trim();
      continue;
    }
    const kv = /^([\w.-]+)\s*[=:]\s*(.*)$/.exec(raw);
    const target = (sections[section] ??= {});
    if (kv) {
      lastKey = kv[1]!;
      target[lastKey] = kv[2]!.trim();
    } else if (/^\s/.test(raw) && lastKey) {
      target[lastKey] = `${target[lastKey] ?? ''} ${raw.trim()}`.trim(); // continuation line
    }
  }
  return { ...sections.global, ...sections.install };
}
