/**
 * django-ci.yml run by a real workflow runner, nektos/act, in host mode, against the example app:
 * twice, with act's built-in cache server, so setup-django's cache save (post step) and restore
 * happen for real (second run: cache-hit true).
 *
 * How the workflow runs here, unedited (only `$default-branch` is filled in, as GitHub does):
 * - `slipway-dev/slipway/actions/*@v1` → act's --local-repository maps the repository at v1 to a
 *   folder holding what a release tag holds (actions/, dist/, action.yml), copied from this tree.
 * - `actions/checkout@v6` → act itself skips a checkout of the repository under test: it has
 *   already copied the working tree into the job's workspace (act's documented behaviour;
 *   --no-skip-checkout would fetch the action, which cannot be fetched here).
 * - `services: postgres` → act does not start service containers in host mode; the machine's
 *   own PostgreSQL on 127.0.0.1:5432 (trust auth) plays the service: this test creates the
 *   database the service would (django_ci).
 * - JavaScript actions run on the `node` first on PATH: Node 24, as on GitHub's runners.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE24, REPO_ROOT } from '../harness/job';

const RUN_TIMEOUT_MS = 240_000;

/** act's folder: SLIPWAY_TOOLS_BIN, else what scripts/test-env/up.sh tools installs (it prints the folder). */
function toolsBin(): string {
  if (process.env.SLIPWAY_TOOLS_BIN) return process.env.SLIPWAY_TOOLS_BIN;
  const out = execFileSync('bash', [path.join(REPO_ROOT, 'scripts', 'test-env', 'up.sh'), 'tools'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 900_000,
  });
  return out.trim().split('\n').pop()!;
}

interface ActRun {
  code: number;
  log: string;
  /** `::set-output::` values by name, in order (later steps win). */
  outputs: Record<string, string>;
}

describe('django-ci.yml under nektos/act', () => {
  let tmp: string;
  let act: string;
  let workspace: string;
  let slipwayRelease: string;
  let cacheDir: string;
  const runs: ActRun[] = [];

  function runAct(): ActRun {
    const args = [
      'push',
      '-W',
      '.github/workflows/django-ci.yml',
      '-P',
      'ubuntu-latest=-self-hosted',
      '--local-repository',
      `slipway-dev/slipway@v1=${slipwayRelease}`,
      '--cache-server-addr',
      '127.0.0.1',
      '--cache-server-path',
      cacheDir,
      '--artifact-server-addr',
      '127.0.0.1',
      // One job of the matrix: the others differ only in their Python and shard.
      '--matrix',
      'python-version:3.12',
      '--matrix',
      'shard:1/2',
    ];
    const r = spawnSync(act, args, {
      cwd: workspace,
      encoding: 'utf8',
      timeout: RUN_TIMEOUT_MS,
      env: {
        ...process.env,
        PATH: [path.dirname(NODE24), process.env.PATH].join(path.delimiter),
        UV_PYTHON_DOWNLOADS: 'never',
        // act keeps each run's workspace copy and tool cache under the user cache folder: in
        // the test's own folder, they go when the test ends.
        XDG_CACHE_HOME: path.join(tmp, 'xdg-cache'),
      },
    });
    const log = `${r.stdout}${r.stderr}`;
    const outputs: Record<string, string> = {};
    for (const m of log.matchAll(/::set-output:: ([\w-]+)=(.*)$/gm)) outputs[m[1]!] = m[2]!.trim();
    return { code: r.status ?? -1, log, outputs };
  }

  beforeAll(() => {
    act = path.join(toolsBin(), 'act');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-act-'));
    cacheDir = path.join(tmp, 'cache');
    slipwayRelease = path.join(tmp, 'slipway-v1');
    for (const part of ['actions', 'dist', 'action.yml']) {
      fs.cpSync(path.join(REPO_ROOT, part), path.join(slipwayRelease, part), { recursive: true });
    }
    workspace = path.join(tmp, 'shop');
    fs.cpSync(path.join(REPO_ROOT, 'example'), workspace, { recursive: true });
    const template = fs.readFileSync(path.join(REPO_ROOT, 'workflow-templates', 'django-ci.yml'), 'utf8');
    fs.mkdirSync(path.join(workspace, '.github', 'workflows'), { recursive: true });
    fs.writeFileSync(path.join(workspace, '.github', 'workflows', 'django-ci.yml'), template.replaceAll('$default-branch', 'main'));
    const git = (...a: string[]): void => {
      execFileSync('git', ['-c', 'user.name=Slipway test', '-c', 'user.email=test@slipway.invalid', ...a], {
        cwd: workspace,
        stdio: 'pipe',
      });
    };
    git('init', '-q', '-b', 'main');
    git('add', '-A');
    git('commit', '-q', '-m', 'shop');
    // What the postgres service container would have created (POSTGRES_DB).
    const exists = execFileSync(
      'psql',
      ['-h', '127.0.0.1', '-U', 'postgres', '-tAc', "SELECT 1 FROM pg_database WHERE datname = 'django_ci'"],
      {
        encoding: 'utf8',
      },
    );
    if (exists.trim() !== '1')
      execFileSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-c', 'CREATE DATABASE django_ci'], { stdio: 'pipe' });
    runs.push(runAct());
    if (runs[0]!.code === 0) runs.push(runAct());
  });

  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const tail = (run: ActRun | undefined): string => (run ? run.log.split('\n').slice(-60).join('\n') : 'no run');

  it('first run: the job succeeds, tests run, the virtualenv is cached by setup-django’s post step', () => {
    const run = runs[0]!;
    expect(run.code, tail(run)).toBe(0);
    expect(run.log).toMatch(/Success - Main actions\/checkout@v6/);
    expect(run.log).toMatch(/Success - Main slipway-dev\/slipway\/actions\/setup-django@v1/);
    expect(run.log).toMatch(/Success - Main slipway-dev\/slipway\/actions\/run-tests@v1/);
    expect(run.log).toMatch(/Success - Post slipway-dev\/slipway\/actions\/setup-django@v1/);
    expect(run.log).toMatch(/Job succeeded/);
    expect(run.outputs['cache-hit']).toBe('false');
    expect(run.outputs['python-version']).toMatch(/^3\.12\./);
    expect(Number(run.outputs.passed)).toBeGreaterThan(0);
    expect(run.outputs.failed).toBe('0');
    expect(fs.readdirSync(cacheDir).length, 'act cache server stored something').toBeGreaterThan(0);
  });

  it('second run: setup-django restores the exact cache (cache-hit true)', () => {
    const run = runs[1];
    expect(run, 'second run (only after a green first run)').toBeDefined();
    expect(run!.code, tail(run)).toBe(0);
    expect(run!.outputs['cache-hit']).toBe('true');
    expect(run!.outputs['cache-key']).toBe(runs[0]!.outputs['cache-key']);
  });
});
