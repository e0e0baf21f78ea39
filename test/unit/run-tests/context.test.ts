import { afterEach, describe, expect, it } from 'vitest';
import { getInputs, testArgv } from '../../../packages/run-tests/src/context';

const DEFAULTS: Record<string, string> = {
  runner: 'auto',
  parallel: 'auto',
  'timings-key': 'slipway-test-timings',
  retries: '0',
  coverage: 'false',
  'check-migrations': 'true',
  'system-check': 'true',
  collectstatic: 'auto',
  lint: 'none',
};

function withInputs(inputs: Record<string, string>): void {
  for (const [name, value] of Object.entries({ ...DEFAULTS, ...inputs })) process.env[`INPUT_${name.toUpperCase()}`] = value;
}

afterEach(() => {
  for (const key of Object.keys(process.env)) if (key.startsWith('INPUT_')) delete process.env[key];
});

describe('getInputs', () => {
  it('reads the defaults', () => {
    withInputs({});
    expect(getInputs(2)).toMatchObject({
      runner: 'auto',
      args: [],
      parallel: 2,
      retries: 0,
      coverage: false,
      shard: undefined,
      lint: 'none',
    });
  });

  it.each([
    [{ parallel: '1' }, { parallel: 1 }],
    [{ parallel: '3' }, { parallel: 3 }],
    [{ shard: '2/4' }, { shard: { index: 2, total: 4 } }],
    [{ args: `-k "name with space" --tag=slow 'x y'` }, { args: ['-k', 'name with space', '--tag=slow', 'x y'] }],
    [
      { runner: 'pytest', retries: '2' },
      { runner: 'pytest', retries: 2 },
    ],
    [
      { coverage: 'true', 'coverage-fail-under': '87.5' },
      { coverage: true, coverageFailUnder: 87.5 },
    ],
  ])('%j', (inputs, expected) => {
    withInputs(inputs);
    expect(getInputs(2)).toMatchObject(expected);
  });

  it.each([
    [{ runner: 'nose' }, 'Input `runner` must be one of auto, django, pytest; got "nose".'],
    [{ shard: '0/3' }, 'Input `shard` must be k/n with 1 ≤ k ≤ n (for example 2/4); got "0/3".'],
    [{ shard: '4/3' }, 'Input `shard` must be k/n with 1 ≤ k ≤ n (for example 2/4); got "4/3".'],
    [{ shard: 'a/b' }, 'Input `shard` must be k/n with 1 ≤ k ≤ n (for example 2/4); got "a/b".'],
    [{ args: `-k "unterminated` }, 'Input `args` has an unterminated " quote.'],
    [{ args: 'tests\\' }, 'Input `args` ends with a lone backslash.'],
    [{ retries: '-1' }, 'Input `retries` must be a whole number from 0 to 5; got "-1".'],
    [{ retries: 'two' }, 'Input `retries` must be a whole number from 0 to 5; got "two".'],
    [{ coverage: 'true', 'coverage-fail-under': '101' }, 'Input `coverage-fail-under` must be a number from 0 to 100; got "101".'],
    [{ coverage: 'true', 'coverage-fail-under': '-5' }, 'Input `coverage-fail-under` must be a number from 0 to 100; got "-5".'],
    [{ 'coverage-fail-under': '80' }, 'Input `coverage-fail-under` needs `coverage: true`.'],
    [{ parallel: '0' }, 'Input `parallel` must be auto or a whole number from 1 to 64; got "0".'],
    [{ parallel: 'many' }, 'Input `parallel` must be auto or a whole number from 1 to 64; got "many".'],
    [{ lint: 'flake8' }, 'Input `lint` must be one of none, ruff; got "flake8".'],
    [{ collectstatic: 'yes' }, 'Input `collectstatic` must be one of auto, true, false; got "yes".'],
    [{ 'timings-key': 'a b' }, 'Input `timings-key` may hold letters, digits, dots, dashes and underscores only; got "a b".'],
  ])('rejects %j', (inputs, message) => {
    withInputs(inputs);
    expect(() => getInputs(2)).toThrow(message);
  });
});

describe('testArgv', () => {
  it.each([
    [
      { runner: 'django', parallel: 1, coverage: false, args: [] },
      ['manage.py', 'test', '--noinput', '--testrunner', 'slipway_django_runner.SlipwayRunner'],
    ],
    [
      { runner: 'django', parallel: 2, coverage: true, coverageRc: '/t/rc', args: ['--tag', 'fast'] },
      [
        '-m',
        'coverage',
        'run',
        '--parallel-mode',
        '--rcfile=/t/rc',
        'manage.py',
        'test',
        '--noinput',
        '--testrunner',
        'slipway_django_runner.SlipwayRunner',
        '--parallel',
        '2',
        '--tag',
        'fast',
      ],
    ],
    [
      { runner: 'pytest', parallel: 1, coverage: false, args: ['-x'] },
      ['-m', 'pytest', '-p', 'slipway_pytest', '--junitxml=/t/j.xml', '-x'],
    ],
    [
      { runner: 'pytest', parallel: 4, coverage: true, args: [] },
      ['-m', 'pytest', '-p', 'slipway_pytest', '--junitxml=/t/j.xml', '-n', '4', '--cov', '--cov-report='],
    ],
  ] as const)('%j', (plan, argv) => {
    expect(testArgv({ ...plan, args: [...plan.args], junit: '/t/j.xml' })).toEqual(argv);
  });
});
