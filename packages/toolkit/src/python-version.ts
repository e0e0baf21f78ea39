import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { UserError } from './errors';

/**
 * The Python version a project asks for, read the way the tools that wrote it read it:
 * `.python-version` (pyenv, uv), `.tool-versions` (asdf, mise), `runtime.txt` (Heroku,
 * `python-3.12.4`), pyproject `requires-python` (PEP 621), Pipfile `[requires] python_version`.
 * A wanted version is a PEP 440 specifier set; a bare `3.12` means `==3.12.*`.
 */
export interface WantedPython {
  /** As written, for messages. */
  text: string;
  /** Comma-separated PEP 440 clauses, e.g. `==3.12.*` or `>=3.10,<3.13`. */
  specifier: string;
  /** Where it came from: an input name or a file path. */
  source: string;
}

const FILES = ['.python-version', '.tool-versions', 'runtime.txt', 'pyproject.toml', 'Pipfile'] as const;

/** Turns a version request (`3.12`, `3.12.4`, `>=3.10`, `python-3.11.7`) into a WantedPython. */
export function parseVersionRequest(text: string, source: string): WantedPython {
  const raw = text.trim().replace(/^(python|cpython)-?/i, '');
  if (/^\d+(\.\d+){0,2}$/.test(raw)) {
    const parts = raw.split('.');
    return { text: text.trim(), specifier: parts.length === 3 ? `==${raw}` : `==${raw}.*`, source };
  }
  if (/^\d+(\.\d+)?\.x$/.test(raw)) return { text: text.trim(), specifier: `==${raw.slice(0, -2)}.*`, source };
  const clauses = raw.split(',').map((c) => c.trim());
  if (raw && clauses.every((c) => CLAUSE.test(c))) return { text: text.trim(), specifier: clauses.join(','), source };
  throw new UserError(`${source}: \`${text.trim()}\` is not a Python version (e.g. 3.12, 3.12.4 or >=3.10,<3.13).`);
}

const CLAUSE = /^(==|!=|>=|<=|>|<|~=)\s*\d+(\.\d+)*(\.\*)?$/;

/**
 * The first version file found, looking in `dirs` in order (nearest the project first) and in
 * each dir in FILES order. Undefined when no file names a version.
 */
export function readWantedPython(dirs: string[]): WantedPython | undefined {
  for (const dir of dirs) {
    for (const name of FILES) {
      const file = path.join(dir, name);
      if (!fs.existsSync(file)) continue;
      const text = fs.readFileSync(file, 'utf8');
      const found = versionInFile(name, text);
      if (found) return parseVersionRequest(found, file);
    }
  }
  return undefined;
}

/** The version text a file holds, or undefined when it names none (e.g. a pyproject without requires-python). */
export function versionInFile(name: (typeof FILES)[number], text: string): string | undefined {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter(Boolean);
  switch (name) {
    case '.python-version':
      return lines.find((l) => l !== 'system');
    case '.tool-versions': {
      const line = lines.find((l) => /^python\s/.test(l));
      return line?.split(/\s+/).find((v, i) => i > 0 && v !== 'system');
    }
    case 'runtime.txt':
      return lines[0];
    case 'pyproject.toml': {
      const data = parseToml(text) as { project?: { 'requires-python'?: unknown } };
      const value = data.project?.['requires-python'];
      return typeof value === 'string' ? value : undefined;
    }
    case 'Pipfile': {
      const data = parseToml(text) as { requires?: { python_full_version?: unknown; python_version?: unknown } };
      const value = data.requires?.python_full_version ?? data.requires?.python_version;
      return typeof value === 'string' ? value : undefined;
    }
  }
}

/** Whether `version` (e.g. 3.12.4) satisfies every clause of `specifier`. */
export function satisfies(version: string, specifier: string): boolean {
  const v = numbers(version);
  return specifier.split(',').every((clause) => {
    const m = /^(==|!=|>=|<=|>|<|~=)\s*(.+)$/.exec(clause.trim());
    if (!m) return false;
    const [, op, target] = m as unknown as [string, string, string];
    if (target.endsWith('.*')) {
      const prefix = numbers(target.slice(0, -2));
      const same = prefix.every((n, i) => v[i] === n);
      return op === '!=' ? !same : op === '==' ? same : false;
    }
    const t = numbers(target);
    const c = compare(v, t);
    switch (op) {
      case '==':
        return c === 0;
      case '!=':
        return c !== 0;
      case '>=':
        return c >= 0;
      case '<=':
        return c <= 0;
      case '>':
        return c > 0;
      case '<':
        return c < 0;
      default: {
        // ~=X.Y.Z means >=X.Y.Z,==X.Y.*
        const prefix = t.slice(0, Math.max(1, t.length - 1));
        return c >= 0 && prefix.every((n, i) => v[i] === n);
      }
    }
  });
}

export function numbers(version: string): number[] {
  return version.split('.').map((p) => Number.parseInt(p, 10) || 0);
}

export function compare(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Newest first. */
export function sortVersionsDesc(versions: string[]): string[] {
  return [...versions].sort((a, b) => compare(numbers(b), numbers(a)));
}
