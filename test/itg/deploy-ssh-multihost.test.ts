/**
 * The deploy action's ssh provider over two real hosts, rolling one at a time:
 * - host1: the loopback "VPS" (sshd on 127.0.0.1:2222, the machine's engine), which pulls by
 *   digest from the registry on 127.0.0.1:5000;
 * - host2: test-env's `host2`, a separate machine in its own network namespace (10.213.0.2:22,
 *   its own dockerd, files and loopback), which cannot reach that registry, so the default
 *   `image-transfer: auto` streams the image to it (docker save | ssh docker load).
 * wrk runs against BOTH hosts' HAProxy frontends during every deploy that has something serving
 * (host2's from inside its namespace, against its own loopback) and must see zero failed requests.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyWorkspace, Job } from '../harness/job';
import { ensureServices } from '../harness/services';
import { buildDeployImage, cleanupHost, deployServices, sshInputs, startLoad, type LoadResult } from './deploy-support';

const APP = 'shopmh';
const PROXY_PORT = 19180;
const APP_PORT = 19100;
const SECRET = 'dj-secret-mh-7Qx-not-for-logs';
/** A query the health check never sends: its lines in a container's access log are proxied load. */
const FRONT = `http://127.0.0.1:${PROXY_PORT}/healthz?load`;

let env: Record<string, string>;
let v1: { ref: string; tag: string; repo: string };
let v2: { ref: string; tag: string };
let ssh: { key: string; knownHosts: string; port: string };
let host1: string;
let host2: string;
/** The same path on both hosts (an input shared by all hosts): host2's /tmp is its own. */
let remoteDir: string;
let workspace: string;

const h2env = (): Record<string, string> => ({ DOCKER_HOST: env.SLIPWAY_TEST_HOST2_DOCKER_HOST! });
/** A path on host2 as seen from here (host2-init.sh binds its /tmp from there). */
const onHost2 = (p: string): string => path.join(env.SLIPWAY_TEST_HOST2_ROOT!, p);

function docker(args: string[], over: Record<string, string> = {}): string {
  return execFileSync('docker', args, { env: { ...process.env, DOCKER_HOST: env.DOCKER_HOST, ...over }, stdio: ['ignore', 'pipe', 'pipe'] })
    .toString()
    .trim();
}
const docker2 = (args: string[]): string => docker(args, h2env());

function inputs(over: Record<string, string> = {}): Record<string, string> {
  return {
    provider: 'ssh',
    environment: 'production',
    image: v2.ref,
    hosts: `${host1}\n${host2}`,
    'ssh-private-key': ssh.key,
    'ssh-known-hosts': `${ssh.knownHosts.trim()}\n${fs.readFileSync(env.SLIPWAY_TEST_HOST2_KNOWN_HOSTS!, 'utf8').trim()}\n`,
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

interface Current {
  releaseId: string;
  slot: string;
  container: string;
  image: string;
}
const appDir = (host: 1 | 2): string => (host === 1 ? path.join(remoteDir, APP) : onHost2(path.join(remoteDir, APP)));
const current = (host: 1 | 2): Current => JSON.parse(fs.readFileSync(path.join(appDir(host), 'current'), 'utf8')) as Current;

function records(): { id: string; outcome: string; details?: { hosts: { host: string; slot: string; previous: string | null }[] } }[] {
  const dir = path.join(workspace, 'releases', 'production');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as ReturnType<typeof records>[number]);
}

/** The backend's servers as HAProxy's runtime API reports them (the socket is reachable from here on both hosts). */
function servers(host: 1 | 2): Record<string, string> {
  const csv = execFileSync('socat', ['stdio', `UNIX-CONNECT:${path.join(appDir(host), 'haproxy.sock')}`], {
    input: 'show stat\n',
  }).toString();
  const out: Record<string, string> = {};
  for (const line of csv.split('\n')) {
    const f = line.split(',');
    if (f[0] === 'app' && (f[1] === 'blue' || f[1] === 'green')) out[f[1]] = f[17]!;
  }
  return out;
}

/** No deploy holds the host's lock: no lock directory, and the flock is free. */
function expectUnlocked(host: 1 | 2): void {
  expect(fs.existsSync(path.join(appDir(host), 'lock')), `lock dir on host${host}`).toBe(false);
  execFileSync('flock', ['-n', path.join(appDir(host), 'deploy.flock'), 'true']);
}

function expectNoFailures(load: LoadResult, what: string): void {
  console.info(
    `${what} proxy under load: ${load.requests} requests in ${load.durationSec.toFixed(1)} s, ${load.non2xx} non-2xx, ${load.socketErrors} socket errors`,
  );
  expect(load.requests, `${what}\n${load.raw}`).toBeGreaterThan(100);
  expect({ what, non2xx: load.non2xx, socketErrors: load.socketErrors }, load.raw).toEqual({ what, non2xx: 0, socketErrors: 0 });
}

/** Runs a deploy with wrk on both hosts' proxies; the totals of each. */
async function deployUnderLoad(job: Job, over: Record<string, string> = {}) {
  const load1 = startLoad(FRONT);
  const load2 = startLoad(FRONT, 120, env.SLIPWAY_TEST_HOST2_NETNS);
  const result = await job.run('deploy', inputs(over));
  return { result, load1: await load1.stop(), load2: await load2.stop() };
}

/** Lines a release's container logged for proxied load (the health check never sends `?load`). */
function proxiedRequests(host: 1 | 2, container: string): number {
  // gunicorn's access log goes to stdout.
  const logs = execFileSync('docker', ['logs', container], {
    env: { ...process.env, DOCKER_HOST: host === 1 ? env.DOCKER_HOST : env.SLIPWAY_TEST_HOST2_DOCKER_HOST },
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 256 << 20,
  }).toString();
  return logs.split('\n').filter((l) => l.includes('"GET /healthz?load ')).length;
}

/** This engine (host1's and the runner's) forgets `ref`; the local build tag keeps the layers. */
function untagDigest(ref: string): void {
  if (docker(['image', 'ls', '--digests', '--format', '{{.Repository}}@{{.Digest}}']).split('\n').includes(ref))
    docker(['image', 'rm', ref]);
}

/**
 * Samples the peak RSS (VmHWM, kB) of the action's node process while `run` goes: it is found by
 * a marker in its environment (its docker and ssh children carry it too, but are not node).
 */
async function peakRssKb<T>(marker: string, run: () => Promise<T>): Promise<{ value: T; peakKb: number; samples: number }> {
  let peakKb = 0;
  let samples = 0;
  const sample = (): void => {
    for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        if (!path.basename(fs.readlinkSync(`/proc/${pid}/exe`)).startsWith('node')) continue;
        if (!fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(marker)) continue;
        const kb = Number(/^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
        samples++;
        peakKb = Math.max(peakKb, kb);
      } catch {
        // gone, or not ours to read
      }
    }
  };
  const timer = setInterval(sample, 100);
  try {
    const value = await run();
    return { value, peakKb, samples };
  } finally {
    clearInterval(timer);
  }
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function cleanupHosts(): void {
  cleanupHost(APP, remoteDir, env);
  cleanupHost(APP, onHost2(remoteDir), { DOCKER_HOST: env.SLIPWAY_TEST_HOST2_DOCKER_HOST! });
}

beforeAll(() => {
  env = { ...deployServices(), ...ensureServices(['host2']) };
  Object.assign(process.env, { DOCKER_HOST: env.DOCKER_HOST ?? process.env.DOCKER_HOST });
  v1 = buildDeployImage(env);
  // A second release: the same layers under a new config, so a new digest to pull and to stream.
  const tag2 = `${v1.tag}-mh2`;
  execFileSync('docker', ['build', '--quiet', '--tag', tag2, '-'], {
    input: `FROM ${v1.tag}\nLABEL org.slipway.test=multihost-release-2\n`,
    env: { ...process.env, DOCKER_BUILDKIT: '0' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const pushed = `${v1.repo}:${tag2.split(':')[1]}`;
  docker(['tag', tag2, pushed]);
  docker(['push', '--quiet', pushed]);
  const digests = JSON.parse(docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', tag2])) as string[];
  v2 = { ref: digests.find((d) => d.startsWith(`${v1.repo}@`))!, tag: tag2 };
  expect(v2.ref).toMatch(/@sha256:/);
  ssh = sshInputs(env);
  host1 = `root@127.0.0.1:${ssh.port}`;
  host2 = `root@${env.SLIPWAY_TEST_HOST2}`;
  remoteDir = fs.mkdtempSync('/tmp/slipway-multihost-');
  workspace = emptyWorkspace();
  // host2 starts without the images (it must get them streamed) and without a previous run's app.
  cleanupHost(APP, '/nonexistent', env);
  cleanupHost(APP, '/nonexistent', h2env());
  for (const t of [v1.tag, tag2]) {
    const id = docker(['image', 'inspect', '--format', '{{.Id}}', t]);
    try {
      docker2(['image', 'rm', '-f', id]);
    } catch {
      // not there
    }
  }
}, 900_000);

afterAll(() => {
  if (!env || !remoteDir) return;
  cleanupHosts();
  for (const t of [v1?.tag, v2?.tag].filter((x): x is string => Boolean(x))) {
    try {
      docker2(['image', 'rm', '-f', docker(['image', 'inspect', '--format', '{{.Id}}', t])]);
    } catch {
      // not there
    }
  }
});

describe('deploy (ssh provider) to two hosts', () => {
  it('rolls out host by host: host1 pulls by digest, host2 (no registry) gets the image streamed; under load on both proxies, no failed request', async () => {
    // Only the local build tags keep the layers here: host1 (this engine) has to pull the digests.
    for (const ref of [v1.ref, v2.ref]) untagDigest(ref);
    const job = new Job({ workspace });
    const marker = `SLIPWAY_TEST_MEM_PROBE=${process.pid}-${Date.now()}`;
    const probe = await peakRssKb(marker, () =>
      job.run('deploy', inputs({ image: v1.ref, 'setup-host': 'true' }), { env: { [marker.split('=')[0]!]: marker.split('=')[1]! } }),
    );
    const first = probe.value;
    expect(first.failure, first.log).toBeUndefined();
    // The image is piped from docker save into ssh, never held whole in the action's memory.
    const streamed = new RegExp(`${escape(host2)}: streamed sha256:[0-9a-f]{12} over SSH \\((\\d+) bytes in [\\d.]+ s\\)`).exec(first.log);
    expect(streamed, first.log).not.toBeNull();
    const bytes = Number(streamed![1]);
    console.info(`streamed ${bytes} bytes to host2; the action's peak RSS ${probe.peakKb} kB (${probe.samples} samples)`);
    expect(bytes).toBeGreaterThan(Number(docker(['image', 'inspect', '--format', '{{.Size}}', v1.tag])) / 2);
    expect(probe.samples).toBeGreaterThan(10);
    // Measured: 115-150 MB peak for ~290 MB streamed; reading the whole tar into a Buffer needed more than its size.
    expect(probe.peakKb * 1024).toBeLessThan(bytes * 0.8);
    expect(first.log).toContain(`${host1}: pulled ${v1.ref}`);
    expect(first.log).toMatch(new RegExp(`${escape(host2)}: cannot pull \\(.*connection refused.*\\); streaming the image over SSH`));
    for (const h of [1, 2] as const) expect(current(h)).toMatchObject({ releaseId: first.outputs['release-id'], slot: 'blue' });
    // host2 runs the streamed image by id: a loaded image carries no registry digest.
    expect(current(2).image).toBe(docker(['image', 'inspect', '--format', '{{.Id}}', v1.tag]));

    const { result: second, load1, load2 } = await deployUnderLoad(job);
    expect(second.failure, second.log).toBeUndefined();
    expectNoFailures(load1, 'host1');
    expectNoFailures(load2, 'host2');
    const id = second.outputs['release-id']!;
    // One host at a time, in the order of `hosts`: host1 is done before host2 starts.
    const log = second.log;
    const order = [
      `Deploy to ${host1}`,
      `${host1}: pulled ${v2.ref}`,
      `${host1}: ${id} serves on slot green`,
      `Deploy to ${host2}`,
      `${host2}: cannot pull`,
      `${host2}: ${id} serves on slot green`,
    ].map((s) => log.indexOf(s));
    expect(order.every((i) => i >= 0) && order.every((i, k) => k === 0 || i > order[k - 1]!), log).toBe(true);
    // Both hosts serve the new release: recorded, routed to by HAProxy, and it answered the load.
    for (const h of [1, 2] as const) {
      expect(current(h)).toMatchObject({ releaseId: id, slot: 'green', container: `${APP}-${id}` });
      // Servers without health checks: `no check` when they get traffic, MAINT when not.
      expect(servers(h)).toEqual({ blue: 'MAINT', green: 'no check' });
      expect(proxiedRequests(h, `${APP}-${id}`), `host${h}`).toBeGreaterThan(0);
      expectUnlocked(h);
    }
    expect(docker2(['inspect', '--format', '{{.State.Running}} {{.Config.Image}}', `${APP}-${id}`])).toBe(
      `true ${docker(['image', 'inspect', '--format', '{{.Id}}', v2.tag])}`,
    );
    // The env file is 0600 on host2 too; the secret is in no log line.
    expect(fs.statSync(path.join(appDir(2), 'env', `${id}.env`)).mode & 0o777).toBe(0o600);
    expect(second.shownLog).not.toContain(SECRET);
    // One record per deploy, naming both hosts in order.
    const recs = records();
    expect(recs.map((r) => [r.id, r.outcome])).toEqual([
      [first.outputs['release-id'], 'success'],
      [id, 'success'],
    ]);
    expect(recs[1]!.details!.hosts.map((h) => [h.host, h.slot, h.previous])).toEqual([
      [host1, 'green', first.outputs['release-id']],
      [host2, 'green', first.outputs['release-id']],
    ]);
  });

  it('host2 fails its health check: rolling stops there, host1 is moved back, every host serves the old release, locks released, no failed request', async () => {
    const before = { 1: current(1), 2: current(2) };
    const recordsBefore = records().length;
    // A process that is not Slipway's holds host2's idle slot port (it answers 404 to /healthz):
    // the new container cannot bind it, and the slot never turns healthy.
    const idle = before[2].slot === 'green' ? APP_PORT : APP_PORT + 1;
    const squatter: ChildProcess = spawn(
      'ip',
      ['netns', 'exec', env.SLIPWAY_TEST_HOST2_NETNS!, 'python3', '-u', '-m', 'http.server', '--bind', '127.0.0.1', String(idle)],
      { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('squatter did not start')), 15_000);
        squatter.stdout!.on('data', (d: Buffer) => {
          if (d.toString().includes('Serving HTTP')) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      const job = new Job({ workspace });
      // keep-releases 1: nothing but the serving release is kept once a deploy is done. Pruning
      // host1 before host2 had passed would leave nothing to move host1 back to.
      const { result, load1, load2 } = await deployUnderLoad(job, { image: v1.ref, 'health-timeout': '8s', 'keep-releases': '1' });
      expect(result.exitCode).not.toBe(0);
      const id = result.outputs['release-id']!;
      // One line, naming the host and the release's container.
      expect(result.failure).toMatch(
        new RegExp(`^deploy failed: Health check of ${APP}-${id} on ${escape(host2)} failed after \\d+ attempt\\(s\\).*status 404`),
      );
      expect(result.failure).not.toContain('\n');
      // host2 got v1 streamed by the first deploy: found by image id, not streamed again.
      expect(result.log).toContain(
        `${host2}: image already present (${docker(['image', 'inspect', '--format', '{{.Id}}', v1.tag]).slice(0, 19)}`,
      );
      expect(result.log).not.toContain(`${host2}: cannot pull`);
      expect(result.log).not.toMatch(new RegExp(`${escape(host2)}: streamed`));
      expectNoFailures(load1, 'host1');
      expectNoFailures(load2, 'host2');
      // host1 had switched: it was moved back; host2 never switched.
      expect(result.log).toContain(`${host1}: ${id} serves on slot ${before[1].slot === 'green' ? 'blue' : 'green'}`);
      expect(result.log).toContain(`Roll back ${host1}`);
      expect(result.log).toContain(`${host1}: back on ${before[1].releaseId}`);
      for (const h of [1, 2] as const) {
        expect(current(h), `host${h}`).toEqual(before[h]);
        expect(servers(h), `host${h}`).toEqual(
          before[h].slot === 'green' ? { blue: 'MAINT', green: 'no check' } : { blue: 'no check', green: 'MAINT' },
        );
        expectUnlocked(h);
      }
      expect(docker(['inspect', '--format', '{{.State.Running}}', before[1].container])).toBe('true');
      expect(docker2(['inspect', '--format', '{{.State.Running}}', before[2].container])).toBe('true');
      // The failed release's containers and env files (its secrets) are gone from both hosts.
      expect(docker(['ps', '-aq', '--filter', `name=${APP}-${id}`])).toBe('');
      expect(docker2(['ps', '-aq', '--filter', `name=${APP}-${id}`])).toBe('');
      for (const h of [1, 2] as const) expect(fs.readdirSync(path.join(appDir(h), 'env')), `host${h}`).not.toContain(`${id}.env`);
      const recs = records();
      expect(recs).toHaveLength(recordsBefore + 1);
      expect(recs.at(-1)).toMatchObject({ id, outcome: 'rolled-back' });
    } finally {
      squatter.kill('SIGTERM');
    }
  });

  it('the next deploy succeeds on both hosts, under load (host2 first; a runner without the image pulls it, and host2 has it by id: not streamed again)', async () => {
    const before = current(1).releaseId;
    // As on a deploy job's fresh runner: the image is in the registry only. host2 goes first and
    // cannot pull, so the runner pulls it to find its id, which host2 already has (streamed by the
    // first test's second deploy); host1 then finds it present.
    untagDigest(v2.ref);
    const job = new Job({ workspace });
    const { result, load1, load2 } = await deployUnderLoad(job, { hosts: `${host2}\n${host1}` });
    expect(result.failure, result.log).toBeUndefined();
    expectNoFailures(load1, 'host1');
    expectNoFailures(load2, 'host2');
    const id = result.outputs['release-id']!;
    expect(result.outputs['previous-release-id']).toBe(before);
    const order = [
      `Deploy to ${host2}`,
      `${host2}: cannot pull`,
      `${host2}: image already present (${docker(['image', 'inspect', '--format', '{{.Id}}', v2.tag]).slice(0, 19)}, by image id; not streamed again)`,
      `${host2}: ${id} serves`,
      `Deploy to ${host1}`,
      `${host1}: image already present`,
    ].map((line) => result.log.indexOf(line));
    expect(order.every((i) => i >= 0) && order.every((i, k) => k === 0 || i > order[k - 1]!), result.log).toBe(true);
    // host2 already had v2 (loaded, so without its registry digest): not sent again, and the
    // container runs that very image, by id.
    expect(result.log).not.toMatch(new RegExp(`${escape(host2)}: streamed`));
    expect(docker2(['inspect', '--format', '{{.State.Running}} {{.Config.Image}}', `${APP}-${id}`])).toBe(
      `true ${docker(['image', 'inspect', '--format', '{{.Id}}', v2.tag])}`,
    );
    for (const h of [1, 2] as const) {
      expect(current(h)).toMatchObject({ releaseId: id, container: `${APP}-${id}` });
      expect(proxiedRequests(h, `${APP}-${id}`), `host${h}`).toBeGreaterThan(0);
      expectUnlocked(h);
    }
    expect(records().at(-1)).toMatchObject({ id, outcome: 'success' });
  });
});
