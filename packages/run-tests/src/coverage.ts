import * as path from 'node:path';
import { UserError } from '@slipway/toolkit/errors';
import { execTool } from '@slipway/toolkit/exec';

/**
 * coverage.py after the run: Django's runner ran under `coverage run --parallel-mode
 * --concurrency=multiprocessing` (one data file per process, combined here); pytest-cov has
 * already combined its xdist workers. Then the XML report and the total.
 */
export async function measureCoverage(
  python: string,
  projectDir: string,
  env: Record<string, string>,
  work: string,
): Promise<{ total: number; xmlPath: string }> {
  const opts = { cwd: projectDir, env, label: 'Coverage report' };
  await execTool(python, ['-m', 'coverage', 'combine', '--keep', '-q'], { ...opts, allowFailure: true });
  const xmlPath = path.join(work, 'coverage.xml');
  await execTool(python, ['-m', 'coverage', 'xml', '-q', '-o', xmlPath], opts);
  const { stdout } = await execTool(python, ['-m', 'coverage', 'report', '--format=total', '--precision=2'], { ...opts, silent: true });
  const total = Number(stdout.trim().split('\n').pop());
  if (!Number.isFinite(total)) throw new UserError(`coverage report printed no total: ${stdout.trim().slice(0, 200)}`);
  return { total, xmlPath };
}
