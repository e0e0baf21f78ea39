import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as core from '@actions/core';
import { findManagePy, inspectDjango, settingsModuleFromManagePy } from '@slipway/toolkit/django';
import { UserError } from '@slipway/toolkit/errors';
import { execTool } from '@slipway/toolkit/exec';
import { findInterpreter } from '@slipway/toolkit/interpreter';
import { annotate, formatMs, Phases } from '@slipway/toolkit/log';
import { detectProject } from '@slipway/toolkit/package-manager';
import { isVenv, venvBin, venvPython } from '@slipway/toolkit/python';
import { readWantedPython } from '@slipway/toolkit/python-version';
import { workspaceDir } from '@slipway/toolkit/runner';
import { looksSecret, maskSecret } from '@slipway/toolkit/secrets';
import { saveState } from '@slipway/toolkit/state';
import { writeSummary } from '@slipway/toolkit/summary';
import { readOrigin, relocateVenv, restoreVenv, venvCacheKey, writeOrigin, type RestoreResult } from '@slipway/toolkit/venv-cache';
import { waitForAll } from '@slipway/toolkit/wait-for';
import { checkLocation, getInputs, parseCheckOutput } from './context';
import { installDependencies } from './install';
import { ensureUv } from './tools';
import { installSystemPackages } from './system-packages';

/** What main hands to post (the runner keeps it as action state). */
export interface CacheState {
  enabled: boolean;
  key: string;
  venv: string;
  exactHit: boolean;
}
export const CACHE_STATE = 'setup-django-cache';

export async function main(): Promise<void> {
  const inputs = getInputs();
  const phases = new Phases();
  const root = workspaceDir();

  const { managePy, settingsModule } = await phases.phase('Finding the Django project', async () => {
    const managePy = findManagePy(root, inputs.workingDirectory || undefined);
    const fromManagePy = settingsModuleFromManagePy(fs.readFileSync(managePy, 'utf8'));
    const settingsModule =
      inputs.settingsModule || inputs.envFile.get('DJANGO_SETTINGS_MODULE') || process.env.DJANGO_SETTINGS_MODULE || fromManagePy;
    if (!settingsModule) {
      throw new UserError(
        `${path.relative(root, managePy)} sets no DJANGO_SETTINGS_MODULE: set the \`settings-module\` input (e.g. mysite.settings).`,
      );
    }
    core.info(`manage.py: ${managePy}`);
    core.info(`settings module: ${settingsModule}`);
    return { managePy, settingsModule };
  });
  const projectDir = path.dirname(managePy);
  const searchDirs = ancestors(projectDir, root);

  // Everything later steps see is collected here and exported only once all went well.
  const exported = new Map<string, string>();
  for (const [name, value] of inputs.envFile) {
    if (looksSecret(name) || inputs.secretKeys.includes(name)) maskSecret(value);
    exported.set(name, value);
  }
  if (!process.env.SECRET_KEY && !exported.has('SECRET_KEY')) {
    const key = randomBytes(64).toString('base64url');
    maskSecret(key);
    exported.set('SECRET_KEY', key);
    core.info('SECRET_KEY is not set: using a throwaway one for this job (masked).');
  }
  exported.set('DJANGO_SETTINGS_MODULE', settingsModule);
  const childEnv = Object.fromEntries(exported);

  // Services start while dependencies install; their verdict is awaited at the end.
  const waiting = inputs.waitFor.length ? settle(waitForAll(inputs.waitFor, inputs.waitTimeoutMs)) : undefined;

  if (inputs.systemPackages.length) {
    await phases.phase('Installing system packages', () => installSystemPackages(inputs.systemPackages, process.getuid?.() === 0));
  }

  const interpreter = await phases.phase('Resolving Python', async () => {
    const wanted = inputs.pythonVersion ?? readWantedPython(searchDirs);
    const found = await findInterpreter(wanted, () => ensureUv(pathPython()));
    core.info(`Python ${found.version} (${found.source}): ${found.path}${wanted ? ` for ${wanted.text} from ${wanted.source}` : ''}`);
    return found;
  });

  const project = detectProject(searchDirs, inputs.packageManager, inputs.requirements, root);
  const manager = project.kind === 'requirements' || project.kind === 'pyproject' ? inputs.installer : project.kind;
  const venv = path.join(project.dir, '.venv');
  const python = venvPython(venv);
  const { key, restoreKeys } = venvCacheKey({
    pythonVersion: interpreter.version,
    manager: `${project.kind}`,
    installer: inputs.installer,
    files: project.files,
    extras: inputs.extras,
    groups: inputs.groups,
    root,
    venv,
  });
  core.info(`Dependencies: ${project.kind} (${project.files.map((f) => path.relative(root, f)).join(', ')}), installed with ${manager}`);
  const existed = isVenv(venv);

  let restored: RestoreResult = { exactHit: false };
  if (inputs.cache) {
    restored = await phases.phase('Restoring the virtualenv', async () => {
      const result = await restoreVenv(venv, key, restoreKeys);
      core.info(result.matchedKey ? `Restored from ${result.matchedKey}${result.exactHit ? ' (exact)' : ''}` : `No cache entry for ${key}`);
      return result;
    });
  }

  let usable = false;
  try {
    if (restored.matchedKey) {
      usable = await phases.phase('Verifying the virtualenv', async () => {
        const origin = readOrigin(venv);
        // Same Python version (the key says so) but possibly another interpreter path or checkout:
        // relocate first, then check that the interpreter link resolves.
        const changed =
          origin?.pythonVersion === interpreter.version
            ? relocateVenv(venv, { venv, root, python: interpreter.path, pythonVersion: interpreter.version })
            : [];
        if (!origin || origin.pythonVersion !== interpreter.version || !isVenv(venv)) {
          core.info('The restored virtualenv does not match this Python: building a fresh one.');
          fs.rmSync(venv, { recursive: true, force: true });
          return false;
        }
        if (changed.length) core.info(`Relocated ${changed.length} files from ${origin.venv}`);
        return true;
      });
    }
    if (!(usable && restored.exactHit)) {
      await phases.phase('Installing dependencies', () =>
        installDependencies({
          project,
          installer: inputs.installer,
          interpreter: interpreter.path,
          venv,
          extras: inputs.extras,
          groups: inputs.groups,
        }),
      );
      writeOrigin(venv, { venv, root, python: interpreter.path, pythonVersion: interpreter.version });
    }

    const django = await phases.phase('Inspecting Django', async () => {
      const info = await inspectDjango({ python, projectDir, settingsModule, env: childEnv });
      core.info(`Django ${info.djangoVersion}`);
      return info;
    });

    if (waiting) await phases.phase('Waiting for services', () => waiting.then((r) => r()));

    if (inputs.check !== 'false')
      await phases.phase('Running manage.py check', () => runCheck(python, managePy, settingsModule, inputs.check === 'deploy', childEnv));

    // Everything worked: make it visible to later steps.
    for (const [name, value] of exported) core.exportVariable(name, value);
    core.exportVariable('VIRTUAL_ENV', venv);
    core.addPath(venvBin(venv));
    const outputs: Record<string, string> = {
      'python-version': interpreter.version,
      'python-path': python,
      'venv-path': venv,
      'django-version': django.djangoVersion,
      'settings-module': settingsModule,
      'manage-py': managePy,
      'project-dir': projectDir,
      'package-manager': manager,
      'cache-hit': String(usable && restored.exactHit),
      'cache-key': key,
    };
    for (const [name, value] of Object.entries(outputs)) core.setOutput(name, value);
    saveState('setupDjango', {
      pythonPath: python,
      pythonVersion: interpreter.version,
      venvPath: venv,
      projectDir,
      managePy,
      settingsModule,
      djangoVersion: django.djangoVersion,
      packageManager: manager,
    });
    const cacheState: CacheState = { enabled: inputs.cache, key, venv, exactHit: usable && restored.exactHit };
    core.saveState(CACHE_STATE, JSON.stringify(cacheState));

    const cacheText = !inputs.cache
      ? 'off'
      : usable && restored.exactHit
        ? 'exact hit'
        : restored.matchedKey && usable
          ? `partial (${restored.matchedKey})`
          : 'miss';
    await writeSummary('setup-django', [
      {
        heading: '',
        rows: [
          ['Python', `${interpreter.version} (${interpreter.source})`],
          ['Dependencies', `${project.kind} via ${manager}`],
          ['Virtualenv', path.relative(root, venv) || venv],
          ['Cache', cacheText],
          ['Django', django.djangoVersion],
          ['manage.py', path.relative(root, managePy)],
          ['Settings module', settingsModule],
        ],
      },
      { heading: 'Phases', rows: [...phases.rows(), ['Total', formatMs(phases.timings.reduce((s, t) => s + t.ms, 0))]] },
    ]);
  } catch (error) {
    // Leave nothing half-built behind: a venv this step made (or restored) and could not finish goes.
    if (!existed) fs.rmSync(venv, { recursive: true, force: true });
    throw error;
  }
}

/** The folders from the project's up to the workspace root (the project's first). */
function ancestors(dir: string, root: string): string[] {
  const out = [dir];
  let current = dir;
  while (current !== root && current.startsWith(root + path.sep)) {
    current = path.dirname(current);
    out.push(current);
  }
  return out;
}

/** A Python to run pip with when uv has to be fetched before any interpreter was chosen. */
function pathPython(): string {
  return 'python3';
}

/** Holds a promise's outcome without an unhandled rejection; calling the result re-throws. */
function settle(p: Promise<void>): Promise<() => void> {
  return p.then(
    () => () => undefined,
    (error: unknown) => () => {
      throw error;
    },
  );
}

async function runCheck(
  python: string,
  managePy: string,
  settingsModule: string,
  deploy: boolean,
  env: Record<string, string>,
): Promise<void> {
  const result = await execTool(python, [managePy, 'check', ...(deploy ? ['--deploy'] : [])], {
    cwd: path.dirname(managePy),
    env,
    allowFailure: true,
    label: 'manage.py check',
  });
  const messages = parseCheckOutput(`${result.stdout}\n${result.stderr}`);
  for (const m of messages) {
    const where = checkLocation(m.object, path.dirname(managePy), settingsModule);
    const file = where.file ? path.relative(workspaceDir(), where.file) : undefined;
    annotate(m.level, `${m.object}: ${m.message}`, { title: `manage.py check ${m.id}`, file, line: where.line });
  }
  if (result.exitCode !== 0) {
    const errors = messages.filter((m) => m.level === 'error');
    const first = errors[0] ?? messages[0];
    const line = first ? `${first.id} ${first.message}` : (result.stderr.trim().split('\n').pop() ?? `exit code ${result.exitCode}`);
    throw new UserError(`\`manage.py check${deploy ? ' --deploy' : ''}\` found ${errors.length || 'some'} error(s); first: ${line}`);
  }
}
