import * as core from '@actions/core';

/**
 * Job summaries a person can read in five seconds: a heading, a two-column table of facts,
 * optional sections. Written once at the end of a step.
 */
export interface SummarySection {
  heading: string;
  rows?: [string, string][];
  /** A table with its own header row. */
  table?: { header: string[]; rows: string[][] };
  text?: string;
  code?: string;
}

export async function writeSummary(title: string, sections: SummarySection[]): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  const s = core.summary.addHeading(title, 3);
  for (const section of sections) {
    if (section.heading) s.addHeading(section.heading, 4);
    if (section.rows?.length) {
      s.addTable([
        [
          { data: 'What', header: true },
          { data: 'Value', header: true },
        ],
        ...section.rows.map(([k, v]) => [escapeHtml(k), escapeHtml(v)]),
      ]);
    }
    if (section.table) {
      s.addTable([section.table.header.map((h) => ({ data: h, header: true })), ...section.table.rows.map((r) => r.map(escapeHtml))]);
    }
    if (section.text) s.addRaw(section.text, true);
    if (section.code) s.addCodeBlock(section.code);
  }
  await s.write();
}

/** Escapes text for inclusion in the summary's HTML. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}
