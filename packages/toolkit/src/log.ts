import * as core from '@actions/core';

/** Wall-clock phases of a step, recorded by `phase` for the job summary. */
export class Phases {
  readonly timings: { name: string; ms: number }[] = [];

  /** Runs `fn` inside a collapsible log group and records how long it took. */
  async phase<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const started = Date.now();
    try {
      return await core.group(name, fn);
    } finally {
      this.timings.push({ name, ms: Date.now() - started });
    }
  }

  rows(): [string, string][] {
    return this.timings.map((t) => [t.name, formatMs(t.ms)]);
  }
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** An annotation at a file and line, relative to the workspace as GitHub expects. */
export function annotate(
  level: 'error' | 'warning' | 'notice',
  message: string,
  where: { file?: string; line?: number; endLine?: number; title?: string } = {},
): void {
  const props: core.AnnotationProperties = {
    title: where.title,
    file: where.file,
    startLine: where.line,
    endLine: where.endLine,
  };
  if (level === 'error') core.error(message, props);
  else if (level === 'warning') core.warning(message, props);
  else core.notice(message, props);
}
