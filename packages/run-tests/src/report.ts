import * as path from 'node:path';
import { failureLocation, type TestResult } from '@slipway/toolkit/junit';
import { annotate, formatMs } from '@slipway/toolkit/log';
import type { SummarySection } from '@slipway/toolkit/summary';

export const MAX_ANNOTATIONS = 10;
const MAX_LISTED_FAILURES = 20;
const TRACEBACK_LINES = 15;

export interface Counts {
  passed: number;
  failed: number;
  errors: number;
  skipped: number;
  total: number;
}

export function countResults(results: TestResult[]): Counts {
  const n = (o: TestResult['outcome']): number => results.filter((r) => r.outcome === o).length;
  return { passed: n('passed'), failed: n('failed'), errors: n('error'), skipped: n('skipped'), total: results.length };
}

/**
 * The final result of every test after retries: the last attempt's outcome and, for a test that
 * failed and then passed, a flaky mark. Durations stay those of the first run (the full run).
 */
export function mergeAttempts(attempts: TestResult[][]): { results: TestResult[]; flaky: string[] } {
  const [first = [], ...reruns] = attempts;
  const byId = new Map(first.map((r) => [r.id, { ...r }]));
  const flaky: string[] = [];
  for (const rerun of reruns) {
    for (const r of rerun) {
      const current = byId.get(r.id);
      if (!current) continue;
      if (r.outcome === 'passed' && (current.outcome === 'failed' || current.outcome === 'error')) flaky.push(r.id);
      byId.set(r.id, { ...current, outcome: r.outcome, message: r.message, details: r.details });
    }
  }
  return { results: [...byId.values()], flaky: [...new Set(flaky)].sort() };
}

/** Failed-then-passed tests keep their first failure text, for the summary. */
export function failuresOf(results: TestResult[]): TestResult[] {
  return results.filter((r) => r.outcome === 'failed' || r.outcome === 'error');
}

/**
 * An error annotation per failed test at the line where it failed (relative to the workspace,
 * as GitHub expects), ordered by file and line; capped, with a notice saying how many more.
 */
export function annotateFailures(failures: TestResult[], opts: { projectDir: string; workspace: string }): number {
  const located = failures.map((r) => {
    const where = failureLocation(r, opts.projectDir);
    const rel = where ? path.relative(opts.workspace, where.file) : undefined;
    const inWorkspace = rel !== undefined && !rel.startsWith('..') && !path.isAbsolute(rel);
    return { r, file: inWorkspace ? rel : undefined, line: inWorkspace ? where?.line : undefined };
  });
  located.sort(
    (a, b) => (a.file ?? '\uffff').localeCompare(b.file ?? '\uffff') || (a.line ?? 0) - (b.line ?? 0) || a.r.id.localeCompare(b.r.id),
  );
  for (const { r, file, line } of located.slice(0, MAX_ANNOTATIONS)) {
    const title = `${r.outcome === 'error' ? 'Error' : 'Failed'}: ${r.id}`;
    annotate('error', shortTraceback(r.details, 6) || firstLine(r.message) || r.outcome, { file, line, title });
  }
  if (located.length > MAX_ANNOTATIONS) {
    annotate('notice', `${located.length - MAX_ANNOTATIONS} more failed tests are listed in the job summary.`);
  }
  return Math.min(located.length, MAX_ANNOTATIONS);
}

export function summarySections(opts: {
  results: TestResult[];
  firstFailures: TestResult[];
  flaky: string[];
  facts: [string, string][];
  durationMs: number;
}): SummarySection[] {
  const counts = countResults(opts.results);
  const sections: SummarySection[] = [
    {
      heading: '',
      rows: [
        ['Result', counts.failed + counts.errors ? '❌ failed' : '✅ passed'],
        ['Tests', `${counts.total}: ${counts.passed} passed, ${counts.failed} failed, ${counts.errors} errors, ${counts.skipped} skipped`],
        ['Duration', formatMs(opts.durationMs)],
        ...(opts.flaky.length ? ([['Flaky (passed on a retry)', opts.flaky.join(', ')]] as [string, string][]) : []),
        ...opts.facts,
      ],
    },
  ];
  const failures = failuresOf(opts.results);
  for (const r of failures.slice(0, MAX_LISTED_FAILURES)) {
    sections.push({
      heading: `${r.outcome === 'error' ? 'Error' : 'Failed'}: ${r.id}`,
      code: shortTraceback(r.details, TRACEBACK_LINES) || r.message || '',
    });
  }
  if (failures.length > MAX_LISTED_FAILURES)
    sections.push({ heading: '', text: `…and ${failures.length - MAX_LISTED_FAILURES} more failed tests.` });
  if (opts.flaky.length) {
    const first = new Map(opts.firstFailures.map((r) => [r.id, r]));
    sections.push({
      heading: 'Flaky tests',
      table: { header: ['Test', 'First failure'], rows: opts.flaky.map((id) => [id, firstLine(first.get(id)?.message) || 'failed']) },
    });
  }
  const slowest = [...opts.results]
    .filter((r) => r.outcome !== 'skipped')
    .sort((a, b) => b.time - a.time)
    .slice(0, 10);
  if (slowest.length) {
    sections.push({
      heading: 'Slowest tests',
      table: { header: ['Test', 'Seconds'], rows: slowest.map((r) => [r.id, r.time.toFixed(3)]) },
    });
  }
  return sections;
}

function firstLine(text: string | undefined): string {
  return (text ?? '').trim().split('\n')[0] ?? '';
}

/** The last lines of a traceback: where it failed and why. */
export function shortTraceback(details: string | undefined, lines: number): string {
  const text = (details ?? '').replace(/\s+$/, '');
  if (!text) return '';
  const all = text.split('\n');
  return (all.length > lines ? ['…', ...all.slice(-lines)] : all).join('\n');
}
