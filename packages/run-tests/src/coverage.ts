import * as fs from 'node:fs';
import * as path from 'node:path';
import * as core from '@actions/core';
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
  rcfile?: string,
): Promise<{ total: number; xmlPath: string }> {
  const opts = { cwd: projectDir, env, label: 'Coverage report' };
  const rc = rcfile ? [`--rcfile=${rcfile}`] : [];
  await execTool(python, ['-m', 'coverage', 'combine', '-q', ...rc], { ...opts, allowFailure: true });
  const xmlPath = path.join(work, 'coverage.xml');
  await execTool(python, ['-m', 'coverage', 'xml', '-q', ...rc, '-o', xmlPath], opts);
  const { stdout } = await execTool(python, ['-m', 'coverage', 'report', ...rc, '--format=total', '--precision=2'], {
    ...opts,
    silent: true,
  });
  const total = Number(stdout.trim().split('\n').pop());
  if (!Number.isFinite(total)) throw new UserError(`coverage report printed no total: ${stdout.trim().slice(0, 200)}`);
  return { total, xmlPath };
}

const PROJECT_CONFIGS: [string, RegExp][] = [
  ['.coveragerc', /./],
  ['setup.cfg', /^\s*\[coverage:run\]/m],
  ['tox.ini', /^\s*\[coverage:run\]/m],
  ['pyproject.toml', /^\s*\[tool\.coverage\.run\]/m],
];

/**
 * The `--rcfile` for Django's runner under coverage: the project's own coverage settings when it
 * has some (they must then ask for `concurrency = multiprocessing` to see parallel workers),
 * else one written here measuring the project folder, every process (multiprocessing needs its
 * settings in a file, not on the command line).
 */
export function coverageRcfile(projectDir: string, work: string, parallel: number): string | undefined {
  for (const [file, marker] of PROJECT_CONFIGS) {
    const full = path.join(projectDir, file);
    if (!fs.existsSync(full) || !marker.test(fs.readFileSync(full, 'utf8'))) continue;
    if (parallel > 1 && !/multiprocessing/.test(fs.readFileSync(full, 'utf8'))) {
      core.warning(
        `${file} sets up coverage without \`concurrency = multiprocessing\`: code run only in parallel test processes is not measured.`,
      );
    }
    return undefined;
  }
  const rc = path.join(work, 'coveragerc');
  const omit = ['*/site-packages/*', '*/.venv/*', '*/venv/*', '*/migrations/*'];
  fs.writeFileSync(
    rc,
    `[run]\nparallel = true\nconcurrency = multiprocessing,thread\nsource =\n    ${projectDir}\nomit =\n${omit.map((o) => `    ${o}`).join('\n')}\n\n[report]\nomit =\n${omit.map((o) => `    ${o}`).join('\n')}\n`,
  );
  return rc;
}
