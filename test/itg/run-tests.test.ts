import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseJUnit } from '@slipway/toolkit/junit';
import { copyProject, Job, REPO_ROOT } from '../harness/job';
import { preparedVenv, seedSetupDjango } from '../harness/python-env';

const req = (p: string): string => path.join(REPO_ROOT, p);
let venv = '';

beforeAll(() => {
  // A venv of run-tests' own (its marker requirements file makes it so): the action installs
  // pytest-xdist and tblib into it, and a test removes pytest-xdist to see it installed again.
  venv = preparedVenv([
    req('example/requirements.txt'),
    req('test/fixtures/failing-pytest/requirements.txt'),
    req('test/fixtures/run-tests-tools/requirements.txt'),
  ]);
});

function job(fixture: string, venv: string, settingsModule: string, env: Record<string, string> = {}): Job {
  const workspace = copyProject(fixture);
  const j = new Job({ workspace, env });
  seedSetupDjango(j, { venv, projectDir: workspace, settingsModule });
  return j;
}

describe("run-tests with Django's runner (failing-tests fixture)", () => {
  it('reports each outcome, annotates the failing line, retries the flaky test and fails the step', async () => {
    const j = job('test/fixtures/failing-tests', venv, 'mysite.settings');
    const marker = path.join(j.runnerTemp, 'flaky-marker');
    // Two processes: Django's parallel workers misreport decorator-skipped tests on Python 3.12
    // unless Slipway's runner keeps them in step.
    const step = await j.run('run-tests', { retries: '1', parallel: '2' }, { env: { SLIPWAY_FLAKY_MARKER: marker } });
    expect(step.exitCode).toBe(1);
    expect(step.outputs).toMatchObject({ passed: '2', failed: '1', errors: '1', skipped: '1' });
    expect(JSON.parse(step.outputs.flaky!)).toEqual(['checks.tests.FlakyTests.test_flaky']);
    const fail = step.annotations.find((a) => a.title?.includes('test_fails'));
    expect(fail).toMatchObject({ level: 'error', file: 'checks/tests.py', line: 26 });
    expect(step.failure).toBe('run-tests failed: 1 failed and 1 errored of 5 tests (see the annotations and the job summary).');
    expect(step.summary).toContain('Slowest tests');
  });
});

describe('run-tests with pytest', () => {
  it('shards by node id: two shards together run the whole suite once (pytest-project)', async () => {
    const seen: string[] = [];
    for (const k of [1, 2]) {
      const j = job('test/fixtures/pytest-project', venv, 'mysite.settings');
      const step = await j.run('run-tests', { shard: `${k}/2`, parallel: '1' });
      expect(step.failure).toBeUndefined();
      const mine = ids(step, `${k}/2`);
      expect(mine.every((id) => /^tests\/test_\w+\.py::test_\w+(\[.*\])?$/.test(id))).toBe(true);
      expect(mine.length).toBeGreaterThanOrEqual(3); // 7 tests by a stable hash: 4 and 3
      expect(Number(step.outputs.passed)).toBe(mine.length);
      seen.push(...mine);
    }
    expect(seen).toHaveLength(7); // six test functions, one parametrised twice
    expect(new Set(seen).size).toBe(7);
  });

  it('detects pytest-django, installs pytest-xdist for parallel, annotates the assert line and reports the flaky test', async () => {
    execFileSync(path.join(venv, 'bin', 'python'), ['-m', 'pip', 'uninstall', '-y', '-q', 'pytest-xdist'], { stdio: 'ignore' });
    const j = job('test/fixtures/failing-pytest', venv, 'mysite.settings');
    const marker = path.join(j.runnerTemp, 'flaky-marker');
    const step = await j.run('run-tests', { retries: '2', parallel: '2' }, { env: { SLIPWAY_FLAKY_MARKER: marker } });
    expect(step.log).toContain('pytest-django is configured in pytest.ini');
    expect(step.log).toMatch(/Installing into the project's environment: pytest-xdist/);
    expect(step.log).toMatch(/-n 2/);
    expect(step.exitCode).toBe(1);
    expect(step.outputs).toMatchObject({ passed: '2', failed: '1', errors: '1', skipped: '1' });
    expect(JSON.parse(step.outputs.flaky!)).toEqual(['tests/test_outcomes.py::test_flaky']);
    expect(step.annotations.find((a) => a.title?.includes('::test_fails'))).toMatchObject({ file: 'tests/test_outcomes.py', line: 27 });
    expect(step.annotations.find((a) => a.title?.includes('::test_errors'))).toMatchObject({ file: 'tests/test_outcomes.py', line: 32 });
    expect(step.summary).toContain('Flaky tests');
  });
});

const EXAMPLE_ENV = { DJANGO_SECRET_KEY: 'run-tests-itg-not-secret' };

function ids(step: { log: string }, shard: string): string[] {
  const lines = step.log.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`::group::Shard ${shard}: `));
  if (start < 0) throw new Error(`no shard listing for ${shard}`);
  const end = lines.indexOf('::endgroup::', start);
  return lines.slice(start + 2, end).filter(Boolean);
}

describe('run-tests on the example shop (Django runner)', () => {
  let fullCount = 0;
  let junit = '';

  it('runs the checks, collectstatic for the manifest storage, and the suite in parallel on SQLite', async () => {
    const j = job('example', venv, 'shop.settings', EXAMPLE_ENV);
    const step = await j.run('run-tests', { parallel: 'auto' });
    expect(step.failure).toBeUndefined();
    expect(step.exitCode).toBe(0);
    expect(step.log).toContain('needs a manifest: running collectstatic');
    expect(step.log).toMatch(/manage\.py makemigrations --check --dry-run/);
    expect(step.log).toMatch(/manage\.py check\b/);
    expect(step.log).toMatch(/--parallel 2/);
    fullCount = Number(step.outputs.passed);
    expect(fullCount).toBeGreaterThan(25);
    expect(step.outputs).toMatchObject({ failed: '0', errors: '0', flaky: '[]' });
    junit = step.outputs['junit-path']!;
    expect(fs.existsSync(junit)).toBe(true);
    expect(step.summary).toContain('Slowest tests');
  });

  it('splits into shards that together run every test exactly once, by hash and then by recorded timings', async () => {
    const inputs = { parallel: '1', 'check-migrations': 'false', 'system-check': 'false', collectstatic: 'false' };
    // Earlier timings for every test but one: that one is estimated at the average.
    const timings = Object.fromEntries(parseJUnit(fs.readFileSync(junit, 'utf8')).map((r) => [r.id, r.time]));
    delete timings['shop.tests.HealthzTests.test_ok'];
    const timingsFile = path.join(path.dirname(junit), 'earlier-timings.json');
    fs.writeFileSync(timingsFile, JSON.stringify(timings));
    for (const timingsPath of ['', timingsFile]) {
      const seen: string[] = [];
      for (const k of [1, 2, 3]) {
        const j = job('example', venv, 'shop.settings', EXAMPLE_ENV);
        const step = await j.run('run-tests', { ...inputs, shard: `${k}/3`, 'timings-path': timingsPath });
        expect(step.exitCode).toBe(0);
        expect(step.log).toContain(timingsPath ? `(${fullCount - 1} known, 1 at the average)` : 'split by a stable hash');
        const mine = ids(step, `${k}/3`);
        expect(Number(step.outputs.total)).toBe(mine.length);
        seen.push(...mine);
      }
      expect(seen).toHaveLength(fullCount);
      expect(new Set(seen).size).toBe(fullCount);
    }
  });
});

describe.each([
  ['PostgreSQL', 'postgres://postgres@127.0.0.1:5432/slipway_run_tests_pg', 'test_slipway_run_tests_pg'],
  ['MariaDB', 'mysql://root@127.0.0.1:3306/slipway_run_tests_my', 'test_slipway_run_tests_my'],
])('the example suite on %s', (_, url, testDb) => {
  it('runs two shards at once, each with 2 processes, on test databases of their own', async () => {
    const inputs = { parallel: '2', 'check-migrations': 'false', 'system-check': 'false', collectstatic: 'false' };
    const steps = await Promise.all(
      [1, 2].map((k) =>
        job('example', venv, 'shop.settings', { ...EXAMPLE_ENV, DATABASE_URL: url }).run('run-tests', { ...inputs, shard: `${k}/2` }),
      ),
    );
    const names: string[] = [];
    for (const step of steps) {
      expect(step.failure).toBeUndefined();
      expect(step.outputs).toMatchObject({ failed: '0', errors: '0' });
      const m = new RegExp(`Test database for \\S+: (${testDb}_s\\d[0-9a-f]{6})`).exec(step.log);
      expect(m).not.toBeNull();
      names.push(m![1]!);
    }
    expect(new Set(names).size).toBe(2);
    expect(steps.reduce((n, s) => n + Number(s.outputs.total), 0)).toBeGreaterThan(25);
  });
});

describe('coverage and the checks before the tests', () => {
  it('measures coverage across parallel processes and fails under the threshold', async () => {
    const j = job('example', venv, 'shop.settings', EXAMPLE_ENV);
    const step = await j.run('run-tests', { parallel: '2', coverage: 'true', 'coverage-fail-under': '99.9', collectstatic: 'false' });
    const total = Number(step.outputs.coverage);
    expect(total).toBeGreaterThan(60);
    expect(total).toBeLessThan(99.9);
    expect(step.failure).toBe(`run-tests failed: Coverage ${total.toFixed(2)}% is below \`coverage-fail-under\` (99.9%).`);
    expect(fs.readFileSync(step.outputs['coverage-path']!, 'utf8')).toMatch(/<coverage [^>]*line-rate=/);
    // Lines only the parallel workers run (a view's body) are measured too.
    const xml = fs.readFileSync(step.outputs['coverage-path']!, 'utf8');
    const views = /filename="orders\/views.py"[\s\S]*?<\/class>/.exec(xml)?.[0] ?? '';
    expect(views).toMatch(/<line number="10" hits="[1-9]/);
    expect(step.summary).toContain(`${total.toFixed(2)}%`);
  });

  it('fails on lint problems with annotations at their lines, before running tests', async () => {
    const j = job('test/fixtures/failing-tests', venv, 'mysite.settings');
    fs.writeFileSync(path.join(j.workspace, 'ruff.toml'), 'lint.select = ["F"]\n');
    fs.writeFileSync(path.join(j.workspace, 'checks', 'sloppy.py'), 'import os\n\n\ndef f():\n    return undefined_name\n');
    const step = await j.run('run-tests', { lint: 'ruff' });
    expect(step.failure).toBe('run-tests failed: ruff found 2 problems (annotated at their lines).');
    expect(step.annotations.filter((a) => a.file === 'checks/sloppy.py').map((a) => a.line)).toEqual([1, 5]);
    expect(step.log).not.toContain('manage.py test');
  });

  it('names the apps whose model changes have no migration', async () => {
    const j = job('test/fixtures/failing-tests', venv, 'mysite.settings');
    const models = path.join(j.workspace, 'checks', 'models.py');
    fs.appendFileSync(models, '\n\nclass Extra(models.Model):\n    note = models.TextField()\n');
    const step = await j.run('run-tests', {});
    expect(step.failure).toBe(
      'run-tests failed: Models have changes that are not in migrations (app checks): run `manage.py makemigrations` and commit the result.',
    );
  });
});

describe('bad input and empty suites', () => {
  it.each([
    [{ runner: 'nose' }, 'Input `runner` must be one of auto, django, pytest; got "nose".'],
    [{ shard: '4/3' }, 'Input `shard` must be k/n with 1 ≤ k ≤ n (for example 2/4); got "4/3".'],
    [{ args: '-k "open' }, 'Input `args` has an unterminated " quote.'],
    [{ retries: '-1' }, 'Input `retries` must be a whole number from 0 to 5; got "-1".'],
    [{ coverage: 'true', 'coverage-fail-under': '150' }, 'Input `coverage-fail-under` must be a number from 0 to 100; got "150".'],
  ])('%j fails with one line before running anything', async (inputs, message) => {
    const j = job('test/fixtures/failing-tests', venv, 'mysite.settings');
    const step = await j.run('run-tests', inputs);
    expect(step.exitCode).toBe(1);
    expect(step.failure).toBe(`run-tests failed: ${message}`);
    expect(step.log).not.toContain('[command]');
    expect(step.log).not.toMatch(/^\s+at /m);
  });

  it('treats a run that finds no tests as an error', async () => {
    const j = job('test/fixtures/failing-tests', venv, 'mysite.settings');
    const step = await j.run('run-tests', { args: '-k no_such_test', 'check-migrations': 'false', 'system-check': 'false' });
    expect(step.exitCode).toBe(1);
    expect(step.failure).toMatch(/^run-tests failed: No tests found \(django, args: -k no_such_test\)/);
  });
});

describe('coverage under pytest', () => {
  it('installs pytest-cov, combines the xdist workers and reports the total', async () => {
    execFileSync(path.join(venv, 'bin', 'python'), ['-m', 'pip', 'uninstall', '-y', '-q', 'pytest-cov'], { stdio: 'ignore' });
    const j = job('test/fixtures/pytest-project', venv, 'mysite.settings');
    const step = await j.run('run-tests', { parallel: '2', coverage: 'true', 'coverage-fail-under': '50' });
    expect(step.failure).toBeUndefined();
    expect(step.log).toMatch(/Installing into the project's environment: pytest-cov/);
    expect(Number(step.outputs.coverage)).toBeGreaterThan(50);
    const xml = fs.readFileSync(step.outputs['coverage-path']!, 'utf8');
    // The view's body runs only inside the xdist workers.
    const views = /filename="inventory\/views.py"[\s\S]*?<\/class>/.exec(xml)?.[0] ?? '';
    expect(views).toMatch(/<line number="7" hits="[1-9]/);
  });
});
