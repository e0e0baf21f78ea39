import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as cache from '@actions/cache';
import * as core from '@actions/core';

/**
 * The ready virtualenv in the Actions cache. The key names everything that decides the
 * environment's content, so an exact hit needs no installer at all:
 *
 *   slipway-venv-v1-<os>-<arch>-py<X.Y.Z>-<manager>-<installer>-<sha256 of the dependency files,
 *   their paths, the extras and groups chosen, and where the venv lives>
 *
 * The restore key is that without the hash: after a dependency bump the last environment of the
 * same Python and manager comes back and the installer only adds the difference.
 */
export interface VenvKeyParts {
  pythonVersion: string;
  manager: string;
  installer: string;
  /** Absolute paths of the dependency files. */
  files: string[];
  extras: string[];
  groups: string[];
  /** The workspace the paths are taken relative to. */
  root: string;
  venv: string;
}

export const KEY_VERSION = 'v1';

export function venvCacheKey(
  parts: VenvKeyParts,
  platform = process.env.RUNNER_OS || process.platform,
  arch = process.env.RUNNER_ARCH || process.arch,
): { key: string; restoreKeys: string[] } {
  const prefix =
    `slipway-venv-${KEY_VERSION}-${platform}-${arch}-py${parts.pythonVersion}-${parts.manager}-${parts.installer}-`.toLowerCase();
  const hash = createHash('sha256');
  for (const file of [...parts.files].sort()) {
    hash.update(`${path.relative(parts.root, file)}\0`);
    hash.update(fs.readFileSync(file));
    hash.update('\0');
  }
  hash.update(
    `extras=${[...parts.extras].sort().join(',')}\0groups=${[...parts.groups].sort().join(',')}\0venv=${path.relative(parts.root, parts.venv)}`,
  );
  return { key: `${prefix}${hash.digest('hex').slice(0, 32)}`, restoreKeys: [prefix] };
}

/**
 * The cache API takes paths as given into its version hash, so it gets the venv relative to
 * the working directory (the workspace on a runner): the same checkout restores the same entry.
 */
export function cachePath(venv: string): string {
  return path.relative(process.cwd(), venv) || '.';
}

export interface RestoreResult {
  /** The key restored from, if any. */
  matchedKey?: string;
  exactHit: boolean;
}

/** Restores the venv; an unreachable or unconfigured cache service is a warning, never a failure. */
export async function restoreVenv(venv: string, key: string, restoreKeys: string[]): Promise<RestoreResult> {
  if (!cache.isFeatureAvailable()) {
    core.warning(
      'The Actions cache service is not available to this step (no ACTIONS_CACHE_URL / ACTIONS_RESULTS_URL): installing without a cache.',
    );
    return { exactHit: false };
  }
  try {
    const matchedKey = await cache.restoreCache([cachePath(venv)], key, restoreKeys);
    return { matchedKey, exactHit: matchedKey === key };
  } catch (error) {
    core.warning(`Could not restore the virtualenv from the cache (${(error as Error).message}): installing without it.`);
    return { exactHit: false };
  }
}

/** Saves the venv under `key`; failures are warnings (a cache is an optimisation). */
export async function saveVenv(venv: string, key: string): Promise<boolean> {
  if (!cache.isFeatureAvailable()) return false;
  try {
    const id = await cache.saveCache([cachePath(venv)], key);
    return id !== -1;
  } catch (error) {
    core.warning(`Could not save the virtualenv to the cache (${(error as Error).message}).`);
    return false;
  }
}

/** What a venv records about where it was built, to relocate it when restored elsewhere. */
export interface VenvOrigin {
  venv: string;
  root: string;
  python: string;
  pythonVersion: string;
}

const ORIGIN = '.slipway-venv.json';

export function writeOrigin(venv: string, origin: VenvOrigin): void {
  fs.writeFileSync(path.join(venv, ORIGIN), `${JSON.stringify(origin)}\n`);
}

export function readOrigin(venv: string): VenvOrigin | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(venv, ORIGIN), 'utf8')) as VenvOrigin;
  } catch {
    return undefined;
  }
}

/**
 * Makes a venv restored from another place usable here without starting any process: points
 * its interpreter links and pyvenv.cfg at this runner's interpreter (same version, the key says
 * so), and rewrites the old venv and workspace paths in bin/ scripts and site-packages .pth and
 * editable-finder files. Returns what changed, for the log.
 */
export function relocateVenv(venv: string, here: VenvOrigin): string[] {
  const was = readOrigin(venv);
  if (!was) return [];
  const changed: string[] = [];
  const bin = path.join(venv, 'bin');
  if (was.python !== here.python) {
    // Links into the old interpreter's bin/ (python -> …/bin/python3.12) go to the same name in the new one.
    const oldBin = path.dirname(was.python);
    for (const name of fs.readdirSync(bin)) {
      const file = path.join(bin, name);
      if (!fs.lstatSync(file).isSymbolicLink()) continue;
      const target = fs.readlinkSync(file);
      if (target === was.python || path.dirname(target) === oldBin) {
        fs.rmSync(file);
        fs.symlinkSync(target === was.python ? here.python : path.join(path.dirname(here.python), path.basename(target)), file);
        changed.push(file);
      }
    }
    replaceIn(path.join(venv, 'pyvenv.cfg'), [[path.dirname(was.python), path.dirname(here.python)]], changed);
  }
  const pairs: [string, string][] = [];
  if (was.venv !== here.venv) pairs.push([was.venv, here.venv]);
  if (was.root !== here.root) pairs.push([was.root, here.root]);
  if (pairs.length) {
    for (const name of fs.readdirSync(bin)) replaceIn(path.join(bin, name), pairs, changed);
    for (const sp of sitePackages(venv)) {
      for (const name of fs.readdirSync(sp)) {
        if (name.endsWith('.pth') || /^__editable__.*\.py$/.test(name)) replaceIn(path.join(sp, name), pairs, changed);
      }
    }
  }
  writeOrigin(venv, here);
  return changed;
}

function sitePackages(venv: string): string[] {
  const lib = path.join(venv, 'lib');
  if (!fs.existsSync(lib)) return [];
  return fs
    .readdirSync(lib)
    .map((d) => path.join(lib, d, 'site-packages'))
    .filter((d) => fs.existsSync(d));
}

function replaceIn(file: string, pairs: [string, string][], changed: string[]): void {
  const stat = fs.lstatSync(file);
  if (!stat.isFile() || stat.size > 1024 * 1024) return;
  const buf = fs.readFileSync(file);
  if (buf.includes(0)) return; // binary
  let text = buf.toString('utf8');
  const before = text;
  for (const [from, to] of pairs) text = text.split(from).join(to);
  if (text !== before) {
    fs.writeFileSync(file, text, { mode: stat.mode });
    changed.push(file);
  }
}
