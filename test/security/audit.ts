/**
 * The canary harness mode: run steps of a Job while an argv sampler watches every process, then
 * search everything the steps and the job left behind for every canary in every form.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Job, StepResult } from '../harness/job';
import { ArgvSampler } from './argv-sampler';
import { searchText, searchTree, type Canary, type Hit } from './canary';

export interface Audit {
  hits: Hit[];
  places: number;
  /** Canaries the action masked (an ::add-mask:: carrying the value or one of its lines). */
  masked: Set<string>;
}

export class CanaryRun {
  readonly steps: StepResult[] = [];
  readonly sampler = new ArgvSampler();
  private readonly before = new Map<string, number>();

  constructor(
    readonly job: Job,
    readonly canaries: Canary[],
    /** Files the test itself wrote with canaries in them (an env-file input): not searched. */
    readonly ownFiles: string[] = [],
  ) {
    // What the workspace held before: only files the steps create or change are searched.
    walk(job.workspace, (p) => this.before.set(p, fs.statSync(p).mtimeMs));
  }

  async run(action: string, inputs: Record<string, string>, options: Parameters<Job['run']>[2] = {}): Promise<StepResult> {
    this.sampler.start();
    try {
      const step = await this.job.run(action, inputs, options);
      this.steps.push(step);
      return step;
    } finally {
      this.sampler.stop();
    }
  }

  async post(): Promise<StepResult[]> {
    this.sampler.start();
    try {
      const steps = await this.job.post();
      this.steps.push(...steps);
      return steps;
    } finally {
      this.sampler.stop();
    }
  }

  /** Searches every place; `extraDirs` are more trees the scenario's steps wrote (a backup dir). */
  audit(extraDirs: { dir: string; place: string }[] = []): Audit {
    const hits: Hit[] = [];
    let places = 0;
    const masked = new Set<string>();
    for (const [i, step] of this.steps.entries()) {
      const name = `${step.action} ${step.phase} #${i + 1}`;
      // The log as printed, minus the ::add-mask:: commands that hand secrets to the runner.
      const printed = step.log
        .split('\n')
        .filter((l) => !l.startsWith('::add-mask::'))
        .join('\n');
      hits.push(...searchText(printed, `${name} log`, this.canaries));
      hits.push(...searchText(step.summary, `${name} job summary`, this.canaries));
      hits.push(...searchText(JSON.stringify(step.outputs), `${name} outputs`, this.canaries));
      hits.push(...searchText(JSON.stringify(step.annotations), `${name} annotations`, this.canaries));
      hits.push(...searchText(JSON.stringify(step.state), `${name} STATE_*`, this.canaries));
      places += 5;
      for (const c of this.canaries) {
        const parts = [c.value.trim(), ...c.value.split('\n').map((l) => l.trim())].filter((p) => p.length >= 12);
        if (step.masks.some((m) => parts.includes(m.trim()))) masked.add(c.label);
      }
    }
    for (const line of this.sampler.seen) hits.push(...searchText(line, `argv of a process: ${line.slice(0, 200)}`, this.canaries));
    places += this.sampler.seen.size;
    // RUNNER_TEMP holds the Slipway state file, ssh key files while they live, backups, the
    // runner's file commands. The GITHUB_ENV file is where a step hands env-file values to later
    // steps on purpose (the runner keeps it on disk the same way), so it is not a leak.
    const runnerEnvFile = (p: string): boolean => /_runner_file_commands\/step-\d+\/env$/.test(p);
    for (const { dir, place, skip } of [
      { dir: this.job.runnerTemp, place: 'RUNNER_TEMP', skip: runnerEnvFile },
      { dir: this.job.home, place: 'HOME', skip: () => false },
      { dir: this.job.toolCache, place: 'RUNNER_TOOL_CACHE', skip: (p: string) => /\/(site-packages|lib\/python3)/.test(p) },
      ...extraDirs.map((e) => ({ ...e, skip: () => false })),
    ]) {
      const r = searchTree(dir, place, this.canaries, skip);
      hits.push(...r.hits);
      places += r.files;
    }
    // Generated files in the workspace: new or changed since the run began, except the test's own.
    walk(this.job.workspace, (p) => {
      if (this.ownFiles.includes(p) || /\/(\.venv|node_modules)\//.test(p)) return;
      const mtime = fs.statSync(p).mtimeMs;
      if (this.before.get(p) === mtime) return;
      places++;
      hits.push(...searchText(fs.readFileSync(p), `workspace: ${path.relative(this.job.workspace, p)}`, this.canaries));
    });
    return { hits, places, masked };
  }
}

function walk(dir: string, visit: (file: string) => void): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name === '.venv' || e.name === 'node_modules' || e.name === '__pycache__') continue;
      walk(p, visit);
    } else if (e.isFile()) visit(p);
  }
}

/** A readable failure: every hit on its own line. */
export function describeHits(hits: Hit[]): string {
  return hits.map((h) => `${h.canary} (${h.form}) found in ${h.place}`).join('\n');
}
