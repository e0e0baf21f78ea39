// A minimal GitHub Actions runner for the demo: runs the built action bundles under Node 24 as the
// runner does (INPUT_* with action.yml defaults, file commands fresh per step, env and PATH carried
// to later steps, post steps last-first with their STATE_*), and turns each job summary into text.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';

export class Job {
  constructor({ root, node, workspace, env }) {
    this.root = root;
    this.node = node;
    this.workspace = workspace;
    this.baseEnv = env;
    this.env = {};
    this.path = [];
    this.posts = [];
    this.failed = false;
    this.masks = new Set();
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-demo-job-'));
    this.base = base;
    this.runnerTemp = path.join(base, 'temp');
    this.toolCache = path.join(base, 'toolcache');
    fs.mkdirSync(this.runnerTemp, { recursive: true });
    fs.mkdirSync(this.toolCache, { recursive: true });
    this.counter = 0;
  }

  async run(action, inputs = {}) {
    const dir = path.join(this.root, 'actions', action);
    const yml = parseYaml(fs.readFileSync(path.join(dir, 'action.yml'), 'utf8'));
    const inputEnv = {};
    for (const [name, spec] of Object.entries(yml.inputs ?? {})) {
      const value =
        inputs[name] ?? (spec.default === undefined ? undefined : String(spec.default).replace(/\$\{\{\s*github\.token\s*\}\}/g, ''));
      if (value !== undefined) inputEnv[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;
    }
    const result = await this.exec(action, path.join(dir, yml.runs.main), inputEnv);
    if (yml.runs.post) {
      this.posts.push({
        action,
        script: path.join(dir, yml.runs.post),
        postIf: yml.runs['post-if'] ?? 'always()',
        state: result.state,
        inputEnv,
      });
    }
    return result;
  }

  async post() {
    const results = [];
    for (const p of this.posts.reverse()) {
      if (/success\(\)/.test(p.postIf) && this.failed) continue;
      const stateEnv = Object.fromEntries(Object.entries(p.state).map(([k, v]) => [`STATE_${k}`, v]));
      results.push(await this.exec(`${p.action} (post)`, p.script, { ...p.inputEnv, ...stateEnv }));
    }
    this.posts = [];
    return results;
  }

  cleanup() {
    fs.rmSync(this.base, { recursive: true, force: true });
  }

  async exec(label, script, extra) {
    const stepDir = path.join(this.runnerTemp, '_runner_file_commands', `step-${++this.counter}`);
    fs.mkdirSync(stepDir, { recursive: true });
    const files = {};
    for (const name of ['OUTPUT', 'ENV', 'PATH', 'STATE', 'STEP_SUMMARY']) {
      files[`GITHUB_${name}`] = path.join(stepDir, name.toLowerCase());
      fs.writeFileSync(files[`GITHUB_${name}`], '');
    }
    const env = {
      ...this.baseEnv,
      PATH: [...[...this.path].reverse(), this.baseEnv.PATH].join(path.delimiter),
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      GITHUB_WORKSPACE: this.workspace,
      RUNNER_TEMP: this.runnerTemp,
      RUNNER_TOOL_CACHE: this.toolCache,
      ...this.env,
      ...extra,
      ...files,
    };
    const started = Date.now();
    const { code, log } = await spawnLogged(this.node, [script], { cwd: this.workspace, env }, this.masks);
    const exported = parseKeyValue(fs.readFileSync(files.GITHUB_ENV, 'utf8'));
    Object.assign(this.env, exported);
    this.path.push(...fs.readFileSync(files.GITHUB_PATH, 'utf8').split('\n').filter(Boolean));
    if (code !== 0) this.failed = true;
    const failure = /^::error::(.*)$/m.exec(log)?.[1]?.replace(/%0A/g, '\n').replace(/%25/g, '%');
    return {
      label,
      code,
      log,
      failure,
      outputs: parseKeyValue(fs.readFileSync(files.GITHUB_OUTPUT, 'utf8')),
      state: parseKeyValue(fs.readFileSync(files.GITHUB_STATE, 'utf8')),
      summary: htmlToText(fs.readFileSync(files.GITHUB_STEP_SUMMARY, 'utf8')),
      seconds: (Date.now() - started) / 1000,
    };
  }
}

/** Runs a program, keeping its log; `::add-mask::` values are learned as they come. */
function spawnLogged(cmd, args, opts, masks) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const take = (chunk) => {
      const text = chunk.toString('utf8');
      for (const m of text.matchAll(/^::add-mask::(.+)$/gm)) if (m[1].trim()) masks.add(m[1].trim());
      log += text;
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('close', (code) => resolve({ code: code ?? 1, log: mask(log, masks) }));
  });
}

export function mask(text, masks) {
  let out = text;
  for (const m of [...masks].sort((a, b) => b.length - a.length)) out = out.split(m).join('***');
  return out;
}

function parseKeyValue(text) {
  const out = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (!line) continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const value = [];
      while (++i < lines.length && lines[i] !== heredoc[2]) value.push(lines[i]);
      out[heredoc[1]] = value.join('\n');
    } else {
      const eq = line.indexOf('=');
      if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
    }
  }
  return out;
}

/** Job summaries are HTML and Markdown: tables become "cell | cell" lines, headings plain lines. */
export function htmlToText(html) {
  return html
    .replace(/<\/(h\d|p|div|tr|li|table|pre)>/g, '\n')
    .replace(/<br\s*\/?>/g, '\n')
    .replace(/<\/t[hd]>\s*<t[hd][^>]*>/g, ' | ')
    .replace(/<[^>]+>/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l, i, all) => l !== '' || (i > 0 && all[i - 1] !== ''))
    .join('\n')
    .trim();
}
