import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findManagePy, settingsModuleFromManagePy } from '@slipway/toolkit/django';

function tree(files: string[]): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-tree-'));
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    fs.writeFileSync(path.join(root, f), '');
  }
  return root;
}

describe('findManagePy', () => {
  it('prefers the workspace root', () => {
    const root = tree(['manage.py', 'other/manage.py']);
    expect(findManagePy(root)).toBe(path.join(root, 'manage.py'));
  });

  it('finds the one manage.py below the root, ignoring venvs and node_modules', () => {
    const root = tree(['backend/manage.py', '.venv/lib/manage.py', 'node_modules/x/manage.py', 'venv/manage.py']);
    expect(findManagePy(root)).toBe(path.join(root, 'backend/manage.py'));
  });

  it('lists several candidates and says what to set', () => {
    const root = tree(['a/manage.py', 'b/manage.py']);
    expect(() => findManagePy(root)).toThrow(
      'Several manage.py files found (a/manage.py, b/manage.py): set `working-directory` to the one to use.',
    );
  });

  it('says what to do when there is none', () => {
    expect(() => findManagePy(tree(['README.md']))).toThrow(/^No manage.py found in the workspace/);
  });

  it('honours working-directory', () => {
    const root = tree(['a/manage.py', 'b/manage.py']);
    expect(findManagePy(root, 'b')).toBe(path.join(root, 'b/manage.py'));
    expect(() => findManagePy(root, 'c')).toThrow('No manage.py in `working-directory` (c): point it at the folder that holds manage.py.');
  });
});

describe('settingsModuleFromManagePy', () => {
  it.each([
    [`os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")`, 'shop.settings'],
    [`os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings.local')`, 'config.settings.local'],
    [`os.environ.setdefault(\n    "DJANGO_SETTINGS_MODULE",\n    "x.y"\n)`, 'x.y'],
    ['print("no settings")', undefined],
  ])('%j', (text, expected) => expect(settingsModuleFromManagePy(text)).toBe(expected));
});
