import { describe, expect, it } from 'vitest';
import { failureLocation, parseJUnit, toJUnit, type TestResult } from '@slipway/toolkit/junit';

// As pytest 9 writes it (xunit2), with Slipway's plugin properties on one case.
const PYTEST = `<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="4" time="0.2">
<testcase classname="tests.test_outcomes" name="test_passes" time="0.012"><properties><property name="slipway.id" value="tests/test_outcomes.py::test_passes" /><property name="slipway.file" value="/p/tests/test_outcomes.py" /><property name="slipway.line" value="20" /></properties></testcase>
<testcase classname="tests.test_outcomes" name="test_fails" time="0.001"><failure message="assert 2 == 3">def test_fails():
        total = 1 + 1
&gt;       assert total == 3
E       assert 2 == 3

tests/test_outcomes.py:27: AssertionError</failure></testcase>
<testcase classname="tests.test_outcomes" name="test_errors" time="0.000"><error message="failed on setup with &quot;RuntimeError: broken&quot;">@pytest.fixture
    def broken_service():
&gt;       raise RuntimeError("broken")
E       RuntimeError: broken

tests/test_outcomes.py:32: RuntimeError</error></testcase>
<testcase classname="tests.test_outcomes" name="test_skipped" time="0.000"><skipped type="pytest.skip" message="skipped on purpose">tests/test_outcomes.py:36: skipped on purpose</skipped></testcase>
</testsuite></testsuites>`;

const DJANGO_TB = `Traceback (most recent call last):
  File "/p/checks/tests.py", line 26, in test_fails
    self.assertEqual(helper(), 3)
  File "/p/checks/helpers.py", line 4, in helper
    return check(1)
  File "/venv/lib/python3.12/site-packages/django/test/testcases.py", line 10, in check
    raise AssertionError("2 != 3")
AssertionError: 2 != 3`;

describe('parseJUnit', () => {
  it('reads pytest results with outcomes, ids, messages and locations', () => {
    const results = parseJUnit(PYTEST);
    expect(results.map((r) => [r.id, r.outcome])).toEqual([
      ['tests/test_outcomes.py::test_passes', 'passed'],
      ['tests.test_outcomes.test_fails', 'failed'],
      ['tests.test_outcomes.test_errors', 'error'],
      ['tests.test_outcomes.test_skipped', 'skipped'],
    ]);
    expect(results[0]).toMatchObject({ file: '/p/tests/test_outcomes.py', line: 20, time: 0.012 });
    expect(results[1]!.message).toBe('assert 2 == 3');
    expect(results[1]!.details).toContain('assert total == 3');
  });

  it('round-trips through toJUnit', () => {
    const results: TestResult[] = [
      {
        id: 'a.T.test_x',
        classname: 'a.T',
        name: 'test_x',
        file: '/p/a.py',
        line: 3,
        time: 0.5,
        outcome: 'failed',
        message: 'm <&>',
        details: DJANGO_TB,
      },
      { id: 'a.T.test_y', classname: 'a.T', name: 'test_y', time: 0.25, outcome: 'passed' },
      { id: 'a.T.test_z', classname: 'a.T', name: 'test_z', time: 0, outcome: 'skipped', message: 'later' },
    ];
    const back = parseJUnit(toJUnit(results, 'django'));
    const pick = (r: TestResult) => [r.id, r.classname, r.name, r.file, r.line, r.time, r.outcome, r.message ?? '', r.details ?? ''];
    expect(back.map(pick)).toEqual(results.map(pick));
  });
});

describe('failureLocation', () => {
  it.each([
    ['the innermost frame in the project, not in site-packages', DJANGO_TB, { file: '/p/checks/helpers.py', line: 4 }],
    [
      "pytest's path:line",
      'E  assert 2 == 3\n\ntests/test_outcomes.py:27: AssertionError',
      { file: '/p/tests/test_outcomes.py', line: 27 },
    ],
    ['the test itself when the traceback is all elsewhere', 'File "/usr/lib/x.py", line 9', { file: '/p/t.py', line: 5 }],
  ])('%s', (_, details, expected) => {
    const r: TestResult = { id: 'x', classname: '', name: 'x', time: 0, outcome: 'failed', details, file: 't.py', line: 5 };
    expect(failureLocation(r, '/p')).toEqual(expected);
  });
});
