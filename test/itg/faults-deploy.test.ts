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
import { emptyWorkspace, Job } from '../harness/job';
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
    'release-store': 'releases',
    'github-token': '',
    ...over,
  };
}

const current = (): { releaseId: string } =>
  JSON.parse(fs.readFileSync(path.join(remoteDir, APP, 'current'), 'utf8')) as { releaseId: string };
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

/** The old release serves through the fault; then the lock is free and a clean deploy works. */
async function underFault(name: string, fault: (job: Job) => Promise<void>): Promise<void> {
  const before = current();
  const load = startLoad(FRONT, 120);
  try {
    await fault(new Job({ workspace }));
  } finally {
    expectNoFailures(await load.stop());
  }
  expect(current()).toEqual(before);
  const stale = lockHeld();
  // A stale lock would fail every later test too: assert, but clear it first.
  if (stale) fs.rmSync(path.join(remoteDir, APP, 'lock'), { recursive: true, force: true });
  expect(stale, 'lock released').toBe(false);
  const later = await new Job({ workspace }).run('deploy', inputs());
  expect(later.failure, later.log).toBeUndefined();
  expect(await front()).toBe(200);
  passed.push(name);
}

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

  it('the SSH session cut mid-deploy (its sshd process killed)', async () => {
    await underFault('ssh session cut mid-deploy', async (job) => {
      const envDir = path.join(remoteDir, APP, 'env');
      const seen = new Set(fs.readdirSync(envDir));
      const step = job.run('deploy', inputs());
      // Mid-deploy: the new release's env file is on the host, its container not yet serving.
      for (let i = 0; i < 600 && !fs.readdirSync(envDir).some((f) => !seen.has(f)); i++) await new Promise((r) => setTimeout(r, 20));
      // The link is down for 3 s: every session, including the ones ssh opens to reconnect, dies.
      let killed = 0;
      const until = Date.now() + 3000;
      while (Date.now() < until) {
        for (const pid of vps.sessionPids()) {
          try {
            process.kill(pid, 'SIGKILL');
            killed++;
          } catch {
            // already gone
          }
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(killed).toBeGreaterThan(0);
      const r = await step;
      expect(r.exitCode).not.toBe(0);
      expect(r.failure).toMatch(/SSH connection to root@127\.0\.0\.1:\d+ failed|ssh root@127/);
    });
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
  // Each prefix matches one remote step of the ssh provider (see packages/targets/src/ssh/host.ts).
  it.each([
    ['creating the app directory', 'install -d'],
    ['taking the lock', 'mkdir '],
    ['writing the lock owner', 'dd of=' + '{dir}/lock/owner'],
    ['writing the env file', 'install -m 600'],
    ['pulling the image', 'docker pull'],
    ['starting the container', 'docker run'],
    ['switching traffic (HAProxy runtime API)', 'socat stdio'],
    ['writing the current release', 'mv {dir}/current.new'],
  ])('a failure while %s fails the step', async (_stage, rule) => {
    const before = current();
    vps.failOn(rule.replace('{dir}', path.join(remoteDir, APP)));
    try {
      const over: Record<string, string> = rule === 'docker pull' ? { 'image-transfer': 'pull' } : {};
      if (rule === 'docker pull') docker(['image', 'rm', image.ref]);
      const r = await new Job({ workspace }).run('deploy', inputs(over));
      expect(vps.injected().length, `the injected failure (${rule}) was hit`).toBeGreaterThan(0);
      expect(r.exitCode).not.toBe(0);
      expect(r.failure).toBeTruthy();
    } finally {
      vps.failOn(undefined);
    }
    expect(await front()).toBe(200);
    if (!rule.startsWith('mv')) expect(current()).toEqual(before);
    const stale = lockHeld();
    if (stale) fs.rmSync(path.join(remoteDir, APP, 'lock'), { recursive: true, force: true });
    expect(stale, 'lock released').toBe(false);
  });
});
