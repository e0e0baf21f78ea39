/**
 * Injection corpus: every input of every action (read from its action.yml) gets every payload of
 * test/security/injection.ts while the other inputs hold a cheap configuration that gets past
 * validation to the first real operation (a seeded setup-django state on a copy of the example
 * app, a Dockerfile that fails at its COPY, an SSH host that refuses at once).
 *
 * Runs are batched (test/security/injection.ts `judgeInputs`): one run carries the payload in
 * every input of an action, each input with its own marker path; a run refused with a message
 * naming an input has judged that input, which is taken out before the next run; a run that
 * ends like the payload-free run has carried all its inputs past validation. So every
 * (input, payload) pair is still judged by a run of the real bundle, in far fewer processes.
 * SLIPWAY_SECURITY_FULL=1 runs each input alone with every payload instead (the exhaustive mode).
 *
 * For each run: no marker file appears, the process exits (no hang), no stack trace is printed,
 * and a failed step says why in its one ::error:: line.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyProject, Job, REPO_ROOT, type StepResult } from '../harness/job';
import { preparedVenv, seedSetupDjango } from '../harness/python-env';
import {
  ACTIONS,
  CI_PAYLOADS,
  inputsOf,
  judgeInputs,
  PAYLOADS,
  STACK_TRACE,
  type ActionName,
  type Judgement,
  type RunOutcome,
} from '../security/injection';

const FULL = process.env.SLIPWAY_SECURITY_FULL === '1';
const CORPUS = FULL ? PAYLOADS : CI_PAYLOADS;

const STEP_TIMEOUT_MS = 60_000;
const CONCURRENCY = 4;
let venv: string;
let markers: string;
let sshKey: string;
const DIGEST = `sha256:${'1'.repeat(64)}`;

/** The cheap configuration each action runs with, the payload replacing one of these. */
function base(action: ActionName): Record<string, string> {
  const ssh = {
    provider: 'ssh',
    environment: 'staging',
    hosts: 'root@127.0.0.1:1',
    'ssh-private-key': sshKey,
    'ssh-known-hosts': '[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBv1ZmSfbS0hb5Nq+7fC8xV9E+8sE4iHqk6rRZGnU2bW',
    'app-name': 'injection',
    'release-store': 'releases',
    'github-token': '',
  };
  switch (action) {
    case 'setup-django':
      return { cache: 'false', 'python-version': '3.12', 'working-directory': 'no-such-dir' };
    case 'run-tests':
      return { 'working-directory': 'no-such-dir' };
    case 'build-image':
      return { image: '127.0.0.1:1/injection/app', push: 'false', 'smoke-test': 'false', 'github-token': '' };
    case 'migrate':
      return { mode: 'check' };
    case 'deploy':
      return { ...ssh, image: `127.0.0.1:5000/injection/app@${DIGEST}` };
    case 'rollback':
      return { ...ssh, database: 'none' };
  }
}

function workspaceFor(action: ActionName): { job: Job } {
  const ws = copyProject('example');
  if (action === 'build-image') fs.writeFileSync(path.join(ws, 'Dockerfile'), 'FROM scratch\nCOPY no-such-file /x\n');
  const job = new Job({ workspace: ws, env: { UV_PYTHON_DOWNLOADS: 'never', DJANGO_DEBUG: 'true' } });
  if (action !== 'setup-django') seedSetupDjango(job, { venv, projectDir: ws, settingsModule: 'shop.settings' });
  return { job };
}

/** A counting semaphore: at most `n` action runs at once, whichever chain they belong to. */
function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (fn) => {
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}
const limit = limiter(CONCURRENCY);

/** One run of `action` with `values` over its cheap configuration; judged as the corpus requires. */
async function runOnce(action: ActionName, values: Record<string, string>): Promise<RunOutcome & { step: StepResult }> {
  return limit(async () => {
    const { job } = workspaceFor(action);
    try {
      const step = await job.run(action, { ...base(action), ...values }, { timeoutMs: STEP_TIMEOUT_MS });
      const posts = await job.post();
      let problem: string | undefined;
      const inputs = Object.keys(values).join(', ') || '(none)';
      if (step.durationMs >= STEP_TIMEOUT_MS - 500) problem = `did not exit (killed at the timeout); payload in: ${inputs}`;
      else if ([step, ...posts].some((s) => STACK_TRACE.test(s.log)))
        problem = `printed a stack trace:\n${[step, ...posts]
          .map((s) => s.log)
          .join('\n')
          .slice(0, 2000)}`;
      else if (step.exitCode !== 0 && !step.failure) problem = `failed without an ::error:: line:\n${step.log.slice(-1500)}`;
      return { exitCode: step.exitCode, failure: step.failure, problem, step };
    } finally {
      fs.rmSync(job.workspace, { recursive: true, force: true });
      fs.rmSync(path.dirname(job.home), { recursive: true, force: true });
    }
  });
}

const marker = (action: ActionName, input: string, payload: number): string => path.join(markers, `${action}.${input}.${payload}`);

beforeAll(() => {
  venv = preparedVenv([path.join(REPO_ROOT, 'example', 'requirements.txt')]);
  markers = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-injection-'));
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-injection-key-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', path.join(keyDir, 'id')]);
  sshKey = fs.readFileSync(path.join(keyDir, 'id'), 'utf8');
  fs.rmSync(keyDir, { recursive: true, force: true });
});

const totals = { inputs: 0, pairs: 0, runs: 0, executions: 0, rejected: 0, data: 0 };

afterAll(() => {
  console.log(
    `injection: ${totals.inputs} inputs × ${CORPUS.length} payloads, executions: ${totals.executions} ` +
      `(${totals.pairs} input-payload pairs judged in ${totals.runs} runs${FULL ? ', one input per run' : ''}: ` +
      `${totals.rejected} refused naming the input, ${totals.data} carried as data to the first real operation)`,
  );
  fs.rmSync(markers, { recursive: true, force: true });
});

/**
 * Every action's judgement, all chains sharing the runner pool: a chain is one (action, payload)
 * and runs its batches one after another, so chains of different actions fill the pool together.
 */
let judged: Promise<Map<ActionName, { base: RunOutcome; perPayload: Judgement[] }>> | undefined;
function judgeAll(): Promise<Map<ActionName, { base: RunOutcome; perPayload: Judgement[] }>> {
  judged ??= (async () => {
    const result = new Map<ActionName, { base: RunOutcome; perPayload: Judgement[] }>();
    await Promise.all(
      ACTIONS.map(async (action) => {
        const baseRun = await runOnce(action, {});
        const perPayload = await Promise.all(
          CORPUS.map((p, i) =>
            judgeInputs(
              inputsOf(action),
              (set) => runOnce(action, Object.fromEntries(set.map((input) => [input, p.value(marker(action, input, i))]))),
              baseRun,
              !FULL,
            ),
          ),
        );
        result.set(action, { base: baseRun, perPayload });
      }),
    );
    return result;
  })();
  return judged;
}

describe('injection corpus', () => {
  it.each(ACTIONS.map((a) => [a]))('%s: no input executes a payload, hangs, or prints a stack trace', async (action) => {
    const { base: baseRun, perPayload } = (await judgeAll()).get(action)!;
    expect(baseRun.problem, 'the run without a payload').toBeUndefined();
    const inputs = inputsOf(action);
    const executed = fs.readdirSync(markers).filter((f) => f.startsWith(`${action}.`));
    totals.inputs += inputs.length;
    totals.runs += 1 + perPayload.reduce((n, j) => n + j.runs, 0);
    totals.executions += executed.length;
    expect(executed, `marker files created: ${executed.join(', ')}`).toEqual([]);
    const problems: string[] = [];
    perPayload.forEach((j, i) => {
      // Every input judged exactly once for this payload, by a refusal naming it or a run carrying it.
      const seen = [...j.verdicts.map((v) => v.input), ...j.problems.flatMap((p) => p.inputs)].sort();
      expect(seen, `${action} × ${CORPUS[i]!.name}: every input judged once`).toEqual([...inputs].sort());
      totals.pairs += inputs.length;
      totals.rejected += j.verdicts.filter((v) => v.verdict === 'rejected').length;
      totals.data += j.verdicts.filter((v) => v.verdict === 'data').length;
      for (const p of j.problems) problems.push(`${action} \`${p.inputs.join('`, `')}\` = ${CORPUS[i]!.name}: ${p.problem}`);
      if (process.env.SLIPWAY_SECURITY_DEBUG)
        console.log(
          `${action} × ${CORPUS[i]!.name}: ${j.runs} runs; ` +
            j.verdicts.map((v) => `${v.input}=${v.verdict}${v.verdict === 'data' ? ` (${v.failure ?? 'ok'})` : ''}`).join('; '),
        );
    });
    expect(problems, problems.join('\n\n')).toEqual([]);
  });
});
