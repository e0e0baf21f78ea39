import * as os from 'node:os';
import { UserError } from '@slipway/toolkit/errors';
import { getArgs, getBoolean, getChoice, getInteger, getNumber, getShard, getString } from '@slipway/toolkit/inputs';
import type { Shard } from '@slipway/toolkit/parse';
import { DJANGO_RUNNER_MODULE } from './python/django-runner';
import { PYTEST_PLUGIN_MODULE } from './python/pytest-plugin';

export const RUNNERS = ['auto', 'django', 'pytest'] as const;
export const COLLECTSTATIC = ['auto', 'true', 'false'] as const;
export const LINTERS = ['none', 'ruff'] as const;
export const MAX_RETRIES = 5;

export type Runner = 'django' | 'pytest';

export interface Inputs {
  runner: (typeof RUNNERS)[number];
  args: string[];
  workingDirectory: string;
  /** Processes in this job; 1 is serial. */
  parallel: number;
  shard?: Shard;
  timingsKey: string;
  timingsPath: string;
  retries: number;
  coverage: boolean;
  coverageFailUnder?: number;
  checkMigrations: boolean;
  systemCheck: boolean;
  collectstatic: (typeof COLLECTSTATIC)[number];
  lint: (typeof LINTERS)[number];
  junitPath: string;
}

/** Every input, validated before anything runs. */
export function getInputs(cores = os.availableParallelism()): Inputs {
  const inputs: Inputs = {
    runner: getChoice('runner', RUNNERS, 'auto'),
    args: getArgs('args'),
    workingDirectory: getString('working-directory'),
    parallel: parseParallel(getString('parallel'), cores),
    shard: getShard('shard'),
    timingsKey: getString('timings-key') || 'slipway-test-timings',
    timingsPath: getString('timings-path'),
    retries: getInteger('retries', 0, { min: 0, max: MAX_RETRIES }),
    coverage: getBoolean('coverage', false),
    coverageFailUnder: getNumber('coverage-fail-under', { min: 0, max: 100 }),
    checkMigrations: getBoolean('check-migrations', true),
    systemCheck: getBoolean('system-check', true),
    collectstatic: getChoice('collectstatic', COLLECTSTATIC, 'auto'),
    lint: getChoice('lint', LINTERS, 'none'),
    junitPath: getString('junit-path'),
  };
  if (!/^[\w.-]+$/.test(inputs.timingsKey)) {
    throw new UserError(
      `Input \`timings-key\` may hold letters, digits, dots, dashes and underscores only; got ${JSON.stringify(inputs.timingsKey)}.`,
    );
  }
  if (inputs.coverageFailUnder !== undefined && !inputs.coverage) {
    throw new UserError('Input `coverage-fail-under` needs `coverage: true`.');
  }
  return inputs;
}

/** `auto` is one process per core; otherwise a whole number from 1 to 64. */
export function parseParallel(value: string, cores: number): number {
  if (value === '' || value === 'auto') return Math.max(1, cores);
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 64) {
    throw new UserError(`Input \`parallel\` must be auto or a whole number from 1 to 64; got ${JSON.stringify(value)}.`);
  }
  return Number(value);
}

export interface RunPlan {
  runner: Runner;
  parallel: number;
  junit: string;
  coverage: boolean;
  /** coverage.py settings written by Slipway, when the project has none. */
  coverageRc?: string;
  args: string[];
}

/** argv (after the venv's python) for one test run. Selection and reports go through env vars. */
export function testArgv(plan: RunPlan): string[] {
  if (plan.runner === 'django') {
    const rc = plan.coverageRc ? [`--rcfile=${plan.coverageRc}`] : [];
    const coverage = plan.coverage ? ['-m', 'coverage', 'run', '--parallel-mode', ...rc] : [];
    const parallel = plan.parallel > 1 ? ['--parallel', String(plan.parallel)] : [];
    return [
      ...coverage,
      'manage.py',
      'test',
      '--noinput',
      '--testrunner',
      `${DJANGO_RUNNER_MODULE}.SlipwayRunner`,
      ...parallel,
      ...plan.args,
    ];
  }
  const parallel = plan.parallel > 1 ? ['-n', String(plan.parallel)] : [];
  const coverage = plan.coverage ? ['--cov', '--cov-report='] : [];
  return ['-m', 'pytest', '-p', PYTEST_PLUGIN_MODULE, `--junitxml=${plan.junit}`, ...parallel, ...coverage, ...plan.args];
}

/** argv that makes the runner list the ids it would run (into SLIPWAY_COLLECT), running none. */
export function collectArgv(runner: Runner, args: string[]): string[] {
  if (runner === 'django') return ['manage.py', 'test', '--noinput', '--testrunner', `${DJANGO_RUNNER_MODULE}.SlipwayRunner`, ...args];
  return ['-m', 'pytest', '-p', PYTEST_PLUGIN_MODULE, '--collect-only', '-q', ...args];
}

/** makemigrations --check --dry-run, for the apps given or all. */
export function makemigrationsArgv(): string[] {
  return ['manage.py', 'makemigrations', '--check', '--dry-run', '--noinput'];
}

export function ruffArgv(): string[] {
  return ['-m', 'ruff', 'check', '--output-format=github', '.'];
}
