import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as core from '@actions/core';
import { CommandError, tail, UserError } from '@slipway/toolkit/errors';
import { displayCommand, execTool } from '@slipway/toolkit/exec';
import { parseJUnit, toJUnit, type TestResult } from '@slipway/toolkit/junit';
import { annotate, Phases } from '@slipway/toolkit/log';
import { runnerTemp, workspaceDir } from '@slipway/toolkit/runner';
import { planShards } from '@slipway/toolkit/sharding';
import { requireState } from '@slipway/toolkit/state';
import { writeSummary } from '@slipway/toolkit/summary';
import { checkMigrations, collectstatic, needsCollectstatic, ruff, systemCheck, type CheckEnv } from './checks';
import { collectArgv, getInputs, testArgv, type Inputs, type Runner } from './context';
import { detectRunner } from './detect';
import { coverageRcfile, measureCoverage } from './coverage';
import { annotateFailures, countResults, failuresOf, mergeAttempts, summarySections } from './report';
import { resolveBasis, runIdentity } from './split-basis';
import { saveTimings, timingsDir } from './timings';
import { installed, installIntoVenv, writeSupportModules } from './venv';

export async function main(): Promise<void> {
  const inputs = getInputs();
  const setup = requireState('setupDjango', 'run-tests');
  const phases = new Phases();
  const workspace = workspaceDir();
  const projectDir = inputs.workingDirectory ? path.resolve(workspace, inputs.workingDirectory) : setup.projectDir;
  if (!fs.existsSync(path.join(projectDir, 'manage.py'))) {
    throw new UserError(`No manage.py in ${projectDir}: set \`working-directory\` to the folder that holds manage.py.`);
  }
  const python = setup.pythonPath;
  const work = fs.mkdtempSync(path.join(runnerTemp(), 'slipway-run-tests-'));
  const supportDir = path.join(work, 'python');
  writeSupportModules(supportDir);
  const env: Record<string, string> = {
    PYTHONPATH: [supportDir, projectDir, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter),
    DJANGO_SETTINGS_MODULE: process.env.DJANGO_SETTINGS_MODULE || setup.settingsModule,
    // Concurrent jobs and shards on one database server each get their own test database names.
    SLIPWAY_TEST_DB_SUFFIX: process.env.SLIPWAY_TEST_DB_SUFFIX || testDbSuffix(inputs),
    PYTHONUNBUFFERED: '1',
  };
  const checkEnv: CheckEnv = { python, projectDir, workspace, settingsModule: env.DJANGO_SETTINGS_MODULE!, env };

  const detected = inputs.runner === 'auto' ? detectRunner(projectDir, workspace) : { runner: inputs.runner, reason: 'the `runner` input' };
  const runner: Runner = detected.runner;
  core.info(`Test runner: ${runner} (${detected.reason})`);

  await phases.phase('Preparing the environment', () => prepareVenv(python, runner, inputs, env));

  if (inputs.lint === 'ruff') await phases.phase('Linting (ruff)', () => ruff(checkEnv));
  if (inputs.checkMigrations) await phases.phase('Checking for missing migrations', () => checkMigrations(checkEnv));
  if (inputs.systemCheck) await phases.phase('Django system check', () => systemCheck(checkEnv));
  if (inputs.collectstatic !== 'false') {
    await phases.phase('Static files', async () => {
      if (inputs.collectstatic === 'auto') {
        const { needed, storage } = await needsCollectstatic(checkEnv);
        if (!needed) return core.info(`Static storage ${storage || '(default)'} needs no manifest: skipping collectstatic.`);
        core.info(`Static storage ${storage} needs a manifest: running collectstatic.`);
      }
      await collectstatic(checkEnv);
    });
  }

  let selection: string[] | undefined;
  let splitBy = '';
  const timingsFolder = timingsDir(workspace);
  if (inputs.shard) {
    const shard = inputs.shard;
    const ids = await phases.phase('Collecting tests', () => collect(python, runner, inputs.args, projectDir, env, work));
    if (!ids.length) throw new UserError(noTestsMessage(runner, inputs.args));
    const basis = await phases.phase('Restoring test timings', async () => {
      const found = await resolveBasis({
        key: inputs.timingsKey,
        runner,
        dir: timingsFolder,
        shard,
        extraPath: inputs.timingsPath,
        run: runIdentity(),
      });
      core.info(found.note);
      return found;
    });
    const plan = planShards(ids, basis.timings, shard.total);
    selection = plan.shards[shard.index - 1]!;
    splitBy =
      plan.method === 'timings'
        ? `by recorded durations (${basis.source}), ~${plan.estimates[shard.index - 1]!.toFixed(1)} s of ${plan.estimates.map((s) => s.toFixed(1)).join(' / ')}`
        : 'by a stable hash (no recorded durations)';
    await core.group(`Shard ${shard.index}/${shard.total}: ${selection.length} of ${ids.length} tests`, async () => {
      core.info(
        plan.method === 'timings'
          ? `Split by recorded durations (${ids.length - plan.unknown} known, ${plan.unknown} at the average); estimated seconds per shard: ${plan.estimates.map((s) => s.toFixed(1)).join(', ')}`
          : `No recorded durations: split by a stable hash of each test id (tests per shard: ${plan.estimates.join(', ')})`,
      );
      for (const id of selection!) core.info(id);
    });
    if (!selection.length) {
      core.notice(
        `Shard ${shard.index}/${shard.total} has no tests: the suite has ${ids.length}, split ${plan.shards.map((s) => s.length).join('/')}.`,
      );
      setOutputs({ passed: 0, failed: 0, errors: 0, skipped: 0, total: 0 }, [], 0, '');
      return;
    }
  }

  const started = Date.now();
  const attempts: TestResult[][] = [];
  const first = await phases.phase('Running tests', () =>
    runOnce({ python, runner, inputs, projectDir, env, work, attempt: 1, selection, coverage: inputs.coverage }),
  );
  attempts.push(first);
  if (!first.length) throw new UserError(noTestsMessage(runner, inputs.args));
  for (let attempt = 2; attempt <= inputs.retries + 1; attempt++) {
    const failing = failuresOf(mergeAttempts(attempts).results).map((r) => r.id);
    if (!failing.length) break;
    const rerun = await phases.phase(
      `Retrying ${failing.length} failed test${failing.length > 1 ? 's' : ''} (attempt ${attempt})`,
      async () => {
        for (const id of failing) core.info(id);
        return runOnce({ python, runner, inputs, projectDir, env, work, attempt, selection: failing, coverage: false });
      },
    );
    attempts.push(rerun);
  }
  const durationMs = Date.now() - started;
  const { results, flaky } = mergeAttempts(attempts);
  const counts = countResults(results);

  const junitPath = path.resolve(workspace, inputs.junitPath || path.join(work, 'junit.xml'));
  fs.mkdirSync(path.dirname(junitPath), { recursive: true });
  fs.writeFileSync(junitPath, toJUnit(results, runner));

  const cov = inputs.coverage
    ? await phases.phase('Coverage', () =>
        measureCoverage(python, projectDir, env, work, runner === 'django' ? coverageRcfile(projectDir, work, 1) : undefined),
      )
    : undefined;

  annotateFailures(failuresOf(results), { projectDir, workspace });
  for (const id of flaky) annotate('warning', `${id} failed, then passed on a retry.`, { title: 'Flaky test' });

  await saveTimings({ key: inputs.timingsKey, runner, dir: timingsFolder, shard: inputs.shard, results: first });

  setOutputs(counts, flaky, durationMs, junitPath);
  if (cov) {
    core.setOutput('coverage', cov.total.toFixed(2));
    core.setOutput('coverage-path', cov.xmlPath);
  }
  const facts: [string, string][] = [
    ['Runner', runner],
    ['Processes', String(inputs.parallel)],
    ...(inputs.shard ? ([['Shard', `${inputs.shard.index}/${inputs.shard.total}, split ${splitBy}`]] as [string, string][]) : []),
    ...(inputs.retries ? ([['Attempts', String(attempts.length)]] as [string, string][]) : []),
    ...(cov ? ([['Coverage', `${cov.total.toFixed(2)}%`]] as [string, string][]) : []),
    ...phases.rows(),
  ];
  const firstFailures = failuresOf(first);
  await writeSummary('run-tests', summarySections({ results, firstFailures, flaky, facts, durationMs }));

  if (counts.failed + counts.errors) {
    throw new UserError(
      `${counts.failed} failed and ${counts.errors} errored of ${counts.total} tests (see the annotations and the job summary).`,
    );
  }
  if (cov && inputs.coverageFailUnder !== undefined && cov.total < inputs.coverageFailUnder) {
    throw new UserError(`Coverage ${cov.total.toFixed(2)}% is below \`coverage-fail-under\` (${inputs.coverageFailUnder}%).`);
  }
}

function setOutputs(counts: ReturnType<typeof countResults>, flaky: string[], durationMs: number, junitPath: string): void {
  core.setOutput('passed', counts.passed);
  core.setOutput('failed', counts.failed);
  core.setOutput('errors', counts.errors);
  core.setOutput('skipped', counts.skipped);
  core.setOutput('total', counts.total);
  core.setOutput('flaky', JSON.stringify(flaky));
  core.setOutput('duration', (durationMs / 1000).toFixed(1));
  core.setOutput('junit-path', junitPath);
}

/** Short, unique per job and shard, valid in PostgreSQL and MariaDB names (appended to test_<name>). */
function testDbSuffix(inputs: Inputs): string {
  const shard = inputs.shard ? `s${inputs.shard.index}` : '';
  return `${shard}${randomBytes(3).toString('hex')}`;
}

function noTestsMessage(runner: Runner, args: string[]): string {
  const how = runner === 'django' ? "Django's runner discovers files named test*.py" : 'pytest collects files named test_*.py or *_test.py';
  return `No tests found (${runner}${args.length ? `, args: ${args.join(' ')}` : ''}): ${how}; check \`working-directory\` and \`args\`.`;
}

async function prepareVenv(python: string, runner: Runner, inputs: Inputs, env: Record<string, string>): Promise<void> {
  const wanted: string[] = [];
  if (runner === 'pytest') {
    wanted.push('pytest', 'pytest-django');
    if (inputs.parallel > 1) wanted.push('pytest-xdist');
    if (inputs.coverage) wanted.push('pytest-cov');
  } else if (inputs.parallel > 1) {
    // Django's parallel runner can only report a failure's traceback when tblib can pickle it.
    wanted.push('tblib');
  }
  if (inputs.coverage) wanted.push('coverage');
  if (inputs.lint === 'ruff') wanted.push('ruff');
  const have = await installed(python, wanted, env);
  if (runner === 'pytest' && !have.has('pytest')) {
    throw new UserError(
      "pytest is not installed in the project's environment: add pytest and pytest-django to its dependencies, or set `runner: django`.",
    );
  }
  const missing = wanted.filter((dist) => !have.has(dist));
  if (!missing.length) return core.info('Every test tool needed is installed.');
  await installIntoVenv(python, missing, env);
}

async function collect(
  python: string,
  runner: Runner,
  args: string[],
  projectDir: string,
  env: Record<string, string>,
  work: string,
): Promise<string[]> {
  const out = path.join(work, 'collected.json');
  const argv = collectArgv(runner, args);
  const result = await execTool(python, argv, { cwd: projectDir, env: { ...env, SLIPWAY_COLLECT: out }, silent: true, allowFailure: true });
  // pytest exits 5 when it collects nothing; any other failure is a real one.
  if (!fs.existsSync(out)) {
    if (result.exitCode === 5) return [];
    throw new CommandError(displayCommand(python, argv), result.exitCode, tail(result.stderr || result.stdout), 'Collecting tests');
  }
  const ids = JSON.parse(fs.readFileSync(out, 'utf8')) as string[];
  core.info(`Collected ${ids.length} tests.`);
  return ids;
}

async function runOnce(o: {
  python: string;
  runner: Runner;
  inputs: Inputs;
  projectDir: string;
  env: Record<string, string>;
  work: string;
  attempt: number;
  selection?: string[];
  coverage: boolean;
}): Promise<TestResult[]> {
  const junit = path.join(o.work, `junit-attempt-${o.attempt}.xml`);
  const env: Record<string, string> = { ...o.env, SLIPWAY_JUNIT: junit };
  if (o.selection) {
    const file = path.join(o.work, `select-attempt-${o.attempt}.json`);
    fs.writeFileSync(file, JSON.stringify(o.selection));
    env.SLIPWAY_SELECT = file;
  }
  const parallel = o.attempt === 1 ? o.inputs.parallel : 1;
  const coverageRc = o.coverage && o.runner === 'django' ? coverageRcfile(o.projectDir, o.work, parallel) : undefined;
  const argv = testArgv({ runner: o.runner, parallel, junit, coverage: o.coverage, coverageRc, args: o.inputs.args });
  const result = await execTool(o.python, argv, { cwd: o.projectDir, env, allowFailure: true });
  if (!fs.existsSync(junit)) {
    if (o.runner === 'pytest' && result.exitCode === 5) return [];
    throw new CommandError(
      displayCommand(o.python, argv),
      result.exitCode,
      tail(result.stderr || result.stdout),
      'The test run wrote no report',
    );
  }
  const results = parseJUnit(fs.readFileSync(junit, 'utf8'));
  if (result.exitCode !== 0 && !results.some((r) => r.outcome === 'failed' || r.outcome === 'error')) {
    const why = tail(result.stderr || result.stdout);
    throw new CommandError(displayCommand(o.python, argv), result.exitCode, why, 'No test failed, yet the test run failed');
  }
  core.info(`Attempt ${o.attempt}: ${results.length} tests, exit code ${result.exitCode}.`);
  return results;
}
