import * as fs from 'node:fs';
import * as path from 'node:path';
import * as core from '@actions/core';
import { execTool } from '@slipway/toolkit/exec';
import { which } from '@slipway/toolkit/package-manager';
import { toolCacheDir } from '@slipway/toolkit/runner';

/**
 * The installers setup-django drives, from PyPI at pinned versions, kept in the runner's tool
 * cache so a self-hosted runner (or a later job on a warm machine) downloads each once.
 * A copy already on PATH is used as it is. None is needed on an exact cache hit.
 */
export const TOOL_VERSIONS = { uv: '0.13.9', poetry: '2.5.1', pipenv: '2026.10.3' } as const;
export type ToolName = keyof typeof TOOL_VERSIONS;

function toolDir(name: ToolName): string {
  return path.join(toolCacheDir(), 'slipway', name, TOOL_VERSIONS[name]);
}

const uvPromise: { p?: Promise<string> } = {};

/**
 * uv: on PATH, else in the tool cache, else `pip install --target` with the given Python's pip
 * (uv is one static binary; pip only fetches it, so no bootstrap venv is needed).
 */
export function ensureUv(python: string): Promise<string> {
  uvPromise.p ??= (async () => {
    const onPath = which('uv');
    if (onPath) return onPath;
    const dir = toolDir('uv');
    const bin = path.join(dir, 'bin', 'uv');
    if (fs.existsSync(path.join(dir, '.complete'))) return bin;
    fs.rmSync(dir, { recursive: true, force: true });
    await execTool(
      python,
      ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '--quiet', '--target', dir, `uv==${TOOL_VERSIONS.uv}`],
      { label: 'Installing uv' },
    );
    fs.writeFileSync(path.join(dir, '.complete'), '');
    return bin;
  })();
  return uvPromise.p;
}

/** poetry or pipenv in their own venv in the tool cache (made with uv when there is one). */
export async function ensurePythonTool(
  name: 'poetry' | 'pipenv',
  python: string,
  uv: string | undefined,
  env: Record<string, string>,
): Promise<string> {
  const onPath = which(name);
  if (onPath) return onPath;
  const dir = toolDir(name);
  const bin = path.join(dir, 'bin', name);
  if (fs.existsSync(path.join(dir, '.complete'))) return bin;
  fs.rmSync(dir, { recursive: true, force: true });
  const spec = `${name}==${TOOL_VERSIONS[name]}`;
  core.info(`Installing ${spec} into ${dir}`);
  if (uv) {
    await execTool(uv, ['venv', '--no-project', '--python', python, '--quiet', dir], { env, label: `Installing ${name}` });
    await execTool(uv, ['pip', 'install', '--python', path.join(dir, 'bin', 'python'), '--quiet', spec], {
      env,
      label: `Installing ${name}`,
    });
  } else {
    await execTool(python, ['-m', 'venv', dir], { label: `Installing ${name}` });
    await execTool(path.join(dir, 'bin', 'python'), ['-m', 'pip', 'install', '--disable-pip-version-check', '--quiet', spec], {
      label: `Installing ${name}`,
    });
  }
  fs.writeFileSync(path.join(dir, '.complete'), '');
  return bin;
}
