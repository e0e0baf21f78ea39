import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from './errors';
import { execTool } from './exec';
import { pythonVersionOf } from './python';
import { satisfies, sortVersionsDesc, type WantedPython } from './python-version';
import { toolCacheDir } from './runner';

/**
 * Finds a CPython for a wanted version, cheapest place first: the hosted runner's tool cache
 * ($RUNNER_TOOL_CACHE/Python/<version>/<arch>, what actions/setup-python fills), pyenv's
 * versions folder (both name the full version in the folder, so no interpreter is started),
 * then `python3.X`/`python3` on PATH (started once each to ask its version), then uv's
 * managed Pythons (`uv python find`, then `uv python install`, which honours
 * UV_PYTHON_DOWNLOADS). Failing all, one line names the version and every place looked in.
 */
export interface Interpreter {
  path: string;
  version: string;
  /** tool-cache | pyenv | PATH | uv */
  source: string;
}

const ARCH: Record<string, string> = { x64: 'x64', arm64: 'arm64', ia32: 'x86' };

export function toolCachePythons(): { version: string; path: string }[] {
  const root = path.join(process.env.RUNNER_TOOL_CACHE || toolCacheDir(), 'Python');
  const arch = ARCH[process.arch] ?? process.arch;
  return listVersions(root)
    .map((version) => ({ version, path: path.join(root, version, arch, 'bin', 'python3') }))
    .filter((p) => fs.existsSync(p.path));
}

export function pyenvPythons(): { version: string; path: string }[] {
  const root = path.join(process.env.PYENV_ROOT || path.join(os.homedir(), '.pyenv'), 'versions');
  return listVersions(root)
    .map((version) => ({ version, path: path.join(root, version, 'bin', 'python3') }))
    .filter((p) => fs.existsSync(p.path));
}

function listVersions(dir: string): string[] {
  try {
    return sortVersionsDesc(fs.readdirSync(dir).filter((v) => /^\d+\.\d+\.\d+$/.test(v)));
  } catch {
    return [];
  }
}

/** `python3.N` and `python3` on PATH, skipping shims and virtualenvs (they are not base interpreters). */
export function pathPythons(pathVar = process.env.PATH ?? ''): string[] {
  const found: string[] = [];
  for (const dir of pathVar.split(path.delimiter).filter(Boolean)) {
    if (/shims/.test(dir) || fs.existsSync(path.join(dir, '..', 'pyvenv.cfg'))) continue;
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    const pythons = names.filter((n) => /^python3(\.\d+)?$/.test(n)).sort((a, b) => b.length - a.length || b.localeCompare(a));
    for (const name of pythons) found.push(path.join(dir, name));
  }
  return found;
}

export async function findInterpreter(wanted: WantedPython | undefined, uv: () => Promise<string | undefined>): Promise<Interpreter> {
  const specifier = wanted?.specifier ?? '>=3';
  const looked: string[] = [];
  for (const [source, list] of [
    ['tool-cache', toolCachePythons()],
    ['pyenv', pyenvPythons()],
  ] as const) {
    const match = list.find((p) => satisfies(p.version, specifier));
    if (match) return { path: match.path, version: match.version, source };
    looked.push(`${source} (${list.map((p) => p.version).join(', ') || 'none'})`);
  }
  const onPath: string[] = [];
  for (const candidate of pathPythons()) {
    const minor = /python(3\.\d+)$/.exec(candidate)?.[1];
    if (minor && wanted && !satisfiesMinor(minor, specifier)) continue;
    const version = await pythonVersionOf(candidate).catch(() => '');
    if (!version) continue;
    onPath.push(version);
    if (satisfies(version, specifier)) return { path: candidate, version, source: 'PATH' };
  }
  looked.push(`PATH (${[...new Set(onPath)].join(', ') || 'none'})`);
  const uvPath = await uv().catch(() => undefined);
  if (uvPath) {
    const request = specifier.replace(/^==(\d+\.\d+)\.\*$/, '$1');
    for (const args of [
      ['python', 'find', '--no-project', request],
      ['python', 'install', request],
    ]) {
      const result = await execTool(uvPath, args, { allowFailure: true, silent: args[1] === 'find', label: 'Finding Python with uv' });
      if (result.exitCode !== 0) continue;
      if (args[1] === 'install') {
        const again = await execTool(uvPath, ['python', 'find', '--no-project', request], {
          allowFailure: true,
          silent: true,
          quiet: true,
        });
        if (again.exitCode !== 0) break;
        result.stdout = again.stdout;
      }
      const python = result.stdout.trim().split('\n').pop() ?? '';
      const version = await pythonVersionOf(python).catch(() => '');
      if (version && satisfies(version, specifier)) return { path: python, version, source: 'uv' };
    }
    looked.push('uv managed Pythons (not found, install failed or downloads disabled)');
  } else {
    looked.push('uv managed Pythons (uv unavailable)');
  }
  const what = wanted ? `Python ${wanted.text} (from ${wanted.source})` : 'a Python 3 interpreter';
  const fix = wanted
    ? 'install it (e.g. actions/setup-python) or change the version asked for'
    : 'install Python 3 or set `python-version`';
  throw new UserError(`Could not find ${what}: looked in ${looked.join('; ')}. Fix: ${fix}.`);
}

/** Whether some X.Y.Z with this minor could satisfy the specifier (cheap pre-filter for PATH names). */
function satisfiesMinor(minor: string, specifier: string): boolean {
  for (let micro = 0; micro < 100; micro++) if (satisfies(`${minor}.${micro}`, specifier)) return true;
  return false;
}
