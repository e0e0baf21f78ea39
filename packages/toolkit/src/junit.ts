import * as path from 'node:path';
import { XMLBuilder, XMLParser } from 'fast-xml-parser';

/**
 * JUnit XML as pytest (`--junitxml`, xunit1 or xunit2) and Slipway's Django runner write it:
 * read into one flat list of test results, and written back (for a report merged from reruns).
 * A test's id is what selects it again: pytest's node id, Django's dotted label. Both writers
 * may add `slipway.id`, `slipway.file` and `slipway.line` properties, which win when present.
 */
export type Outcome = 'passed' | 'failed' | 'error' | 'skipped';

export interface TestResult {
  id: string;
  classname: string;
  name: string;
  /** As the report gives it: absolute, or relative to the runner's root folder. */
  file?: string;
  line?: number;
  /** Seconds. */
  time: number;
  outcome: Outcome;
  message?: string;
  /** The traceback or long failure text. */
  details?: string;
}

type Node = Record<string, unknown>;
const str = (v: unknown): string => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');
const ARRAYS = new Set(['testsuite', 'testcase', 'property', 'failure', 'error', 'skipped']);

export function parseJUnit(xml: string): TestResult[] {
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '',
    textNodeName: '#text',
    parseAttributeValue: false,
    parseTagValue: false,
    trimValues: false,
    isArray: (name) => ARRAYS.has(name),
  });
  const doc = parser.parse(xml) as Node;
  const results: TestResult[] = [];
  const visit = (suite: Node): void => {
    for (const inner of (suite.testsuite as Node[] | undefined) ?? []) visit(inner);
    for (const tc of (suite.testcase as Node[] | undefined) ?? []) results.push(toResult(tc));
  };
  const root = (doc.testsuites as Node | undefined) ?? doc;
  visit(typeof root === 'object' && root ? root : {});
  return results;
}

function toResult(tc: Node): TestResult {
  const props = new Map<string, string>();
  const properties = tc.properties as Node | undefined;
  for (const p of (properties?.property as Node[] | undefined) ?? []) props.set(str(p.name), str(p.value));
  const classname = str(tc.classname);
  const name = str(tc.name);
  const file = props.get('slipway.file') ?? (tc.file as string | undefined);
  const lineText = props.get('slipway.line') ?? (tc.line as string | undefined);
  const line = lineText && /^\d+$/.test(lineText) ? Number(lineText) : undefined;
  const result: TestResult = {
    id: props.get('slipway.id') ?? (classname ? `${classname}.${name}` : name),
    classname,
    name,
    file,
    line,
    time: Number(tc.time ?? 0) || 0,
    outcome: 'passed',
  };
  for (const outcome of ['error', 'failure', 'skipped'] as const) {
    const entries = tc[outcome] as (Node | string)[] | undefined;
    if (!entries?.length) continue;
    const first = entries[0]!;
    result.outcome = outcome === 'failure' ? 'failed' : outcome;
    result.message = typeof first === 'string' ? undefined : (first.message as string | undefined);
    result.details = typeof first === 'string' ? first : (first['#text'] as string | undefined);
    break;
  }
  return result;
}

/** A JUnit report of these results, one suite, with Slipway's properties. */
export function toJUnit(results: TestResult[], suiteName: string): string {
  const count = (o: Outcome): number => results.filter((r) => r.outcome === o).length;
  const tag: Record<Outcome, string | null> = { passed: null, failed: 'failure', error: 'error', skipped: 'skipped' };
  const testcase = results.map((r) => {
    const props = [
      { '@_name': 'slipway.id', '@_value': r.id },
      ...(r.file ? [{ '@_name': 'slipway.file', '@_value': r.file }] : []),
      ...(r.line ? [{ '@_name': 'slipway.line', '@_value': String(r.line) }] : []),
    ];
    const node: Node = {
      '@_classname': r.classname,
      '@_name': r.name,
      '@_time': r.time.toFixed(3),
      ...(r.file ? { '@_file': r.file } : {}),
      ...(r.line ? { '@_line': String(r.line) } : {}),
      properties: { property: props },
    };
    const t = tag[r.outcome];
    if (t) node[t] = { '@_message': r.message ?? '', '#text': r.details ?? '' };
    return node;
  });
  const suite = {
    '@_name': suiteName,
    '@_tests': String(results.length),
    '@_failures': String(count('failed')),
    '@_errors': String(count('error')),
    '@_skipped': String(count('skipped')),
    '@_time': results.reduce((s, r) => s + r.time, 0).toFixed(3),
    testcase,
  };
  const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', format: true, suppressEmptyNode: true });
  return `<?xml version="1.0" encoding="utf-8"?>\n${builder.build({ testsuites: { testsuite: [suite] } })}`;
}

export interface Location {
  /** Absolute path. */
  file: string;
  line: number;
}

const PY_FRAME = /File "([^"]+)", line (\d+)/g;
const PYTEST_FRAME = /^([^\s:"][^:\n]*\.py):(\d+): /gm;
const FOREIGN = /[\\/](site-packages|dist-packages|\.venv|venv|lib[\\/]python\d[^\\/]*)[\\/]/;

/**
 * Where a failure happened in the project's own code: the innermost traceback frame inside
 * `projectDir` (Python's `File "…", line N` or pytest's `path.py:N: Error`), else the test
 * itself. Frames in installed packages are skipped, so an assertion helper in Django points
 * at the test line that called it.
 */
export function failureLocation(result: TestResult, projectDir: string): Location | undefined {
  const text = result.details ?? '';
  const matches = [...text.matchAll(PY_FRAME), ...text.matchAll(PYTEST_FRAME)].sort((a, b) => a.index - b.index);
  const frames = matches.map((m) => ({ file: path.resolve(projectDir, m[1]!), line: Number(m[2]) }));
  const inProject = frames.filter((f) => isInside(f.file, projectDir) && !FOREIGN.test(path.relative(projectDir, f.file)));
  // Python tracebacks list the innermost frame last; pytest's long form does too.
  const own = inProject.at(-1);
  if (own) return own;
  if (result.file) return { file: path.resolve(projectDir, result.file), line: result.line ?? 1 };
  return undefined;
}

function isInside(file: string, dir: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}
