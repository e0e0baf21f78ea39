/**
 * The injection corpus: values that would run a command if any input reached a shell, an option
 * parser or a remote command line unquoted. Each `touch` targets an absolute marker path.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { REPO_ROOT } from '../harness/job';

export const ACTIONS = ['setup-django', 'run-tests', 'build-image', 'migrate', 'deploy', 'rollback'] as const;
export type ActionName = (typeof ACTIONS)[number];

/** Every input an action declares (all action inputs are strings to the runner). */
export function inputsOf(action: ActionName): string[] {
  const yml = parseYaml(fs.readFileSync(path.join(REPO_ROOT, 'actions', action, 'action.yml'), 'utf8')) as {
    inputs?: Record<string, unknown>;
  };
  return Object.keys(yml.inputs ?? {});
}

export interface Payload {
  name: string;
  value: (marker: string) => string;
}

export const PAYLOADS: Payload[] = [
  { name: '$(touch X)', value: (x) => `$(touch ${x})` },
  { name: '`touch X`', value: (x) => `\`touch ${x}\`` },
  { name: '"; touch X; "', value: (x) => `"; touch ${x}; "` },
  { name: "'; touch X; '", value: (x) => `'; touch ${x}; '` },
  { name: 'a\\ntouch X', value: (x) => `a\ntouch ${x}` },
  { name: '--help', value: () => '--help' },
  { name: '-o ProxyCommand=touch X', value: (x) => `-o ProxyCommand=touch ${x}` },
  { name: '10,000 chars', value: (x) => `${x}${'A'.repeat(10_000 - x.length)}` },
  // An environment variable cannot carry invalid UTF-8 from the runner (it passes inputs as
  // UTF-16 strings) nor from Node's spawn: lone surrogates arrive as U+FFFD, next to control
  // characters, an ANSI escape and a right-to-left override.
  { name: 'non-UTF-8 / control bytes', value: (x) => `\udc80\udcff\ufffd\u0001\u001b[31m\u202e;touch ${x}` },
];

/**
 * CI's corpus: the five shell payloads in one value (any shell that evaluates the value runs at
 * least one of them), then the option-like, long and non-UTF-8 ones. SLIPWAY_SECURITY_FULL=1
 * runs every payload of PAYLOADS on its own instead.
 */
export const CI_PAYLOADS: Payload[] = [
  {
    name: 'all shell forms at once',
    value: (x) =>
      PAYLOADS.slice(0, 5)
        .map((p) => p.value(x))
        .join(' '),
  },
  ...PAYLOADS.slice(5),
];

/** Python, JavaScript and shell stack traces a user should never see. */
export const STACK_TRACE = /Traceback \(most recent call last\)|^\s+at .+[(\s]\/?[^\s()]+:\d+:\d+\)?$|node:internal\//m;

/** What one run of an action did, as the corpus judges it. */
export interface RunOutcome {
  exitCode: number;
  /** The step's `::error::` line, if it failed. */
  failure?: string;
  /** A hang, a stack trace or a failure without an `::error::` line. */
  problem?: string;
}

/** How one input took one payload. */
export interface Verdict {
  input: string;
  /** `rejected`: a run failed with a message naming this input; `data`: carried to the first real operation. */
  verdict: 'rejected' | 'data';
  /** The failure line that judged it (the input's refusal, or the later failure it reached). */
  failure?: string;
}

export interface Judgement {
  verdicts: Verdict[];
  problems: { inputs: string[]; problem: string }[];
  runs: number;
}

/** A failure line with what varies between runs (paths, numbers, quoted values) blanked. */
export function normalizeFailure(failure: string | undefined): string {
  return (failure ?? '')
    .replace(/"(?:[^"\\]|\\.)*"/g, '"…"')
    .replace(/\/(?:tmp|var\/tmp)\/[^\s`'",:;)]+/g, '<tmp>')
    .replace(/\d+(\.\d+)?/g, '0');
}

/**
 * Judges how every input in `inputs` takes one payload, with as few runs as is honest. `run`
 * executes the action with the payload in every input of the set it is given (the others at
 * their cheap configuration); `base` is the run with no payload at all.
 *
 * All inputs start in one run. A run that fails naming one of its inputs (the action's
 * "Input `x` …" line) has judged that input: it is taken out and the rest run again. A run that
 * ends like the base run (the first real operation's failure) has carried every input it held
 * past validation: each of them is judged `data`. Anything else (another failure, a hang, a
 * stack trace) is split in halves until a single input is left, so every problem is pinned to
 * the input that caused it. With `batch` false every input runs alone (the exhaustive mode).
 */
export async function judgeInputs(
  inputs: string[],
  run: (set: string[]) => Promise<RunOutcome>,
  base: RunOutcome,
  batch = true,
): Promise<Judgement> {
  const out: Judgement = { verdicts: [], problems: [], runs: 0 };
  const baseline = `${base.exitCode === 0}:${normalizeFailure(base.failure)}`;
  const settle = async (set: string[]): Promise<void> => {
    if (set.length === 0) return;
    const o = await run(set);
    out.runs++;
    const halves = (): Promise<unknown> => {
      const mid = Math.ceil(set.length / 2);
      return Promise.all([settle(set.slice(0, mid)), settle(set.slice(mid))]);
    };
    if (o.problem) {
      if (set.length === 1) out.problems.push({ inputs: set, problem: o.problem });
      else await halves();
      return;
    }
    if (`${o.exitCode === 0}:${normalizeFailure(o.failure)}` === baseline) {
      for (const input of set) out.verdicts.push({ input, verdict: 'data', failure: o.failure });
      return;
    }
    const named = [...(o.failure ?? '').matchAll(/`([^`\s]+)`/g)].map((m) => m[1]!).find((name) => set.includes(name));
    if (o.exitCode !== 0 && named) {
      out.verdicts.push({ input: named, verdict: 'rejected', failure: o.failure });
      await settle(set.filter((i) => i !== named));
      return;
    }
    if (set.length === 1) out.verdicts.push({ input: set[0]!, verdict: 'data', failure: o.failure });
    else await halves();
  };
  if (batch) await settle(inputs);
  else await Promise.all(inputs.map((i) => settle([i])));
  return out;
}
