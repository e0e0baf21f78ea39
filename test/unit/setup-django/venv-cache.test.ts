import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readOrigin, relocateVenv, venvCacheKey, writeOrigin } from '@slipway/toolkit/venv-cache';

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-vc-'));
}

describe('venvCacheKey', () => {
  it('names os, arch, python, manager, installer and hashes files, extras, groups and venv place', () => {
    const root = tmp();
    fs.writeFileSync(path.join(root, 'requirements.txt'), 'django==5.2\n');
    const parts = {
      pythonVersion: '3.12.4',
      manager: 'requirements',
      installer: 'uv',
      files: [path.join(root, 'requirements.txt')],
      extras: [],
      groups: [],
      root,
      venv: path.join(root, '.venv'),
    };
    const { key, restoreKeys } = venvCacheKey(parts, 'Linux', 'X64');
    expect(key).toMatch(/^slipway-venv-v1-linux-x64-py3\.12\.4-requirements-uv-[0-9a-f]{32}$/);
    expect(restoreKeys).toEqual(['slipway-venv-v1-linux-x64-py3.12.4-requirements-uv-']);
    // Same content in another checkout: same key (paths are workspace-relative).
    const other = tmp();
    fs.writeFileSync(path.join(other, 'requirements.txt'), 'django==5.2\n');
    expect(
      venvCacheKey(
        { ...parts, root: other, files: [path.join(other, 'requirements.txt')], venv: path.join(other, '.venv') },
        'Linux',
        'X64',
      ).key,
    ).toBe(key);
    // Anything that changes the environment changes the key.
    expect(venvCacheKey({ ...parts, groups: ['dev'] }, 'Linux', 'X64').key).not.toBe(key);
    expect(venvCacheKey({ ...parts, pythonVersion: '3.12.5' }, 'Linux', 'X64').key).not.toBe(key);
    fs.appendFileSync(path.join(root, 'requirements.txt'), 'tblib\n');
    expect(venvCacheKey(parts, 'Linux', 'X64').key).not.toBe(key);
  });
});

describe('relocateVenv', () => {
  it('re-points interpreter links and rewrites old venv/workspace paths, without running anything', () => {
    const oldRoot = '/home/runner/work/shop/shop';
    const oldPy = '/opt/hostedtoolcache/Python/3.12.4/x64/bin/python3';
    const root = tmp();
    const venv = path.join(root, '.venv');
    const newPyDir = path.join(tmp(), 'bin');
    fs.mkdirSync(newPyDir);
    const sp = path.join(venv, 'lib', 'python3.12', 'site-packages');
    fs.mkdirSync(sp, { recursive: true });
    fs.mkdirSync(path.join(venv, 'bin'));
    fs.symlinkSync('/opt/hostedtoolcache/Python/3.12.4/x64/bin/python3.12', path.join(venv, 'bin', 'python'));
    fs.symlinkSync('python', path.join(venv, 'bin', 'python3'));
    fs.writeFileSync(path.join(venv, 'bin', 'gunicorn'), `#!${oldRoot}/.venv/bin/python\nimport gunicorn\n`, { mode: 0o755 });
    fs.writeFileSync(path.join(venv, 'pyvenv.cfg'), 'home = /opt/hostedtoolcache/Python/3.12.4/x64/bin\n');
    fs.writeFileSync(path.join(sp, '_shop.pth'), `${oldRoot}/src\n`);
    writeOrigin(venv, { venv: `${oldRoot}/.venv`, root: oldRoot, python: oldPy, pythonVersion: '3.12.4' });

    const newPy = path.join(newPyDir, 'python3');
    const changed = relocateVenv(venv, { venv, root, python: newPy, pythonVersion: '3.12.4' });
    expect(fs.readlinkSync(path.join(venv, 'bin', 'python'))).toBe(path.join(newPyDir, 'python3.12'));
    expect(fs.readlinkSync(path.join(venv, 'bin', 'python3'))).toBe('python');
    expect(fs.readFileSync(path.join(venv, 'bin', 'gunicorn'), 'utf8')).toBe(`#!${venv}/bin/python\nimport gunicorn\n`);
    expect(fs.statSync(path.join(venv, 'bin', 'gunicorn')).mode & 0o777).toBe(0o755);
    expect(fs.readFileSync(path.join(venv, 'pyvenv.cfg'), 'utf8')).toBe(`home = ${newPyDir}\n`);
    expect(fs.readFileSync(path.join(sp, '_shop.pth'), 'utf8')).toBe(`${root}/src\n`);
    expect(changed).toHaveLength(4);
    expect(readOrigin(venv)).toEqual({ venv, root, python: newPy, pythonVersion: '3.12.4' });
    // Already here: nothing to do.
    expect(relocateVenv(venv, { venv, root, python: newPy, pythonVersion: '3.12.4' })).toEqual([]);
  });
});
