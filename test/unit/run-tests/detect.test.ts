import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectRunner } from '../../../packages/run-tests/src/detect';
import { appsMissingMigrations } from '../../../packages/run-tests/src/checks';
import { mergeAttempts } from '../../../packages/run-tests/src/report';

function tree(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-detect-'));
  for (const [f, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    fs.writeFileSync(path.join(root, f), text);
  }
  return root;
}

describe('detectRunner', () => {
  it.each([
    [{ 'pytest.ini': '[pytest]\nDJANGO_SETTINGS_MODULE = a.settings\n' }, 'pytest'],
    [{ 'pyproject.toml': '[tool.pytest.ini_options]\nDJANGO_SETTINGS_MODULE = "a.settings"\n' }, 'pytest'],
    [{ 'setup.cfg': '[metadata]\nname=x\n[tool:pytest]\naddopts = --ds=a.settings\n' }, 'pytest'],
    [{ 'tox.ini': '[tox]\nenvlist=py\n[pytest]\nDJANGO_SETTINGS_MODULE=a.settings\n' }, 'pytest'],
    [{ 'conftest.py': 'import pytest\n@pytest.fixture\ndef x(django_db_setup): ...\n' }, 'pytest'],
    [{ 'pytest.ini': '[pytest]\ntestpaths = tests\n' }, 'django'],
    [{ 'pyproject.toml': '[tool.ruff]\nline-length = 100\n[tool.other]\nDJANGO_SETTINGS_MODULE = 1\n' }, 'django'],
    [{ 'tox.ini': '[testenv]\nsetenv = DJANGO_SETTINGS_MODULE=a.settings\n' }, 'django'],
    [{}, 'django'],
  ])('%j → %s', (files, runner) => {
    const root = tree({ 'manage.py': '', ...files });
    expect(detectRunner(root, root).runner).toBe(runner);
  });

  it('finds pytest config above a project in a subfolder', () => {
    const root = tree({ 'backend/manage.py': '', 'pyproject.toml': '[tool.pytest.ini_options]\nDJANGO_SETTINGS_MODULE = "a.settings"\n' });
    expect(detectRunner(path.join(root, 'backend'), root)).toEqual({
      runner: 'pytest',
      reason: 'pytest-django is configured in pyproject.toml',
    });
  });
});

describe('appsMissingMigrations', () => {
  it('names the apps', () => {
    const out = "Migrations for 'orders':\n  orders/migrations/0003_x.py\n    + Add field\nMigrations for 'catalog':\n  catalog/...\n";
    expect(appsMissingMigrations(out)).toEqual(['catalog', 'orders']);
  });
});

describe('mergeAttempts', () => {
  const t = (id: string, outcome: 'passed' | 'failed' | 'error') => ({ id, classname: '', name: id, time: 1, outcome });
  it('marks tests that pass on a rerun as flaky and keeps the rest failing', () => {
    const { results, flaky } = mergeAttempts([
      [t('a', 'passed'), t('b', 'failed'), t('c', 'error')],
      [t('b', 'passed'), t('c', 'error')],
    ]);
    expect(flaky).toEqual(['b']);
    expect(results.map((r) => r.outcome)).toEqual(['passed', 'passed', 'error']);
  });
});
