import * as fs from 'node:fs';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copyProject, emptyWorkspace, Job, type StepResult } from '../harness/job';
import { TEST_CACHE } from '../harness/python-env';

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
const ENV = { UV_PYTHON_DOWNLOADS: 'never', UV_CACHE_DIR: path.join(TEST_CACHE, 'setup-django-uv-cache') };

async function fails(workspace: string, inputs: Record<string, string>): Promise<{ step: StepResult; job: Job }> {
  fs.mkdirSync(TOOL_CACHE, { recursive: true });
  const job = track(new Job({ workspace, env: ENV, toolCache: TOOL_CACHE }));
  const step = await job.run('setup-django', { cache: 'false', ...inputs });
  expect(step.exitCode).toBe(1);
  expect(step.failure).toMatch(/^setup-django failed: \S/);
  expect(step.failure).not.toContain('\n');
  expect(step.log).not.toMatch(/^\s+at .*:\d+:\d+\)?$/m);
  expect(step.annotations.filter((a) => a.level === 'error')).toHaveLength(1);
  // Nothing half-done for later steps: no env, no PATH entry, no outputs, no venv left behind.
  expect(job.env).toEqual({});
  expect(job.path).toEqual([]);
  expect(step.outputs).toEqual({});
  expect(fs.existsSync(path.join(workspace, '.venv'))).toBe(false);
  return { step, job };
}

function tree(files: Record<string, string>): string {
  const root = emptyWorkspace();
  scratch.push(root);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    fs.writeFileSync(path.join(root, name), text);
  }
  return root;
}

const MANAGE = 'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")\n';

describe('setup-django bad input: one clear line, exit 1, nothing left active', () => {
  it('unknown package manager', async () => {
    const { step } = await fails(project('example'), { 'package-manager': 'conda' });
    expect(step.failure).toBe('setup-django failed: Input `package-manager` must be one of auto, pip, uv, poetry, pipenv; got "conda".');
  });

  it('the lockfile a forced manager needs is missing', async () => {
    const { step } = await fails(project('example'), { 'package-manager': 'poetry' });
    expect(step.failure).toBe(
      'setup-django failed: `package-manager: poetry` needs poetry.lock, found none in .: commit it (`poetry lock`) or set `package-manager` to auto.',
    );
  });

  it('a Pipfile edited after `pipenv lock`: the stale lock is refused before any venv exists', async () => {
    const ws = project('test/fixtures/pipenv-project');
    fs.appendFileSync(path.join(ws, 'Pipfile'), '\n[packages.requests]\nversion = "*"\n');
    const { step } = await fails(ws, { installer: 'pip' });
    expect(step.failure).toBe(
      'setup-django failed: Pipfile.lock is out of date with Pipfile (edited after the last `pipenv lock`): run `pipenv lock` and commit Pipfile.lock.',
    );
  });

  it('a pyproject.toml edited after `uv lock`: uv sync --locked refuses, one line', async () => {
    const ws = project('test/fixtures/uv-project');
    const file = path.join(ws, 'pyproject.toml');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"django>=5.2,<5.3",', '"django>=5.2,<5.3",\n    "sqlparse>=0.5",'));
    const { step } = await fails(ws, {});
    expect(step.failure).toBe(
      'setup-django failed: uv.lock is out of date with pyproject.toml (edited after the last `uv lock`): run `uv lock` and commit uv.lock.',
    );
  });

  it("a pyproject.toml edited after `poetry lock`: one line, not poetry's output", async () => {
    const ws = project('test/fixtures/poetry-project');
    const file = path.join(ws, 'pyproject.toml');
    fs.writeFileSync(
      file,
      fs.readFileSync(file, 'utf8').replace('"django (>=5.2,<5.3)",', '"django (>=5.2,<5.3)",\n    "sqlparse (>=0.5)",'),
    );
    const { step } = await fails(ws, {});
    expect(step.failure).toBe(
      'setup-django failed: poetry.lock is out of date with pyproject.toml (edited after the last `poetry lock`): run `poetry lock` and commit poetry.lock.',
    );
  });

  it('a Python version that is nowhere: the version and every place looked in', async () => {
    const { step } = await fails(project('example'), { 'python-version': '3.99' });
    expect(step.failure).toMatch(
      /^setup-django failed: Could not find Python 3\.99 \(from Input `python-version`\): looked in tool-cache \(none\); pyenv \(3\.13\.0, 3\.12\.1, .*\); PATH \(.*\); uv managed Pythons \(.*\)\. Fix: /,
    );
  });

  it('no manage.py', async () => {
    const { step } = await fails(tree({ 'requirements.txt': 'django\n' }), {});
    expect(step.failure).toMatch(/^setup-django failed: No manage\.py found in the workspace: .*`working-directory`/);
  });

  it('two manage.py candidates', async () => {
    const { step } = await fails(tree({ 'a/manage.py': MANAGE, 'b/manage.py': MANAGE }), {});
    expect(step.failure).toBe(
      'setup-django failed: Several manage.py files found (a/manage.py, b/manage.py): set `working-directory` to the one to use.',
    );
  });

  it('malformed env-file names the file and line', async () => {
    const ws = project('example');
    fs.writeFileSync(path.join(ws, 'ci.env'), 'GOOD=1\nBAD LINE WITHOUT EQUALS\n');
    const { step } = await fails(ws, { 'env-file': 'ci.env' });
    expect(step.failure).toBe('setup-django failed: env-file ci.env line 2: expected KEY=value.');
  });

  it('wait-for timeout names the service (password hidden)', async () => {
    // A port that was just free: nothing listens there.
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const { step } = await fails(project('example'), {
      'wait-for': `postgres://app:s3cret-pw@127.0.0.1:${port}/db`,
      'wait-timeout': '2s',
    });
    expect(step.failure).toBe(
      `setup-django failed: \`wait-for\`: postgres://app:***@127.0.0.1:${port}/db was not ready after 2s (ECONNREFUSED): start the service or raise \`wait-timeout\`.`,
    );
  });
});
