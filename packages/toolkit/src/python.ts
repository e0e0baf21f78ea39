import * as fs from 'node:fs';
import * as path from 'node:path';
import { execTool } from './exec';

const IS_WINDOWS = process.platform === 'win32';

/** The interpreter inside a virtualenv. */
export function venvPython(venv: string): string {
  return IS_WINDOWS ? path.join(venv, 'Scripts', 'python.exe') : path.join(venv, 'bin', 'python');
}

export function venvBin(venv: string): string {
  return path.join(venv, IS_WINDOWS ? 'Scripts' : 'bin');
}

export function isVenv(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'pyvenv.cfg')) && fs.existsSync(venvPython(dir));
}

/** `major.minor.micro` of an interpreter. */
export async function pythonVersionOf(python: string): Promise<string> {
  const { stdout } = await execTool(python, ['-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])'], {
    silent: true,
    quiet: true,
  });
  return stdout.trim();
}
