import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as core from '@actions/core';
import { HttpClient } from '@actions/http-client';
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
 * uv: on PATH, else in the tool cache, else its wheel straight from the package index (PEP 691
 * JSON, sha256 checked, unpacked with Python's stdlib zipfile: ~1 s), else `pip install
 * --target` with the given Python's pip (~5-7 s; for indexes without the JSON API). uv is one
 * static binary, so no bootstrap venv is needed.
 */
export function ensureUv(python: string): Promise<string> {
  uvPromise.p ??= (async () => {
    const onPath = which('uv');
    if (onPath) return onPath;
    const dir = toolDir('uv');
    const bin = path.join(dir, 'bin', 'uv');
    if (fs.existsSync(path.join(dir, '.complete'))) return bin;
    fs.rmSync(dir, { recursive: true, force: true });
    if (
      await fetchUvWheel(python, dir).catch(
        (e: Error) => void core.info(`Fetching the uv wheel directly failed (${e.message}); using pip.`),
      )
    ) {
      fs.writeFileSync(path.join(dir, '.complete'), '');
      return bin;
    }
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

const WHEEL_PLATFORM: Record<string, RegExp> = {
  'linux-x64': /manylinux.*x86_64/,
  'linux-arm64': /manylinux.*aarch64/,
  'darwin-x64': /macosx.*x86_64/,
  'darwin-arm64': /macosx.*arm64/,
};

/** The index pip would use first (PIP_INDEX_URL, else PyPI); private indexes keep working. */
function indexUrl(): string {
  return (process.env.UV_DEFAULT_INDEX || process.env.PIP_INDEX_URL || 'https://pypi.org/simple').replace(/\/+$/, '');
}

async function fetchUvWheel(python: string, dir: string): Promise<boolean> {
  const platform = WHEEL_PLATFORM[`${process.platform}-${process.arch}`];
  if (!platform) return false;
  const http = new HttpClient('slipway-setup-django');
  const res = await http.get(`${indexUrl()}/uv/`, { Accept: 'application/vnd.pypi.simple.v1+json' });
  const type = String(res.message.headers['content-type'] ?? '');
  if (res.message.statusCode !== 200 || !type.includes('json')) {
    res.message.resume();
    return false;
  }
  const page = JSON.parse(await res.readBody()) as { files: { filename: string; url: string; hashes: { sha256?: string } }[] };
  const prefix = `uv-${TOOL_VERSIONS.uv}-py3-none-`;
  const file = page.files.find((f) => f.filename.startsWith(prefix) && f.filename.endsWith('.whl') && platform.test(f.filename));
  if (!file?.hashes.sha256) return false;
  const url = new URL(file.url, `${indexUrl()}/uv/`).toString();
  const wheel = await http.get(url);
  const body = await wheel.readBodyBuffer!();
  if (wheel.message.statusCode !== 200) throw new Error(`HTTP ${wheel.message.statusCode} for ${file.filename}`);
  const digest = createHash('sha256').update(body).digest('hex');
  if (digest !== file.hashes.sha256) throw new Error(`sha256 mismatch for ${file.filename}`);
  fs.mkdirSync(dir, { recursive: true });
  const wheelPath = path.join(dir, file.filename);
  fs.writeFileSync(wheelPath, body);
  core.info(`Fetched ${file.filename} (sha256 ${digest.slice(0, 12)}…)`);
  const unpacked = path.join(dir, 'wheel');
  await execTool(python, ['-m', 'zipfile', '-e', wheelPath, unpacked], { quiet: true, label: 'Unpacking uv' });
  fs.mkdirSync(path.join(dir, 'bin'));
  const scripts = path.join(unpacked, `uv-${TOOL_VERSIONS.uv}.data`, 'scripts');
  for (const name of fs.readdirSync(scripts)) {
    fs.renameSync(path.join(scripts, name), path.join(dir, 'bin', name));
    fs.chmodSync(path.join(dir, 'bin', name), 0o755);
  }
  fs.rmSync(unpacked, { recursive: true, force: true });
  fs.rmSync(wheelPath);
  return fs.existsSync(path.join(dir, 'bin', 'uv'));
}
