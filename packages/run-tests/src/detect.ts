import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Runner } from './context';

/**
 * pytest when pytest-django is configured for the project, else Django's own runner. Configured
 * means: a pytest section (pytest.ini, pyproject.toml, setup.cfg, tox.ini) that names Django
 * settings (DJANGO_SETTINGS_MODULE, --ds, django_find_project), or a conftest.py that uses
 * pytest-django. Looked for in the project folder and each parent up to the workspace root,
 * as pytest itself finds its rootdir and ini file.
 */
const SECTIONS: Record<string, RegExp> = {
  'pytest.ini': /^\s*\[pytest\]/m,
  'pyproject.toml': /^\s*\[tool\.pytest(\.ini_options)?\]/m,
  'setup.cfg': /^\s*\[tool:pytest\]/m,
  'tox.ini': /^\s*\[pytest\]/m,
};
const DJANGO_SETTING = /DJANGO_SETTINGS_MODULE|--ds[= ]|django_find_project|DJANGO_CONFIGURATION/;
const CONFTEST_DJANGO = /pytest_django|django_db|\bdjango_user_model\b|\bsettings\.configure\(/;

export function detectRunner(projectDir: string, workspace: string): { runner: Runner; reason: string } {
  for (const dir of ancestors(projectDir, workspace)) {
    for (const [file, section] of Object.entries(SECTIONS)) {
      const text = read(path.join(dir, file));
      if (text === undefined) continue;
      const body = sectionBody(text, section);
      if (body !== undefined && DJANGO_SETTING.test(body)) {
        return { runner: 'pytest', reason: `pytest-django is configured in ${path.relative(workspace, path.join(dir, file)) || file}` };
      }
    }
    const conftest = read(path.join(dir, 'conftest.py'));
    if (conftest !== undefined && CONFTEST_DJANGO.test(conftest)) {
      return { runner: 'pytest', reason: `${path.relative(workspace, path.join(dir, 'conftest.py'))} uses pytest-django` };
    }
  }
  return { runner: 'django', reason: 'no pytest-django configuration found' };
}

/** The text of the section whose header matches, up to the next section header. */
function sectionBody(text: string, header: RegExp): string | undefined {
  const m = header.exec(text);
  if (!m) return undefined;
  const rest = text.slice(m.index + m[0].length);
  const next = /^\s*\[[^\]]+\]\s*$/m.exec(rest);
  return next ? rest.slice(0, next.index) : rest;
}

function ancestors(dir: string, stop: string): string[] {
  const out: string[] = [];
  let current = path.resolve(dir);
  const root = path.resolve(stop);
  for (;;) {
    out.push(current);
    const rel = path.relative(root, current);
    if (current === root || rel.startsWith('..') || path.isAbsolute(rel)) break;
    current = path.dirname(current);
  }
  return out;
}

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
