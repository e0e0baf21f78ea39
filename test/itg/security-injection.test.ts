/**
 * Injection corpus: every input of every action (read from its action.yml), one at a time, gets
 * every payload of test/security/injection.ts while the other inputs hold a cheap configuration
 * that gets past validation to the first real operation (a seeded setup-django state on a copy
 * of the example app, a Dockerfile that fails at its COPY, an SSH host that refuses at once).
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
import { ACTIONS, CI_PAYLOADS, inputsOf, PAYLOADS, STACK_TRACE, type ActionName } from '../security/injection';

const CORPUS = process.env.SLIPWAY_SECURITY_FULL === '1' ? PAYLOADS : CI_PAYLOADS;

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

interface Case {
  action: ActionName;
  input: string;
  payload: string;
  marker: string;
  value: string;
}

interface Outcome extends Case {
  step?: StepResult;
  problem?: string;
}

async function runCase(c: Case): Promise<Outcome> {
  const { job } = workspaceFor(c.action);
  try {
    const step = await job.run(c.action, { ...base(c.action), [c.input]: c.value }, { timeoutMs: STEP_TIMEOUT_MS });
    await job.post();
    let problem: string | undefined;
    if (step.durationMs >= STEP_TIMEOUT_MS - 500) problem = 'did not exit (killed at the timeout)';
    else if (STACK_TRACE.test(step.log)) problem = `printed a stack trace:\n${step.log.slice(0, 2000)}`;
    else if (step.exitCode !== 0 && !step.failure) problem = `failed without an ::error:: line:\n${step.log.slice(-1500)}`;
    return { ...c, step, problem };
  } finally {
    fs.rmSync(job.workspace, { recursive: true, force: true });
    fs.rmSync(path.dirname(job.home), { recursive: true, force: true });
  }
}

async function pool<T, R>(items: T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

beforeAll(() => {
  venv = preparedVenv([path.join(REPO_ROOT, 'example', 'requirements.txt')]);
  markers = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-injection-'));
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-injection-key-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', path.join(keyDir, 'id')]);
  sshKey = fs.readFileSync(path.join(keyDir, 'id'), 'utf8');
  fs.rmSync(keyDir, { recursive: true, force: true });
});

const totals = { inputs: 0, runs: 0, executions: 0, rejected: 0 };

afterAll(() => {
  console.log(
    `injection: ${totals.inputs} inputs × ${CORPUS.length} payloads, executions: ${totals.executions} ` +
      `(${totals.runs} runs; ${totals.rejected} failed with a message, ${totals.runs - totals.rejected} treated the value as data)`,
  );
  fs.rmSync(markers, { recursive: true, force: true });
});

describe('injection corpus', () => {
  it.each(ACTIONS.map((a) => [a]))('%s: no input executes a payload, hangs, or prints a stack trace', async (action) => {
    const cases: Case[] = [];
    for (const input of inputsOf(action)) {
      CORPUS.forEach((p, i) => {
        const marker = path.join(markers, `${action}.${input}.${i}`);
        cases.push({ action, input, payload: p.name, marker, value: p.value(marker) });
      });
    }
    const outcomes = await pool(cases, CONCURRENCY, runCase);
    const executed = fs.readdirSync(markers).filter((f) => f.startsWith(`${action}.`));
    totals.inputs += inputsOf(action).length;
    totals.runs += cases.length;
    totals.executions += executed.length;
    totals.rejected += outcomes.filter((o) => o.step && o.step.exitCode !== 0).length;
    expect(executed, `marker files created: ${executed.join(', ')}`).toEqual([]);
    const problems = outcomes.filter((o) => o.problem).map((o) => `${o.action} \`${o.input}\` = ${o.payload}: ${o.problem}`);
    expect(problems, problems.join('\n\n')).toEqual([]);
  });
});
