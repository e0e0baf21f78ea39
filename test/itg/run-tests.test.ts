import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { copyProject, Job, REPO_ROOT } from '../harness/job';
import { preparedVenv, seedSetupDjango } from '../harness/python-env';

const req = (p: string): string => path.join(REPO_ROOT, p);
let djangoVenv: string;
let pytestVenv = '';

beforeAll(() => {
  djangoVenv = preparedVenv([req('example/requirements.txt')]);
  // Its own venv (own marker file): the parallel test removes pytest-xdist from it to see the action install it.
  pytestVenv = preparedVenv([
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
    const j = job('test/fixtures/failing-tests', djangoVenv, 'mysite.settings');
    const marker = path.join(j.runnerTemp, 'flaky-marker');
    const step = await j.run('run-tests', { retries: '1', parallel: '1' }, { env: { SLIPWAY_FLAKY_MARKER: marker } });
    console.log(step.log);
    expect(step.exitCode).toBe(1);
    expect(step.outputs).toMatchObject({ passed: '2', failed: '1', errors: '1', skipped: '1' });
    expect(JSON.parse(step.outputs.flaky!)).toEqual(['checks.tests.FlakyTests.test_flaky']);
    const fail = step.annotations.find((a) => a.title?.includes('test_fails'));
    expect(fail).toMatchObject({ level: 'error', file: 'checks/tests.py', line: 26 });
    expect(step.failure).toBe('run-tests failed: 1 failed and 1 errored of 5 tests (see the annotations and the job summary).');
    expect(step.summary).toContain('Slowest tests');
  });
});

describe('run-tests with pytest (failing-pytest fixture)', () => {
  it('detects pytest-django, installs pytest-xdist for parallel, annotates the assert line and reports the flaky test', async () => {
    execFileSync(path.join(pytestVenv, 'bin', 'python'), ['-m', 'pip', 'uninstall', '-y', '-q', 'pytest-xdist'], { stdio: 'ignore' });
    const j = job('test/fixtures/failing-pytest', pytestVenv, 'mysite.settings');
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
