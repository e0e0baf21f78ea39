import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  defaultRequirements,
  detectProject,
  parsePipConf,
  pipenvRequirementsArgv,
  poetryInstallArgv,
  pyprojectRequirements,
  requirementsInstallArgv,
  uvIndexEnv,
  uvSyncArgv,
  venvCreateArgv,
  withIncludes,
} from '@slipway/toolkit/package-manager';

function tree(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-pm-'));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    fs.writeFileSync(path.join(root, name), text);
  }
  return root;
}

const PYPROJECT = `[project]\nname = "x"\ndependencies = ["django>=5.2"]\n[project.optional-dependencies]\nprod = ["gunicorn"]\n`;

describe('detectProject', () => {
  it.each([
    [{ 'uv.lock': '', 'pyproject.toml': PYPROJECT, 'requirements.txt': 'x' }, 'uv'],
    [{ 'poetry.lock': '', 'pyproject.toml': PYPROJECT }, 'poetry'],
    [{ 'Pipfile.lock': '{}', Pipfile: '' }, 'pipenv'],
    [{ 'requirements.txt': 'django', 'pyproject.toml': PYPROJECT }, 'requirements'],
    [{ 'requirements/test.txt': '-r base.txt', 'requirements/base.txt': 'django' }, 'requirements'],
    [{ 'pyproject.toml': PYPROJECT }, 'pyproject'],
  ])('auto: %j -> %s', (files, kind) => {
    const root = tree(files);
    expect(detectProject([root], 'auto', [], root).kind).toBe(kind);
  });

  it('takes the folder nearest the project (subfolder layout looks up to the root)', () => {
    const root = tree({ 'requirements.txt': 'django', 'backend/manage.py': '' });
    const found = detectProject([path.join(root, 'backend'), root], 'auto', [], root);
    expect(found).toMatchObject({ kind: 'requirements', dir: root, requirements: [path.join(root, 'requirements.txt')] });
  });

  it('hashes included requirement files too', () => {
    const root = tree({
      'requirements/test.txt': '-r base.txt\n-c ../constraints.txt\npytest',
      'requirements/base.txt': 'django',
      'constraints.txt': '',
    });
    expect(withIncludes([path.join(root, 'requirements/test.txt')]).map((f) => path.relative(root, f))).toEqual([
      'requirements/test.txt',
      'requirements/base.txt',
      'constraints.txt',
    ]);
  });

  it.each([
    ['uv', { 'requirements.txt': '' }, /^`package-manager: uv` needs uv\.lock, found none in \.: commit it \(`uv lock`\)/],
    ['poetry', { 'pyproject.toml': PYPROJECT }, /^`package-manager: poetry` needs poetry\.lock/],
    ['pipenv', { Pipfile: '' }, /^`package-manager: pipenv` needs Pipfile\.lock/],
    ['auto', { Pipfile: '' }, /^Pipfile has no Pipfile\.lock beside it/],
    ['auto', { 'README.md': '' }, /^No dependency files found in \./],
    ['pip', { 'uv.lock': '' }, /^No dependency files found/],
  ] as const)('%s with %j fails clearly', (choice, files, message) => {
    const root = tree(files);
    expect(() => detectProject([root], choice, [], root)).toThrow(message);
  });

  it('checks requirements input files exist and fit the manager', () => {
    const root = tree({ 'req/ci.txt': 'django' });
    expect(detectProject([root], 'auto', ['req/ci.txt'], root).requirements).toEqual([path.join(root, 'req/ci.txt')]);
    expect(() => detectProject([root], 'auto', ['nope.txt'], root)).toThrow('Input `requirements`: nope.txt does not exist.');
    expect(() => detectProject([root], 'poetry', ['req/ci.txt'], root)).toThrow(/works with `package-manager` auto or pip/);
  });

  it('adds requirements-dev/test beside requirements.txt', () => {
    const root = tree({ 'requirements.txt': '', 'requirements-dev.txt': '', 'requirements-test.txt': '' });
    expect(defaultRequirements(root).map((f) => path.basename(f))).toEqual([
      'requirements.txt',
      'requirements-dev.txt',
      'requirements-test.txt',
    ]);
  });
});

describe('pyprojectRequirements', () => {
  const toml = `${PYPROJECT}[dependency-groups]\ntest = ["pytest"]\ndev = ["ruff", {include-group = "test"}]\nloop = [{include-group = "loop"}]\n`;
  it('collects deps, extras and PEP 735 groups with include-group', () => {
    expect(pyprojectRequirements(toml, [], [])).toEqual(['django>=5.2']);
    expect(pyprojectRequirements(toml, ['prod'], ['dev'])).toEqual(['django>=5.2', 'gunicorn', 'ruff', 'pytest']);
  });
  it('names unknown extras and groups', () => {
    expect(() => pyprojectRequirements(toml, ['nope'], [])).toThrow('Input `extras`: pyproject.toml has no extra `nope` (has: prod).');
    expect(() => pyprojectRequirements(toml, [], ['nope'])).toThrow(
      'Input `groups`: pyproject.toml has no dependency group `nope` (has: test, dev, loop).',
    );
    expect(() => pyprojectRequirements(toml, [], ['loop'])).toThrow('includes itself');
  });
});

describe('argv builders', () => {
  it('venv creation', () => {
    expect(venvCreateArgv('uv', '/py/bin/python3', '/w/.venv', '/t/uv')).toEqual([
      '/t/uv',
      ['venv', '--no-project', '--python', '/py/bin/python3', '--quiet', '/w/.venv'],
    ]);
    expect(venvCreateArgv('pip', '/py/bin/python3', '/w/.venv')).toEqual(['/py/bin/python3', ['-m', 'venv', '/w/.venv']]);
  });
  it('requirements install', () => {
    expect(requirementsInstallArgv('uv', '/w/.venv/bin/python', ['a.txt', 'b.txt'], '/t/uv')).toEqual([
      '/t/uv',
      ['pip', 'install', '--python', '/w/.venv/bin/python', '-r', 'a.txt', '-r', 'b.txt'],
    ]);
    expect(requirementsInstallArgv('pip', '/w/.venv/bin/python', ['a.txt'])).toEqual([
      '/w/.venv/bin/python',
      ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '-r', 'a.txt'],
    ]);
  });
  it('uv sync, poetry install, pipenv requirements', () => {
    expect(uvSyncArgv('/py', ['prod'], ['dev'])).toEqual(['sync', '--locked', '--python', '/py', '--extra', 'prod', '--group', 'dev']);
    expect(poetryInstallArgv(['pg'], ['dev', 'test'])).toEqual([
      'install',
      '--no-root',
      '--no-interaction',
      '--with',
      'dev',
      '--with',
      'test',
      '--extras',
      'pg',
    ]);
    expect(pipenvRequirementsArgv([])).toEqual(['requirements']);
    expect(pipenvRequirementsArgv(['dev'])).toEqual(['requirements', '--dev']);
    expect(pipenvRequirementsArgv(['docs'])).toEqual(['requirements', '--categories', 'packages,docs']);
  });
});

describe('uvIndexEnv: pip settings carried over to uv', () => {
  it('maps pip.conf and PIP_* to uv variables, PIP_* winning over files', () => {
    const conf =
      '[global]\nindex-url = https://conf.example/simple\nextra-index-url =\n  file:///opt/a\n  file:///opt/b\nfind-links = /opt/wheels\n';
    expect(uvIndexEnv({ PIP_INDEX_URL: 'https://env.example/simple' }, [conf])).toEqual({
      UV_DEFAULT_INDEX: 'https://env.example/simple',
      UV_INDEX: 'file:///opt/a file:///opt/b',
      UV_INDEX_STRATEGY: 'unsafe-best-match',
      UV_FIND_LINKS: '/opt/wheels',
    });
  });
  it("leaves uv's own settings alone", () => {
    expect(uvIndexEnv({ PIP_INDEX_URL: 'https://a/simple', UV_INDEX_URL: 'https://b/simple' }, [])).toEqual({});
  });
  it('reads [install] over [global]', () => {
    expect(parsePipConf('[global]\nindex-url = a\n[install]\nindex-url = b\n')).toEqual({ 'index-url': 'b' });
  });
});
