/**
 * `system-packages` for real: this machine is root with Debian's apt reachable, as a hosted
 * runner is (there through sudo). `sl` is the package: tiny, no dependencies beyond what every
 * Debian has, and nothing here uses it; it is purged before and after.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyProject, Job } from '../harness/job';
import { TEST_CACHE } from '../harness/python-env';

const PACKAGE = 'sl';
const ALREADY = 'coreutils';
const TOOL_CACHE = path.join(TEST_CACHE, 'setup-django-toolcache');
const scratch: string[] = [];

function installed(name: string): boolean {
  try {
    return /^Status: install ok installed$/m.test(execFileSync('dpkg', ['-s', name], { stdio: ['ignore', 'pipe', 'ignore'] }).toString());
  } catch {
    return false;
  }
}

function purge(): void {
  if (!installed(PACKAGE)) return;
  execFileSync('apt-get', ['-q', '-o', 'DPkg::Lock::Timeout=300', 'purge', '-y', PACKAGE], {
    stdio: 'ignore',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('this test installs Debian packages: it needs root');
  purge();
  expect(installed(PACKAGE)).toBe(false);
});
afterAll(() => {
  purge();
  for (const dir of scratch.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function newJob(): Job {
  const workspace = copyProject('example');
  scratch.push(workspace);
  fs.mkdirSync(TOOL_CACHE, { recursive: true });
  const job = new Job({ workspace, toolCache: TOOL_CACHE, env: { UV_PYTHON_DOWNLOADS: 'never' } });
  scratch.push(path.dirname(job.home));
  return job;
}

const INSTALL = /^\[command\]apt-get -q -o DPkg::Lock::Timeout=120 install -y --no-install-recommends (.*)$/m;

describe('setup-django system-packages through apt', () => {
  it('installs what is missing, only that, and the next run finds it installed and runs no apt-get', async () => {
    const step = await newJob().run('setup-django', { 'system-packages': `${PACKAGE}, ${ALREADY}`, cache: 'false' });
    expect(step.failure).toBeUndefined();
    expect(step.exitCode).toBe(0);
    expect(installed(PACKAGE)).toBe(true);
    expect(fs.existsSync('/usr/games/sl')).toBe(true);
    expect(step.log).toMatch(new RegExp(`^Already installed: ${ALREADY} \\(\\S+\\)\\.$`, 'm'));
    expect(step.log).toContain(`To install: ${PACKAGE}`);
    expect(step.log).toMatch(/^\[command\]apt-get -q -o DPkg::Lock::Timeout=120 update$/m);
    expect(INSTALL.exec(step.log)?.[1]).toBe(PACKAGE);

    const again = await newJob().run('setup-django', { 'system-packages': `${PACKAGE}\n${ALREADY}`, cache: 'false' });
    expect(again.failure).toBeUndefined();
    expect(again.log).toMatch(
      new RegExp(`^Already installed: ${PACKAGE} \\(\\S+\\), ${ALREADY} \\(\\S+\\)\\. Nothing to install: apt-get is not run\\.$`, 'm'),
    );
    expect(again.log).not.toMatch(/\[command\](sudo -n )?apt-get/);
  });

  it('a name apt does not know fails in one line naming the input, before anything is installed', async () => {
    const step = await newJob().run('setup-django', { 'system-packages': `${PACKAGE}, slipway-no-such-package`, cache: 'false' });
    expect(step.exitCode).toBe(1);
    expect(step.failure).toBe(
      "setup-django failed: Input `system-packages`: `slipway-no-such-package` is not in this runner's apt sources (a Debian/Ubuntu package name, e.g. libpq-dev).",
    );
    expect(step.annotations.filter((a) => a.level === 'error')).toHaveLength(1);
    expect(step.log).not.toMatch(INSTALL);
    // Nothing after it ran: no Python resolved, no virtualenv.
    expect(step.log).not.toContain('Resolving Python');
  });
});
