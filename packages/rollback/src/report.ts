import { stateText } from '@slipway/migrate/lib';
import type { SummarySection } from '@slipway/toolkit/summary';
import type { DatabasePlan } from './database';
import type { Resolution } from './target';

/**
 * The plan a person reads before anything changes (log and job summary), and the pure helpers
 * behind it: image now → then, migrations per app in order, backup to restore, data that goes.
 */
export function imageText(image: string): string {
  const m = /^(.*)@sha256:([0-9a-f]{12})[0-9a-f]*$/.exec(image);
  return m ? `${m[1]}@sha256:${m[2]}…` : image;
}

/** Backwards steps grouped per app, in the order they run: `orders: 0003_order_note; catalog: 0005…`. */
export function stepsText(plan: DatabasePlan): string {
  if (plan.steps.length === 0) return 'none';
  const groups: { app: string; backwards: boolean; names: string[] }[] = [];
  for (const s of plan.steps) {
    const last = groups[groups.length - 1];
    if (last && last.app === s.app && last.backwards === s.backwards) last.names.push(s.name);
    else groups.push({ app: s.app, backwards: s.backwards, names: [s.name] });
  }
  return groups.map((g) => `${g.backwards ? 'unapply' : 'apply'} ${g.app}: ${g.names.join(', ')}`).join('; ');
}

/** What is lost, in words a person can act on. */
export function lossText(plan: DatabasePlan, res: Resolution): string {
  if (plan.mode === 'none') return 'nothing (the schema stays as it is; the old code runs on it)';
  if (plan.mode === 'restore-backup') {
    const rows = Object.entries(plan.countsNow ?? {}).filter(([, n]) => (n ?? 0) > 0);
    const total = rows.reduce((sum, [, n]) => sum + (n ?? 0), 0);
    return (
      `every write since the backup of ${plan.restore!.takenAt} (${res.undone.length} release(s) undone); ` +
      `tables now hold ${total} row(s) in ${rows.length} table(s), and go back to the backup's content`
    );
  }
  const losses = plan.steps.flatMap((s) => s.losses);
  if (losses.length === 0) return 'nothing: the migrations undone add no columns or tables';
  return losses.map((l) => `${l.what}${l.rows === null ? '' : ` (${l.rows} row(s) with data)`}`).join('; ');
}

export function planRows(res: Resolution, plan: DatabasePlan): [string, string][] {
  const rows: [string, string][] = [
    ['Serving now', `${res.current.id} · ${res.current.gitSha.slice(0, 7) || '?'} · ${imageText(res.current.image)}`],
    ['Back to', `${res.target.id} · ${res.target.gitSha.slice(0, 7) || '?'} · ${imageText(res.target.image)}`],
    ['Releases undone', res.undone.map((r) => r.id).join(', ')],
    ['Database', plan.mode],
  ];
  if (plan.mode === 'migrate-back') {
    rows.push(['Migrations', stepsText(plan)]);
    if (plan.liveState) rows.push(['Schema now', stateText(changedOnly(plan.liveState, plan.targetState!))]);
    if (plan.targetState) rows.push(['Schema then', stateText(changedOnly(plan.targetState, plan.liveState ?? {}))]);
  }
  if (plan.restore)
    rows.push(['Backup to restore', `${plan.restore.file} (recorded by ${plan.restore.recordedBy}, taken ${plan.restore.takenAt})`]);
  rows.push(['Data lost', lossText(plan, res)]);
  return rows;
}

/** Only the apps whose state differs, so the row stays readable. */
function changedOnly(a: Record<string, string | null>, b: Record<string, string | null>): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(a)) if ((b[k] ?? null) !== v) out[k] = v;
  return Object.keys(out).length ? out : a;
}

/** Per table: rows before → after a restore, only where they differ. */
export function restoreSection(before: Record<string, number | null>, after: Record<string, number | null>): SummarySection {
  const tables = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  const rows = tables
    .filter((t) => (before[t] ?? null) !== (after[t] ?? null))
    .map((t) => {
      const b = before[t] ?? null;
      const a = after[t] ?? null;
      const lost =
        b !== null && a !== null && b > a ? `${b - a} row(s) lost` : a === null ? 'table gone' : b === null ? 'table back' : 'changed';
      return [t, String(b ?? '—'), String(a ?? '—'), lost];
    });
  return {
    heading: 'Data lost by the restore',
    ...(rows.length
      ? { table: { header: ['Table', 'Rows before', 'Rows after', ''], rows } }
      : { text: 'No table changed its row count.' }),
  };
}
