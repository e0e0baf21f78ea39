import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { getInputs } from '@slipway/deploy/context';
import { getSshInputs } from '@slipway/targets/ssh/inputs';
import { dependenciesOf, getReleaseDirInputs, gitRoot } from '@slipway/targets/ssh/release-dir-inputs';
import {
  appDir,
  checkGunicornArgs,
  checkRemotePython,
  checkSharedDir,
  checkWsgiApp,
  ENV_LOADER,
  gunicornArgv,
  installArgv,
  manageArgv,
  killPidArgv,
  parseRestartCommands,
  releasePythonArgv,
  releasesToPrune,
  sharedLinkArgv,
  stopArgv,
  switchLinkArgv,
  unfinishedArgv,
  unfinishedMark,
  type ReleaseLayout,
} from '@slipway/targets/ssh/release-dir-plan';
import { shellQuote } from '@slipway/toolkit/ssh';

/**
 * `ssh-runtime: release-dir`'s pure parts: inputs, the remote argv, and the constant remote
 * scripts run for real with local processes (through `sh -c shellQuote(argv)`, as the remote
 * login shell runs what ssh sends).
 */
const REPO = path.resolve(__dirname, '..', '..', '..');
const ID = '20261204-142000-0123456-a1f';
const L: ReleaseLayout = { dir: '/srv/slipway/shop', projectDir: 'example' };
const KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----';
const SSH: Record<string, string> = {
  provider: 'ssh',
  environment: 'staging',
  'release-store': 'releases',
  hosts: 'root@127.0.0.1:2222',
  'ssh-private-key': KEY,
  'ssh-known-hosts': '[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample',
};

function setInputs(inputs: Record<string, string>): void {
  for (const k of Object.keys(process.env)) if (k.startsWith('INPUT_')) delete process.env[k];
  for (const [k, v] of Object.entries(inputs)) process.env[`INPUT_${k.toUpperCase()}`] = v;
}

/** What the remote login shell does with an argv ssh sends. */
const viaShell = (argv: string[], opts: { input?: string } = {}): string =>
  execFileSync('sh', ['-c', shellQuote(argv)], { input: opts.input, stdio: ['pipe', 'pipe', 'pipe'] }).toString();

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-rd-unit-'));
});
afterEach(() => {
  setInputs({});
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('inputs', () => {
  it('ssh-runtime defaults to docker and takes release-dir', () => {
    setInputs(SSH);
    expect(getSshInputs().runtime).toBe('docker');
    setInputs({ ...SSH, 'ssh-runtime': 'release-dir' });
    expect(getSshInputs().runtime).toBe('release-dir');
  });

  it('refuses an unknown ssh-runtime in one line naming the input, before the image is asked for', () => {
    setInputs({ ...SSH, 'ssh-runtime': 'plain' });
    expect(() => getInputs()).toThrow(/^Input `ssh-runtime` must be one of docker, release-dir; got "plain"\.$/);
  });

  it('release-dir needs no image; the record names the commit', () => {
    setInputs({ ...SSH, 'ssh-runtime': 'release-dir' });
    process.env.GITHUB_SHA = 'f'.repeat(40);
    try {
      expect(getInputs()).toMatchObject({ image: `git:${'f'.repeat(40)}`, imageDigest: null });
    } finally {
      delete process.env.GITHUB_SHA;
    }
  });

  it('reads the example project: its folder, WSGI module, settings and production requirements', () => {
    setInputs({
      'working-directory': 'example',
      'gunicorn-args': '--workers 3 --timeout "60"',
      'shared-dirs': 'media\nuploads/',
      'restart-commands': 'systemctl restart celery\n',
    });
    expect(getReleaseDirInputs(REPO)).toEqual({
      repoRoot: gitRoot(REPO),
      projectDir: 'example',
      python: 'python3',
      gunicorn: { wsgiApp: 'shop.wsgi', args: ['--workers', '3', '--timeout', '60'], settingsModule: 'shop.settings' },
      sharedDirs: ['media', 'uploads'],
      restartCommands: [['systemctl', 'restart', 'celery']],
      dependencies: { kind: 'requirements', files: ['example/requirements.txt'] },
    });
  });

  it.each([
    [
      'requirements.txt only, not the dev/test files',
      { 'requirements.txt': 'django\n', 'requirements-dev.txt': 'pytest\n' },
      { kind: 'requirements', files: ['requirements.txt'] },
    ],
    [
      'requirements/production.txt',
      { 'requirements/production.txt': '-r base.txt\n', 'requirements/base.txt': 'django\n' },
      { kind: 'requirements', files: ['requirements/production.txt'] },
    ],
    ['uv.lock', { 'uv.lock': '', 'pyproject.toml': '[project]\nname="x"\n' }, { kind: 'uv', dir: '' }],
    [
      'pyproject [project]',
      { 'pyproject.toml': '[project]\nname="x"\ndependencies=["django>=5", "gunicorn"]\n' },
      { kind: 'pyproject', requirements: ['django>=5', 'gunicorn'] },
    ],
  ])('dependencies: %s', (_name, files, expected) => {
    for (const [f, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(tmp, f)), { recursive: true });
      fs.writeFileSync(path.join(tmp, f), text);
    }
    expect(dependenciesOf(tmp, tmp)).toEqual(expected);
  });

  it.each([
    ['poetry.lock', { 'poetry.lock': '', 'pyproject.toml': '[tool.poetry]\n' }, /not poetry: export a requirements.txt \(poetry export\)/],
    ['only dev requirements', { 'requirements/test.txt': 'pytest\n' }, /installs requirements.txt .*has only requirements\/test.txt/],
  ])('dependencies refused: %s', (_name, files, message) => {
    for (const [f, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(tmp, f)), { recursive: true });
      fs.writeFileSync(path.join(tmp, f), text);
    }
    expect(() => dependenciesOf(tmp, tmp)).toThrow(message);
  });

  it('refuses a workspace that is not a git work tree', () => {
    expect(() => gitRoot(tmp)).toThrow(/deploys the checked-out commit, but .* is not in a git work tree: run actions\/checkout first/);
  });

  it.each([
    [() => checkGunicornArgs(['--workers', '2', '--bind', '0.0.0.0:80']), /`gunicorn-args` must not set --bind/],
    [() => checkGunicornArgs(['-b0.0.0.0:80']), /`gunicorn-args` must not set -b0/],
    [() => checkGunicornArgs(['--daemon']), /must not set --daemon/],
    [() => checkGunicornArgs(['--pid=/tmp/x']), /must not set --pid/],
    [() => checkSharedDir('../etc'), /`shared-dirs`: "..\/etc" must be a relative path/],
    [() => checkSharedDir('/var/media'), /`shared-dirs`/],
    [() => checkSharedDir('media;rm -rf /'), /`shared-dirs`/],
    [() => checkWsgiApp('shop.wsgi; touch x'), /`wsgi-app` must be module\[:callable\]/],
    [() => checkRemotePython('python3 -c evil'), /`remote-python` must be a program name or absolute path/],
    [() => checkRemotePython('-m'), /`remote-python`/],
  ])('refuses %#', (fn, message) => expect(fn).toThrow(message));

  it('restart-commands: one argv a line, quotes honoured, nothing a shell would run', () => {
    expect(
      parseRestartCommands('systemctl restart celery\n\n# comment\n  sudo -n systemctl reload "app worker"  \ntouch \'/tmp/a;b$(id)\'\n'),
    ).toEqual([
      ['systemctl', 'restart', 'celery'],
      ['sudo', '-n', 'systemctl', 'reload', 'app worker'],
      ['touch', '/tmp/a;b$(id)'],
    ]);
    expect(() => parseRestartCommands('echo "open')).toThrow(/`restart-commands` has an unterminated " quote/);
  });

  it('accepts the usual values', () => {
    expect(checkGunicornArgs(['--workers', '4', '--timeout', '60', '--access-logfile', '-'])).toHaveLength(6);
    expect(checkSharedDir('media/')).toBe('media');
    expect(checkWsgiApp('config.wsgi:application')).toBe('config.wsgi:application');
    expect(checkRemotePython('/usr/bin/python3.12')).toBe('/usr/bin/python3.12');
  });
});

describe('argv', () => {
  it('starts gunicorn on the slot port as a daemon with the slot pidfile, the env only in the env file', () => {
    const argv = gunicornArgv(L, ID, 'green', 8001, { wsgiApp: 'shop.wsgi', args: ['--workers', '2'], settingsModule: 'shop.settings' });
    const rel = `/srv/slipway/shop/releases/${ID}`;
    expect(argv).toEqual([
      'env',
      'PORT=8001',
      'DJANGO_SETTINGS_MODULE=shop.settings',
      `${rel}/.venv/bin/python`,
      '-c',
      ENV_LOADER,
      `/srv/slipway/shop/env/${ID}.env`,
      `${rel}/example`,
      `${rel}/.venv/bin/gunicorn`,
      'shop.wsgi',
      '--bind',
      '127.0.0.1:8001',
      '--chdir',
      `${rel}/example`,
      '--daemon',
      '--pid',
      '/srv/slipway/shop/green.pid',
      '--error-logfile',
      `${rel}/gunicorn.log`,
      '--workers',
      '2',
    ]);
  });

  it('installs production requirements from inside the release, or syncs uv.lock', () => {
    const rel = `/srv/slipway/shop/releases/${ID}`;
    expect(installArgv(L, ID, { kind: 'requirements', files: ['example/requirements.txt'] }, 'python3')).toEqual([
      `${rel}/.venv/bin/python`,
      '-m',
      'pip',
      'install',
      '--disable-pip-version-check',
      '--no-input',
      '-r',
      `${rel}/example/requirements.txt`,
    ]);
    expect(installArgv(L, ID, { kind: 'uv', dir: 'example' }, 'python3.12')).toEqual([
      'env',
      `UV_PROJECT_ENVIRONMENT=${rel}/.venv`,
      'UV_PYTHON_DOWNLOADS=never',
      'uv',
      'sync',
      '--locked',
      '--no-dev',
      '--python',
      'python3.12',
      '--directory',
      `${rel}/example`,
    ]);
  });

  it('prunes all but the newest `keep`, never the serving release, only release-id names', () => {
    const ids = [
      '20261201-000000-aaaaaaa-001',
      '20261202-000000-bbbbbbb-002',
      '20261203-000000-ccccccc-003',
      '20261204-000000-ddddddd-004',
    ];
    expect(releasesToPrune([...ids, 'lost+found'], 2, ids[3])).toEqual([ids[2], ids[1], ids[0]].slice(1));
    // The serving release is not the newest (a rollback): it is kept, plus the newest one.
    expect(releasesToPrune(ids, 2, ids[0])).toEqual([ids[2], ids[1]]);
    expect(releasesToPrune(ids, 1, ids[3])).toEqual([ids[2], ids[1], ids[0]]);
    expect(releasesToPrune(ids, 5, ids[3])).toEqual([]);
    // A dir a dead deploy left unfinished goes and does not count: the good previous release stays.
    expect(releasesToPrune(ids, 2, ids[3], [ids[2]!])).toEqual([ids[2], ids[0]]);
    expect(releasesToPrune(ids, 5, ids[3], [ids[2]!, ids[1]!])).toEqual([ids[2], ids[1]]);
    // The serving release is never pruned, marked or not (a marker left by a failed removal).
    expect(releasesToPrune(ids, 1, ids[3], [ids[3]!])).toEqual([ids[2], ids[1], ids[0]]);
  });

  it('finds the unfinished marks one level down in releases/, as find(1) argv', () => {
    const l = { dir: '/srv/apps/shop', projectDir: 'example' };
    expect(unfinishedMark(l, 'r1')).toBe('/srv/apps/shop/releases/r1/.slipway-unfinished');
    expect(unfinishedArgv(l)).toEqual([
      'find',
      '/srv/apps/shop/releases',
      '-mindepth',
      '2',
      '-maxdepth',
      '2',
      '-name',
      '.slipway-unfinished',
    ]);
  });
});

describe('remote scripts, run locally through the remote shell quoting', () => {
  it('the env loader hands tricky values to the program unchanged, nothing in them runs', () => {
    const canary = path.join(tmp, 'CANARY');
    const values: Record<string, string> = {
      SECRET: `it's $(touch ${canary}) \`touch ${canary}\` "q" \\ ; | & > *`,
      EQUALS: 'a=b=c',
      EMPTY: '',
      SPACES: '  padded  ',
    };
    const release = { dir: tmp, projectDir: 'app' };
    const venvBin = path.join(tmp, 'releases', ID, '.venv', 'bin');
    fs.mkdirSync(venvBin, { recursive: true });
    fs.symlinkSync(execFileSync('sh', ['-c', 'command -v python3']).toString().trim(), path.join(venvBin, 'python'));
    fs.mkdirSync(appDir(release, ID), { recursive: true });
    fs.mkdirSync(path.join(tmp, 'env'));
    fs.writeFileSync(
      path.join(tmp, 'env', `${ID}.env`),
      `${Object.entries(values)
        .map(([k, v]) => `${k}=${v}`)
        .join('\n')}\n# a comment\n`,
    );
    const printer =
      'import os, json; print(json.dumps({k: os.environ.get(k) for k in ["SECRET","EQUALS","EMPTY","SPACES","DJANGO_SETTINGS_MODULE"]}), os.getcwd())';
    const out = viaShell(manageArgv(release, ID, 'shop.settings', ['-c', printer]).map((a) => (a === 'manage.py' ? '-B' : a))).trim();
    const [json, cwd] = [out.slice(0, out.lastIndexOf('}') + 1), out.slice(out.lastIndexOf('}') + 2)];
    expect(JSON.parse(json)).toEqual({ ...values, DJANGO_SETTINGS_MODULE: 'shop.settings' });
    expect(cwd).toBe(appDir(release, ID));
    expect(fs.existsSync(canary), 'nothing in a value ran').toBe(false);
  });

  it("the migrate helper's Python: the release's venv, env file and settings; its own pid in the pidfile, stopped by it", async () => {
    const release = { dir: tmp, projectDir: 'app' };
    const venvBin = path.join(tmp, 'releases', ID, '.venv', 'bin');
    fs.mkdirSync(venvBin, { recursive: true });
    fs.symlinkSync(execFileSync('sh', ['-c', 'command -v python3']).toString().trim(), path.join(venvBin, 'python'));
    fs.mkdirSync(appDir(release, ID), { recursive: true });
    fs.mkdirSync(path.join(tmp, 'env'));
    fs.writeFileSync(path.join(tmp, 'env', `${ID}.env`), 'DATABASE_URL=sqlite:///x $(id)\nDJANGO_SETTINGS_MODULE=from.file\n');
    const pidfile = path.join(tmp, 'helper.pid');
    const printer =
      'import os, sys; print(os.getpid(), os.environ["DATABASE_URL"], os.environ["DJANGO_SETTINGS_MODULE"], sys.stdin.readline().strip(), os.getcwd())';
    const argv = releasePythonArgv(release, ID, 'shop.settings', ['-c', printer], pidfile);
    expect(argv.join(' '), 'values stay in the env file').not.toContain('sqlite');
    // stdin reaches the Python (the helper session's requests), its stdout comes back.
    const out = viaShell(argv, { input: 'request\n' }).trim().split(' ');
    expect(out).toEqual([fs.readFileSync(pidfile, 'utf8').trim(), 'sqlite:///x', '$(id)', 'from.file', 'request', appDir(release, ID)]);
    // A busy helper (stdin open, no EOF coming) is stopped by the pid it wrote: exec all the way, so it is the Python's.
    fs.rmSync(pidfile);
    const busy = spawn(
      'sh',
      ['-c', shellQuote(releasePythonArgv(release, ID, undefined, ['-c', 'import time; time.sleep(30)'], pidfile))],
      {
        stdio: ['pipe', 'ignore', 'ignore'],
      },
    );
    const ended = new Promise<number | string | null>((r) => busy.on('exit', (code, signal) => r(signal ?? code)));
    for (let i = 0; i < 100 && !fs.existsSync(pidfile); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 200)); // the execs after the pid is written
    const pid = fs.readFileSync(pidfile, 'utf8').trim();
    expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0')).toEqual(expect.arrayContaining(['import time; time.sleep(30)']));
    viaShell(killPidArgv(pidfile));
    // The Python ended by TERM: the shell that started it reports 128 + 15 (or it was the shell itself, exec'd).
    expect(['SIGTERM', 143]).toContain(await ended);
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
    expect(fs.existsSync(pidfile)).toBe(false);
    viaShell(killPidArgv(pidfile)); // no pidfile left: nothing to do, no error
  });

  it('switches `current` by rename: old link, then new link, never missing', () => {
    const l = { dir: tmp, projectDir: '' };
    for (const id of ['a', 'b']) {
      fs.mkdirSync(path.join(tmp, 'releases', id), { recursive: true });
      for (const argv of switchLinkArgv(l, id)) viaShell(argv);
      expect(fs.readlinkSync(path.join(tmp, 'current'))).toBe(`releases/${id}`);
    }
    expect(fs.existsSync(path.join(tmp, 'current.new'))).toBe(false);
  });

  it('links shared folders into the release, replacing what the commit had there', () => {
    const l = { dir: tmp, projectDir: 'app' };
    fs.mkdirSync(path.join(appDir(l, ID), 'media'), { recursive: true });
    fs.writeFileSync(path.join(appDir(l, ID), 'media', 'from-git.txt'), 'x');
    for (const argv of sharedLinkArgv(l, ID, ['media'])) viaShell(argv);
    expect(fs.readlinkSync(path.join(appDir(l, ID), 'media'))).toBe(path.join(tmp, 'shared', 'media'));
  });

  async function started(script: string): Promise<{ pid: number; pidfile: string }> {
    // setsid: like gunicorn's daemon, the process leads its own group.
    const child = spawn('setsid', ['sh', '-c', script], { stdio: 'ignore' });
    child.unref();
    const pidfile = path.join(tmp, 'blue.pid');
    await new Promise((r) => setTimeout(r, 200));
    fs.writeFileSync(pidfile, `${child.pid}\n`);
    return { pid: child.pid!, pidfile };
  }
  const alive = (pid: number): boolean => {
    try {
      return !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };

  it('stops a process gracefully with TERM', async () => {
    const { pid, pidfile } = await started('exec sleep 30');
    expect(viaShell(stopArgv({ dir: tmp, projectDir: '' }, 'blue', 5)).trim()).toBe('stopped');
    expect(alive(pid)).toBe(false);
    expect(fs.existsSync(pidfile)).toBe(false);
  });

  it('kills one that ignores TERM once the grace time is up', async () => {
    const { pid } = await started("trap '' TERM; while :; do sleep 0.1; done");
    const t0 = Date.now();
    expect(viaShell(stopArgv({ dir: tmp, projectDir: '' }, 'blue', 1)).trim()).toBe('killed');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    await new Promise((r) => setTimeout(r, 200));
    expect(alive(pid)).toBe(false);
  });

  it('no pidfile, a stale pid or garbage: nothing to stop', () => {
    const l = { dir: tmp, projectDir: '' };
    expect(viaShell(stopArgv(l, 'blue', 1)).trim()).toBe('none');
    fs.writeFileSync(path.join(tmp, 'blue.pid'), '999999999\n');
    expect(viaShell(stopArgv(l, 'blue', 1)).trim()).toBe('none');
    fs.writeFileSync(path.join(tmp, 'blue.pid'), '1; touch x\n');
    expect(viaShell(stopArgv(l, 'blue', 1)).trim()).toBe('none');
    expect(fs.existsSync(path.join(tmp, 'blue.pid'))).toBe(false);
  });
});
