import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseVersionRequest, readWantedPython, satisfies, sortVersionsDesc, versionInFile } from '@slipway/toolkit/python-version';

function dirWith(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-pyver-'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

describe('parseVersionRequest', () => {
  it.each([
    ['3.12', '==3.12.*'],
    ['3', '==3.*'],
    ['3.12.4', '==3.12.4'],
    ['python-3.11.7', '==3.11.7'],
    ['3.11.x', '==3.11.*'],
    ['>=3.10', '>=3.10'],
    ['>=3.10, <3.13', '>=3.10,<3.13'],
    ['~=3.11', '~=3.11'],
  ])('%s -> %s', (text, specifier) => {
    expect(parseVersionRequest(text, 'x').specifier).toBe(specifier);
  });

  it.each(['latest', 'pypy3.10', '3.12-dev', '>=three'])('rejects %s naming the source', (text) => {
    expect(() => parseVersionRequest(text, 'Input `python-version`')).toThrow(/^Input `python-version`: `.*` is not a Python version/);
  });
});

describe('satisfies', () => {
  it.each([
    ['3.12.4', '==3.12.*', true],
    ['3.13.0', '==3.12.*', false],
    ['3.12.4', '==3.12.4', true],
    ['3.12.4', '>=3.10,<3.13', true],
    ['3.13.0', '>=3.10,<3.13', false],
    ['3.9.18', '>=3.10', false],
    ['3.11.7', '~=3.11', true],
    ['3.12.1', '~=3.11', true],
    ['3.11.7', '~=3.11.2', true],
    ['3.12.0', '~=3.11.2', false],
    ['3.12.1', '!=3.12.*', false],
    ['3.12.1', '>3.12', true],
  ])('%s in %s: %s', (version, spec, ok) => {
    expect(satisfies(version, spec)).toBe(ok);
  });

  it('sorts newest first', () => {
    expect(sortVersionsDesc(['3.9.18', '3.12.1', '3.10.13', '3.12.10'])).toEqual(['3.12.10', '3.12.1', '3.10.13', '3.9.18']);
  });
});

describe('versionInFile', () => {
  it.each([
    ['.python-version', '# pinned\n3.12.4\n3.11\n', '3.12.4'],
    ['.tool-versions', 'nodejs 20.1.0\npython 3.11.7 3.10.1\n', '3.11.7'],
    ['runtime.txt', 'python-3.11.7\n', 'python-3.11.7'],
    ['pyproject.toml', '[project]\nname = "x"\nrequires-python = ">=3.10"\n', '>=3.10'],
    ['pyproject.toml', '[tool.black]\nline-length = 100\n', undefined],
    ['Pipfile', '[packages]\ndjango = "*"\n\n[requires]\npython_version = "3.11"\n', '3.11'],
  ] as const)('%s: %j', (name, text, found) => {
    expect(versionInFile(name, text)).toBe(found);
  });
});

describe('readWantedPython', () => {
  it('takes the nearest folder first, then files in precedence order', () => {
    const project = dirWith({ 'pyproject.toml': '[project]\nrequires-python = ">=3.11"\n' });
    const root = dirWith({ '.python-version': '3.12\n', 'runtime.txt': 'python-3.10.1' });
    expect(readWantedPython([project, root])).toMatchObject({ specifier: '>=3.11', source: path.join(project, 'pyproject.toml') });
    expect(readWantedPython([root])).toMatchObject({ specifier: '==3.12.*', source: path.join(root, '.python-version') });
    expect(readWantedPython([dirWith({})])).toBeUndefined();
  });
});
