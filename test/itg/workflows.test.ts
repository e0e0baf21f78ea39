/**
 * The starter workflows (workflow-templates/) and every variant `slipway init` writes pass
 * actionlint and GitHub's own parser (@actions/workflow-parser), and keep the rules the issue
 * sets: no expression inside a run: script, least-privilege permissions, OIDC only where a cloud
 * needs it, one concurrency group per environment that never cancels a deploy in progress.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { registerHooks } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { GENERIC_PROFILE, PROVIDERS, renderCd, renderCi, renderRollback, type Profile } from '../../packages/cli/src/workflows';
import { REPO_ROOT } from '../harness/job';

const TEMPLATES = path.join(REPO_ROOT, 'workflow-templates');

// @actions/workflow-parser imports its schema JSON without `with { type: 'json' }`, which
// bundlers accept and Node refuses: serve that one file as a module exporting the JSON.
registerHooks({
  load(url, context, nextLoad) {
    if (/@actions\/workflow-parser\/dist\/.*\.json$/.test(url)) {
      const text = fs.readFileSync(new URL(url), 'utf8');
      return { format: 'module', source: `export default ${text};`, shortCircuit: true };
    }
    return nextLoad(url, context);
  },
});
const { convertWorkflowTemplate, NoOperationTraceWriter, parseWorkflow } = await import('@actions/workflow-parser');

/** actionlint's folder: SLIPWAY_TOOLS_BIN, else what scripts/test-env/up.sh tools installs (it prints the folder). */
function toolsBin(): string {
  if (process.env.SLIPWAY_TOOLS_BIN) return process.env.SLIPWAY_TOOLS_BIN;
  const out = execFileSync('bash', [path.join(REPO_ROOT, 'scripts', 'test-env', 'up.sh'), 'tools'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 900_000,
  });
  return out.trim().split('\n').pop()!;
}

interface Variant {
  name: string;
  text: string;
}

function variants(): Variant[] {
  const out: Variant[] = [];
  for (const file of fs.readdirSync(TEMPLATES).filter((f) => f.endsWith('.yml'))) {
    out.push({ name: `template ${file}`, text: fs.readFileSync(path.join(TEMPLATES, file), 'utf8') });
  }
  const profiles: Profile[] = [
    ...PROVIDERS.map((provider) => ({ ...GENERIC_PROFILE, branch: 'main', provider })),
    { ...GENERIC_PROFILE, branch: 'main', database: 'mysql', workingDirectory: 'backend', shards: 1, pythonVersions: ['3.11'] },
    { ...GENERIC_PROFILE, branch: 'main', database: 'sqlite', shards: 3 },
  ];
  for (const p of profiles) {
    const tag = `${p.provider}/${p.database}${p.workingDirectory ? `/${p.workingDirectory}` : ''}`;
    out.push(
      { name: `ci ${tag}`, text: renderCi(p) },
      { name: `cd ${tag}`, text: renderCd(p) },
      { name: `rollback ${tag}`, text: renderRollback(p) },
    );
  }
  return out;
}

/** The inputs an action of ours declares (actions/<name>/action.yml). */
function actionInputs(name: string): Record<string, { required?: boolean }> {
  const meta = parseYaml(fs.readFileSync(path.join(REPO_ROOT, 'actions', name, 'action.yml'), 'utf8')) as {
    inputs: Record<string, { required?: boolean }>;
  };
  return meta.inputs;
}

/** The provider a workflow deploys to or rolls back on; undefined for CI. */
function providerOf(jobs: Record<string, Job>): string | undefined {
  for (const job of Object.values(jobs)) {
    const step = job.steps.find((s) => /actions\/(deploy|rollback)@/.test(s.uses ?? ''));
    if (step) return String(step.with?.provider);
  }
  return undefined;
}

type Job = {
  permissions?: Record<string, string>;
  environment?: unknown;
  concurrency?: { group: string; 'cancel-in-progress'?: boolean };
  steps: { uses?: string; run?: string; with?: Record<string, unknown> }[];
};

describe('starter workflows', () => {
  let dir: string;
  let bin: string;
  const all = variants();

  beforeAll(() => {
    bin = toolsBin();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-workflows-'));
    all.forEach((v, i) => fs.writeFileSync(path.join(dir, `${i}.yml`), v.text));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('pass actionlint', () => {
    const files = all.map((_, i) => path.join(dir, `${i}.yml`));
    const result = spawnSync(path.join(bin, 'actionlint'), ['-no-color', ...files], { encoding: 'utf8' });
    const named = result.stdout.replace(/(\S+?)(\d+)\.yml:/g, (_m, _d: string, i: string) => `${all[Number(i)]!.name}:`);
    expect(named, 'actionlint findings').toBe('');
    expect(result.status).toBe(0);
  });

  it('actionlint does find a mistake (the check can fail)', () => {
    const bad = path.join(dir, 'bad.yml');
    fs.writeFileSync(bad, all[0]!.text.replace('runs-on: ubuntu-latest', 'runs-on: ubuntu-latest\n    timeout-minutes: soon'));
    const result = spawnSync(path.join(bin, 'actionlint'), ['-no-color', bad], { encoding: 'utf8' });
    expect(result.status).not.toBe(0);
    expect(result.stdout).toMatch(/timeout-minutes/);
  });

  it.each(all.map((v) => [v.name, v] as const))('%s passes GitHub’s workflow parser', async (_name, v) => {
    const parsed = parseWorkflow({ name: 'workflow.yml', content: v.text }, new NoOperationTraceWriter());
    expect(parsed.context.errors.getErrors().map((e) => e.message)).toEqual([]);
    const template = await convertWorkflowTemplate(parsed.context, parsed.value!);
    expect(template.errors ?? []).toEqual([]);
    expect(template.jobs.length).toBeGreaterThan(0);
  });

  it.each(all.map((v) => [v.name, v] as const))('%s keeps the rules', (_name, v) => {
    expect(v.text, 'no expression in a run: script').not.toMatch(/^\s*(-\s+)?run:/m);
    const wf = parseYaml(v.text) as { permissions?: unknown; jobs: Record<string, Job> };
    expect(wf.permissions, 'workflow-level permissions are set').toBeDefined();
    const provider = providerOf(wf.jobs);
    const cloud = provider === 'aws-eb' || provider === 'cloud-run';
    // GHCR for ssh and heroku (IMAGE_REGISTRY may name another); the clouds' own registries.
    const registryHost = cloud ? '${{ vars.IMAGE_REGISTRY }}' : "${{ vars.IMAGE_REGISTRY || 'ghcr.io' }}";
    for (const [id, job] of Object.entries(wf.jobs)) {
      const perms = job.permissions ?? (wf.permissions as Record<string, string>);
      const pushes = job.steps.some((s) => s.uses?.includes('build-image') && s.with?.push === true);
      const pulls = job.steps.some((s) => s.uses?.includes('docker/login-action'));
      expect(perms.packages === 'write', `${id}: packages: write only where pushing to GHCR`).toBe(pushes && !cloud);
      expect(perms.packages === 'read', `${id}: packages: read only where pulling from GHCR`).toBe(pulls && !cloud);
      const authenticates = job.steps.some((s) => /configure-aws-credentials|google-github-actions\/auth/.test(s.uses ?? ''));
      expect(perms['id-token'] === 'write', `${id}: id-token: write only with OIDC`).toBe(authenticates);
      // The clouds: every job that pushes, migrates, deploys or rolls back has short-lived credentials.
      const touchesCloud = pushes || pulls || job.steps.some((s) => /actions\/(deploy|rollback)@/.test(s.uses ?? ''));
      expect(authenticates, `${id}: OIDC exactly where a cloud is reached`).toBe(cloud && touchesCloud);
      for (const s of job.steps) {
        if (s.uses && !s.uses.startsWith('slipway-dev/slipway/')) expect(s.uses).toMatch(/@v\d+$/);
      }
      // migrate reads setup-django's state (the project's Python, manage.py, settings module).
      const migrateAt = job.steps.findIndex((s) => /actions\/migrate@/.test(s.uses ?? ''));
      const setupAt = job.steps.findIndex((s) => /actions\/setup-django@/.test(s.uses ?? ''));
      if (migrateAt >= 0) expect(setupAt, `${id}: setup-django before migrate`).toBeGreaterThanOrEqual(0);
      if (migrateAt >= 0) expect(setupAt, `${id}: setup-django before migrate`).toBeLessThan(migrateAt);
      // One registry everywhere: GHCR unless the IMAGE_REGISTRY variable names another.
      for (const s of job.steps) {
        const registry = s.uses?.includes('build-image')
          ? String(s.with?.image).split('/')[0]
          : s.uses?.includes('docker/login-action')
            ? s.with?.registry
            : undefined;
        if (registry !== undefined) expect(registry, `${id}: ${s.uses}`).toBe(registryHost);
      }
      // Every input given to one of our actions exists in its action.yml; every required one is given.
      for (const s of job.steps) {
        const ours = /^slipway-dev\/slipway\/actions\/([a-z-]+)@/.exec(s.uses ?? '');
        if (!ours) continue;
        const inputs = actionInputs(ours[1]!);
        for (const key of Object.keys(s.with ?? {})) expect(inputs, `${id}: ${ours[1]} has no input \`${key}\``).toHaveProperty([key]);
        for (const [key, spec] of Object.entries(inputs)) {
          if (spec.required) expect(s.with ?? {}, `${id}: ${ours[1]} needs \`${key}\``).toHaveProperty([key]);
        }
      }
      const touchesEnvironment = job.steps.some((s) => /actions\/(migrate|deploy|rollback)@/.test(s.uses ?? ''));
      if (touchesEnvironment) {
        expect(job.environment, `${id}: runs in a GitHub environment`).toBeDefined();
        expect(job.concurrency?.group, `${id}: concurrency per environment`).toMatch(/^deploy-/);
        expect(job.concurrency?.['cancel-in-progress'], `${id}: never cancelled while migrating`).toBe(false);
        expect(perms.deployments).toBe('write');
      }
    }
  });

  it('production waits for staging, and both use their own environment', () => {
    const wf = parseYaml(renderCd(GENERIC_PROFILE)) as { jobs: Record<string, Job & { needs: unknown }> };
    expect(wf.jobs.production!.needs).toEqual(['build', 'staging']);
    expect(wf.jobs.staging!.environment).toMatchObject({ name: 'staging' });
    expect(wf.jobs.production!.environment).toMatchObject({ name: 'production' });
  });

  it('ssh: each environment may have its own app and ports on one server; the first deploy sets the host up', () => {
    const wf = parseYaml(renderCd({ ...GENERIC_PROFILE, provider: 'ssh' })) as { jobs: Record<string, Job> };
    for (const env of ['staging', 'production']) {
      const deploy = wf.jobs[env]!.steps.find((s) => s.uses?.includes('actions/deploy@'))!;
      expect(deploy.with).toMatchObject({
        'app-name': '${{ vars.APP_NAME }}',
        'app-port': '${{ vars.APP_PORT }}',
        'proxy-port': '${{ vars.PROXY_PORT }}',
        'setup-host': true,
      });
    }
    const rollback = (
      parseYaml(renderRollback({ ...GENERIC_PROFILE, provider: 'ssh' })) as { jobs: Record<string, Job> }
    ).jobs.rollback!.steps.find((s) => s.uses?.includes('actions/rollback@'))!;
    expect(rollback.with).toMatchObject({ 'app-name': '${{ vars.APP_NAME }}', 'proxy-port': '${{ vars.PROXY_PORT }}' });
    expect(rollback.with).not.toHaveProperty('setup-host');
  });

  it('every template has a properties file in GitHub’s template convention, and each one a template', () => {
    const files = fs.readdirSync(TEMPLATES);
    const workflows = files.filter((n) => n.endsWith('.yml'));
    const properties = files.filter((n) => n.endsWith('.properties.json'));
    expect(properties.map((f) => f.replace('.properties.json', '.yml')).sort()).toEqual(workflows.sort());
    const names = new Set<string>();
    for (const f of properties) {
      const props = JSON.parse(fs.readFileSync(path.join(TEMPLATES, f), 'utf8')) as {
        name: string;
        description: string;
        iconName: string;
        categories: string[];
        filePatterns: string[];
      };
      expect(Object.keys(props).sort(), f).toEqual(['categories', 'description', 'filePatterns', 'iconName', 'name']);
      expect(names.has(props.name), `${f}: a name of its own`).toBe(false);
      names.add(props.name);
      expect(props.description.length, f).toBeGreaterThan(20);
      // An octicon, or an SVG beside the templates (GitHub looks for <iconName>.svg there).
      if (!props.iconName.startsWith('octicon ')) expect(fs.existsSync(path.join(TEMPLATES, `${props.iconName}.svg`)), f).toBe(true);
      expect(props.filePatterns).toContain('manage\\.py$');
      for (const pattern of props.filePatterns) expect(() => new RegExp(pattern), `${f}: ${pattern}`).not.toThrow();
      const wf = parseYaml(fs.readFileSync(path.join(TEMPLATES, f.replace('.properties.json', '.yml')), 'utf8')) as {
        jobs: Record<string, Job>;
      };
      expect(props.categories, f).toContain('Python');
      expect(props.categories, f).toContain(providerOf(wf.jobs) ? 'Deployment' : 'Continuous integration');
    }
  });

  it('a CD template for every provider deploy knows', () => {
    const deployed = fs
      .readdirSync(TEMPLATES)
      .filter((n) => /^django-cd.*\.yml$/.test(n))
      .map((n) => providerOf((parseYaml(fs.readFileSync(path.join(TEMPLATES, n), 'utf8')) as { jobs: Record<string, Job> }).jobs));
    expect(deployed.sort()).toEqual([...PROVIDERS].sort());
  });
});
