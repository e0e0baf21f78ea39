/**
 * Faults with real components, against a private sshd "VPS" (test/security/vps.ts) driving the
 * real Docker engine and HAProxy, its deploy directory on a small tmpfs: a health check that
 * never passes, the SSH session cut mid-deploy, two deploys at once, the registry down, the
 * host's disk full, and a remote command failing at each stage of the ssh provider. For each:
 * the step fails with a clear message, the old release keeps serving (wrk: zero failed
 * requests), the lock is released, and a later deploy succeeds.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyWorkspace, Job, type StepResult } from '../harness/job';
import { canaryKeyPair } from '../security/canary';
import { freePort, startVps, type Vps } from '../security/vps';
import { buildDeployImage, cleanupHost, deployServices, startLoad, type LoadResult } from './deploy-support';

const APP = 'shopfault';
const APP_PORT = 18800;
const PROXY_PORT = 18880;
const FRONT = `http://127.0.0.1:${PROXY_PORT}/healthz`;
const SECRET = 'faults-secret-key-0123456789abcdef0123456789abcdef';

let env: Record<string, string>;
let vps: Vps;
let key: ReturnType<typeof canaryKeyPair>;
let remoteDir: string;
let image: { ref: string; tag: string; repo: string };
let workspace: string;
const passed: string[] = [];

function docker(args: string[]): string {
  return execFileSync('docker', args, { env: { ...process.env, DOCKER_HOST: env.DOCKER_HOST } })
    .toString()
    .trim();
}

function inputs(over: Record<string, string> = {}): Record<string, string> {
  return {
    provider: 'ssh',
    environment: 'faults',
    image: image.ref,
    hosts: `root@127.0.0.1:${vps.port}`,
    'ssh-private-key': key.value,
    'ssh-known-hosts': vps.knownHosts,
    'app-name': APP,
    'app-port': String(APP_PORT),
    'proxy-port': String(PROXY_PORT),
    'proxy-address': '127.0.0.1',
    'remote-dir': remoteDir,
    env: `DJANGO_SECRET_KEY=${SECRET}\nDJANGO_SECURE_SSL_REDIRECT=false\nDJANGO_LOG_LEVEL=WARNING`,
    'health-timeout': '30s',
    // wrk's keep-alive connections keep sessions on the old slot, so a drain under load always
    // runs to its timeout: 3 s instead of the default 30 s (traffic still moves drain -> maint).
    'drain-timeout': '3s',
    'release-store': 'releases',
    'github-token': '',
    ...over,
  };
}

interface Current {
  releaseId: string;
  container: string;
  slot: string;
}
const current = (): Current => JSON.parse(fs.readFileSync(path.join(remoteDir, APP, 'current'), 'utf8')) as Current;
const lockHeld = (): boolean => fs.existsSync(path.join(remoteDir, APP, 'lock'));

function expectNoFailures(load: LoadResult): void {
  expect(load.requests, load.raw).toBeGreaterThan(100);
  expect({ non2xx: load.non2xx, socketErrors: load.socketErrors }, load.raw).toEqual({ non2xx: 0, socketErrors: 0 });
}

async function front(): Promise<number> {
  return fetch(FRONT).then(
    (r) => r.status,
    () => 0,
  );
}

/** HAProxy's servers of our backend as the admin socket reports them (the host is this machine). */
function proxyServers(): { slot: string; status: string }[] {
  const csv = execFileSync('socat', ['stdio', `UNIX-CONNECT:${path.join(remoteDir, APP, 'haproxy.sock')}`], {
    input: 'show stat\n',
  }).toString();
  const [head = '', ...rows] = csv.split('\n').filter((l) => l.trim());
  const cols = head.replace(/^#\s*/, '').split(',');
  const [px, sv, st] = ['pxname', 'svname', 'status'].map((c) => cols.indexOf(c)) as [number, number, number];
  return rows
    .map((r) => r.split(','))
    .filter((f) => f[px] === 'app' && ['blue', 'green'].includes(f[sv]!))
    .map((f) => ({ slot: f[sv]!, status: f[st]! }));
}

/**
 * What the host says serves is what serves: `current`'s slot is the only one HAProxy sends
 * traffic to (the other is in maintenance or draining) and `current`'s container runs.
 */
function expectConsistent(when: string): void {
  const now = current();
  const serving = proxyServers()
    .filter((s) => !/MAINT|DRAIN/.test(s.status))
    .map((s) => s.slot);
  expect(serving, `${when}: the slot HAProxy serves is the one \`current\` names (${now.releaseId})`).toEqual([now.slot]);
  expect(docker(['inspect', '--format', '{{.State.Running}}', now.container]), `${when}: ${now.container} runs`).toBe('true');
}

/** A clean deploy right after a fault: it succeeds, under load, without a failed request. */
async function cleanDeploy(name: string): Promise<StepResult> {
  const load = startLoad(FRONT, 120);
  let later: StepResult;
  try {
    later = await new Job({ workspace }).run('deploy', inputs());
  } finally {
    expectNoFailures(await load.stop());
  }
  expect(later.failure, `${name}: the next deploy\n${later.log}`).toBeUndefined();
  expect(await front()).toBe(200);
  expectConsistent(`${name}: after the next deploy`);
  return later;
}

/**
 * The old release serves through the fault (wrk: zero failed requests), `current` is unchanged
 * and still tells the truth, the lock is released, and a clean deploy right after succeeds.
 */
async function underFault(name: string, fault: (job: Job) => Promise<void>): Promise<void> {
  const before = current();
  const load = startLoad(FRONT, 120);
  try {
    await fault(new Job({ workspace }));
  } finally {
    expectNoFailures(await load.stop());
  }
  expect(current()).toEqual(before);
  expectConsistent(`${name}: after the failed deploy`);
  const stale = lockHeld();
  // A stale lock would fail every later test too: assert, but clear it first.
  if (stale) fs.rmSync(path.join(remoteDir, APP, 'lock'), { recursive: true, force: true });
  expect(stale, 'lock released').toBe(false);
  await cleanDeploy(name);
  passed.push(name);
}

/** The sshd session processes of the VPS and, with `tree`, every process they started. */
function sessionProcesses(tree: boolean): number[] {
  const pids = new Set(vps.sessionPids());
  if (!tree) return [...pids];
  const parent = new Map<number, number>();
  for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      parent.set(Number(p), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone
    }
  }
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (!pids.has(pid) && pids.has(ppid)) {
        pids.add(pid);
        grew = true;
      }
    }
  }
  return [...pids];
}

/**
 * Starts a deploy, waits until it is mid-way (the new release's env file is on the host, its
 * container not yet serving), then keeps killing `victims()`: for 3 s (the link is down, the
 * sessions ssh opens to reconnect die too), or with `untilDone` until the step has ended (the
 * host never again runs anything for that deploy). Returns the step's result.
 */
async function cutMidDeploy(job: Job, victims: () => number[], untilDone = false): Promise<StepResult> {
  const envDir = path.join(remoteDir, APP, 'env');
  const seen = new Set(fs.readdirSync(envDir));
  let done = false;
  const step = job.run('deploy', inputs()).finally(() => (done = true));
  for (let i = 0; i < 600 && !fs.readdirSync(envDir).some((f) => !seen.has(f)); i++) await new Promise((r) => setTimeout(r, 20));
  let killed = 0;
  const until = Date.now() + (untilDone ? 120_000 : 3000);
  while (Date.now() < until && !(untilDone && done)) {
    // Stopped first, then killed: no victim runs another instruction (a clean-up) once one dies.
    const pids = victims();
    for (const signal of ['SIGSTOP', 'SIGKILL'] as const) {
      for (const pid of pids) {
        try {
          process.kill(pid, signal);
          if (signal === 'SIGKILL') killed++;
        } catch {
          // already gone
        }
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(killed).toBeGreaterThan(0);
  return step;
}

const TAKEOVER = /taking over the deploy lock|took over the deploy lock|stale deploy lock|lock.*(holder|owner).*(gone|dead|not running)/i;

beforeAll(async () => {
  env = deployServices();
  process.env.DOCKER_HOST = env.DOCKER_HOST;
  image = buildDeployImage(env);
  key = canaryKeyPair('faults key');
  vps = await startVps([key.publicKey]);
  remoteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-faults-host-'));
  // The host's deploy directory on its own small filesystem, so it can be filled.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0755', 'tmpfs', remoteDir]);
  workspace = emptyWorkspace();
  const first = await new Job({ workspace }).run('deploy', inputs({ 'setup-host': 'true' }));
  expect(first.failure, first.log).toBeUndefined();
});

afterAll(() => {
  if (env && remoteDir) {
    cleanupHost(APP, path.join(os.tmpdir(), 'none'), env);
    const pid = path.join(remoteDir, APP, 'haproxy.pid');
    if (fs.existsSync(pid)) for (const p of fs.readFileSync(pid, 'utf8').split(/\s+/).filter(Boolean)) process.kill(Number(p), 'SIGTERM');
    execFileSync('umount', ['-l', remoteDir]);
    fs.rmSync(remoteDir, { recursive: true, force: true });
  }
  vps?.stop();
  if (key) fs.rmSync(key.dir, { recursive: true, force: true });
  console.log(`faults passed: ${passed.length} (${passed.join('; ')})`);
});

describe('deploy faults (real sshd, Docker, HAProxy, wrk)', () => {
  it('a health check that never passes', async () => {
    await underFault('health check never passes', async (job) => {
      const r = await job.run(
        'deploy',
        inputs({ env: `DJANGO_SECRET_KEY=${SECRET}\nDATABASE_URL=postgres://nobody@127.0.0.1:1/none`, 'health-timeout': '5s' }),
      );
      expect(r.failure).toMatch(/Health check of .* failed after .*previous release keeps serving/);
    });
  });

  it('the SSH session cut mid-deploy (its sshd processes killed): the next deploy goes ahead', async () => {
    const name = 'ssh session cut mid-deploy';
    const before = current();
    const load = startLoad(FRONT, 120);
    let r: StepResult;
    try {
      r = await cutMidDeploy(new Job({ workspace }), () => sessionProcesses(false));
    } finally {
      expectNoFailures(await load.stop());
    }
    expect(r.exitCode).not.toBe(0);
    expect(r.failure).toMatch(/SSH connection to root@127\.0\.0\.1:\d+ failed|ssh root@127|Lost the deploy lock/);
    expect(current()).toEqual(before);
    expectConsistent(`${name}: after the failed deploy`);
    // The lock is not cleared by hand: whatever the cut left, the next deploy must get past it,
    // and if a lock directory was left, say that it took it over from a holder that is gone.
    const left = lockHeld();
    const later = await cleanDeploy(name);
    if (left) expect(later.log, "the next deploy says it took over a dead holder's lock").toMatch(TAKEOVER);
    expect(lockHeld(), 'lock released after the next deploy').toBe(false);
    passed.push(name);
  });

  it('the deploy killed on the host mid-deploy (its sessions and every process they started): the next deploy takes over the lock', async () => {
    const name = 'deploy killed on the host, dead lock holder';
    const before = current();
    const load = startLoad(FRONT, 120);
    let r: StepResult;
    try {
      r = await cutMidDeploy(new Job({ workspace }), () => sessionProcesses(true), true);
    } finally {
      expectNoFailures(await load.stop());
    }
    expect(r.exitCode).not.toBe(0);
    expect(current()).toEqual(before);
    expectConsistent(`${name}: after the failed deploy`);
    // Nothing on the host survived to clean up: the lock directory is still there.
    expect(lockHeld(), 'the killed deploy left its lock').toBe(true);
    const later = await cleanDeploy(name);
    expect(later.log, "the next deploy says it took over a dead holder's lock").toMatch(TAKEOVER);
    expect(lockHeld(), 'lock released after the next deploy').toBe(false);
    passed.push(name);
  });

  it('two deploys at once to the same environment: one wins, the other changes nothing', async () => {
    const before = current();
    const load = startLoad(FRONT, 120);
    const [a, b] = await Promise.all([new Job({ workspace }).run('deploy', inputs()), new Job({ workspace }).run('deploy', inputs())]);
    expectNoFailures(await load.stop());
    const results = [a, b].sort((x, y) => Number(x.exitCode !== 0) - Number(y.exitCode !== 0));
    expect(results[0]!.failure, results[0]!.log).toBeUndefined();
    expect(results[1]!.failure).toMatch(/Another deploy holds the lock .*nothing was changed/);
    expect(current().releaseId).toBe(results[0]!.outputs['release-id']);
    expect(current()).not.toEqual(before);
    expect(lockHeld()).toBe(false);
    passed.push('two deploys at once');
  });

  it('the registry down during deploy (pull) and during build (push)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-faults-registry-'));
    const addr = `127.0.0.1:${await freePort()}`;
    fs.writeFileSync(
      path.join(dir, 'config.yml'),
      `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: ${addr}\n`,
    );
    let registry: ChildProcess | undefined = spawn('docker-registry', ['serve', path.join(dir, 'config.yml')], { stdio: 'ignore' });
    try {
      for (
        let i = 0;
        !(await fetch(`http://${addr}/v2/`).then(
          (r) => r.ok,
          () => false,
        ));
        i++
      ) {
        if (i > 100) throw new Error('registry did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
      const repo = `${addr}/slipway-faults/shop`;
      docker(['tag', image.tag, `${repo}:v1`]);
      docker(['push', '--quiet', `${repo}:v1`]);
      const ref = (JSON.parse(docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', `${repo}:v1`])) as string[]).find((d) =>
        d.startsWith(repo),
      )!;
      docker(['image', 'rm', `${repo}:v1`]);
      // The engine is the host's too: it must not have the digest, so the deploy has to pull it.
      expect(() => docker(['image', 'inspect', ref])).toThrow();
      registry.kill('SIGTERM');
      registry = undefined;
      await underFault('registry down during deploy', async (job) => {
        const r = await job.run('deploy', inputs({ image: ref, 'image-transfer': 'pull' }));
        expect(r.failure).toMatch(/could not pull/);
      });
      const ws = emptyWorkspace();
      fs.writeFileSync(path.join(ws, 'Dockerfile'), 'FROM scratch\nCOPY a.txt /a.txt\n');
      fs.writeFileSync(path.join(ws, 'a.txt'), 'a\n');
      const build = await new Job({ workspace: ws }).run(
        'build-image',
        { image: repo, push: 'true', 'smoke-test': 'false', 'github-token': '' },
        { timeoutMs: 120_000 },
      );
      expect(build.exitCode).not.toBe(0);
      expect(build.failure).toMatch(/push|connect|refused|registry/i);
      expect(build.failure!.length).toBeLessThan(2000);
      passed.push('registry down during build');
    } finally {
      registry?.kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the host's disk full (the deploy directory's filesystem)", async () => {
    const filler = path.join(remoteDir, 'filler');
    await underFault('disk full', async (job) => {
      // Fill every free block; the deploy must fail writing its lock owner or env file.
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k', 'status=none']);
      } catch {
        // ENOSPC is the point
      }
      try {
        const r = await job.run('deploy', inputs());
        expect(r.exitCode).not.toBe(0);
        expect(r.failure).toMatch(/No space left on device|ENOSPC|space/i);
      } finally {
        fs.rmSync(filler, { force: true });
      }
    });
  });
});

describe('remote commands never report success on failure', () => {
  // Each stage of the ssh provider in the order a deploy reaches it (packages/targets/src/ssh/),
  // with the prefix of "<tool> <args>" the VPS's PATH shim makes exit 42 there, and what the
  // step's error line must then say: the stage's own message and the injected failure's text
  // (the tail of the remote stderr), so the step failed *at that stage* and said so. Stages up to
  // the lock owner change nothing on the host; from the env file on, a clean deploy under load
  // must follow the failed one without a dropped request.
  interface Stage {
    stage: string;
    rule: string;
    says: RegExp;
    changesHost: boolean;
  }
  const stages: Stage[] = [
    {
      stage: 'creating the app directory',
      rule: 'install -d',
      says: /Creating the app directory.*exited with code 42[\s\S]*injected failure: install/,
      changesHost: false,
    },
    {
      stage: 'holding the lock (flock holder)',
      rule: 'flock -n',
      says: /Cannot take the deploy lock on root@127\.0\.0\.1:\d+: injected failure: flock/,
      changesHost: false,
    },
    {
      stage: 'taking the lock (mkdir)',
      rule: 'mkdir {dir}/lock',
      says: /Could not take the deploy lock .*injected failure: mkdir/,
      changesHost: false,
    },
    {
      stage: 'writing the lock owner',
      rule: 'dd of={dir}/lock/owner',
      says: /dd of=.*lock\/owner.*exited with code 42[\s\S]*injected failure: dd/,
      changesHost: false,
    },
    {
      stage: 'writing the env file',
      rule: 'install -m 600',
      says: /Writing the env file.*exited with code 42[\s\S]*injected failure: install/,
      changesHost: true,
    },
    { stage: 'pulling the image', rule: 'docker pull', says: /could not pull .*injected failure: docker/, changesHost: true },
    {
      stage: 'starting the container',
      rule: 'docker run',
      says: /Starting the new container.*exited with code 42[\s\S]*injected failure: docker/,
      changesHost: true,
    },
    {
      stage: 'switching traffic (HAProxy runtime API)',
      rule: 'socat stdio',
      says: /HAProxy runtime API.*exited with code 42[\s\S]*injected failure: socat/,
      changesHost: true,
    },
    {
      stage: 'writing the current release',
      rule: 'dd of={dir}/current.new',
      says: /dd of=.*current\.new.*exited with code 42[\s\S]*injected failure: dd/,
      changesHost: true,
    },
    {
      stage: 'moving the current release into place',
      rule: 'mv {dir}/current.new',
      says: /mv .*current\.new.*exited with code 42[\s\S]*injected failure: mv/,
      changesHost: true,
    },
  ];
  const results: string[] = [];
  afterAll(() => console.log(`remote stages: ${results.join('; ')}`));

  /** Puts HAProxy back on the slot `current` names (after a stage that left them apart). */
  function repairProxy(): void {
    const now = current();
    const other = now.slot === 'blue' ? 'green' : 'blue';
    execFileSync('socat', ['stdio', `UNIX-CONNECT:${path.join(remoteDir, APP, 'haproxy.sock')}`], {
      input: `set server app/${now.slot} state ready; set server app/${other} state maint\n`,
    });
  }

  for (const { stage, rule, says, changesHost } of stages) {
    it(`a failure while ${stage} fails the step, and the host keeps serving what \`current\` says`, async () => {
      const before = current();
      const prefix = rule.replaceAll('{dir}', path.join(remoteDir, APP));
      const containersBefore = docker(['ps', '--all', '--quiet', '--filter', `label=slipway.app=${APP}`]);
      const load = startLoad(FRONT, 120);
      let r: StepResult;
      vps.failOn(prefix);
      try {
        const over: Record<string, string> = rule === 'docker pull' ? { 'image-transfer': 'pull' } : {};
        if (rule === 'docker pull') docker(['image', 'rm', image.ref]);
        r = await new Job({ workspace }).run('deploy', inputs(over));
        const hit = vps.injected();
        expect(hit.length, `the injected failure (${prefix}) was hit`).toBeGreaterThan(0);
        expect(hit.every((h) => h.startsWith(prefix))).toBe(true);
      } finally {
        vps.failOn(undefined);
        expectNoFailures(await load.stop());
      }
      try {
        expect(r.exitCode).not.toBe(0);
        expect(r.failure, r.log).toMatch(says);
        expect(await front()).toBe(200);
        expect(current(), '`current` unchanged').toEqual(before);
        expectConsistent(`${stage}: after the failed deploy`);
        if (!changesHost) {
          expect(docker(['ps', '--all', '--quiet', '--filter', `label=slipway.app=${APP}`]), 'no container added').toBe(containersBefore);
        }
      } finally {
        // Whatever this stage left, the next case starts from a host that serves what `current` says.
        repairProxy();
        const stale = lockHeld();
        if (stale) fs.rmSync(path.join(remoteDir, APP, 'lock'), { recursive: true, force: true });
        expect(stale, 'lock released').toBe(false);
      }
      if (changesHost) await cleanDeploy(stage);
      results.push(
        `${stage}: failed at the stage, old release served, lock released${changesHost ? ', next deploy ok under load' : ', nothing changed'}`,
      );
    });
  }
});
