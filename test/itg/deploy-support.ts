/**
 * What the deploy integration tests and bench/deploy share: the example app's image (built once
 * per content hash, pushed to the loopback registry), the ssh inputs for the loopback "VPS",
 * a bounded wrk load against the HAProxy frontend, and cleanup of everything a deploy leaves
 * on the host (containers, haproxy, remote dir).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../harness/job';
import { ensureServices } from '../harness/services';

const FIXTURE = path.join(REPO_ROOT, 'test', 'fixtures', 'deploy-image');
const CACHE = path.join(os.tmpdir(), 'slipway-deploy-cache');

function sh(tool: string, args: string[], env: Record<string, string> = {}, input?: string): string {
  return execFileSync(tool, args, {
    env: { ...process.env, ...env },
    input,
    stdio: ['pipe', 'pipe', 'pipe'],
    maxBuffer: 64 << 20,
  }).toString();
}

function hashTree(dir: string, hash: crypto.Hash): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (/^(__pycache__|db\.sqlite3|staticfiles|\.venv)$/.test(e.name)) continue;
    const p = path.join(dir, e.name);
    hash.update(e.name);
    if (e.isDirectory()) hashTree(p, hash);
    else hash.update(fs.readFileSync(p));
  }
}

/**
 * The example shop app's image in the engine (tag `slipway-deploy-test/shop:<hash>`) and in the
 * registry; returns the registry reference by digest.
 */
export function buildDeployImage(env: Record<string, string>): { ref: string; tag: string; repo: string } {
  const hash = crypto.createHash('sha256');
  hashTree(FIXTURE, hash);
  hashTree(path.join(REPO_ROOT, 'example'), hash);
  const id = hash.digest('hex').slice(0, 12);
  const tag = `slipway-deploy-test/shop:${id}`;
  const denv = { DOCKER_BUILDKIT: '0', ...(env.DOCKER_HOST ? { DOCKER_HOST: env.DOCKER_HOST } : {}) };
  const exists = (ref: string): boolean => {
    try {
      sh('docker', ['image', 'inspect', ref], denv);
      return true;
    } catch {
      return false;
    }
  };
  if (!exists(tag)) {
    const wheels = path.join(CACHE, 'wheels');
    fs.mkdirSync(wheels, { recursive: true });
    sh('python3', [
      '-m',
      'pip',
      'download',
      '--quiet',
      '--only-binary=:all:',
      '--python-version',
      '3.11',
      '--implementation',
      'cp',
      '--platform',
      'manylinux2014_x86_64',
      '--platform',
      'manylinux_2_17_x86_64',
      '-d',
      wheels,
      '-r',
      path.join(REPO_ROOT, 'example', 'requirements.txt'),
    ]);
    const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-deploy-ctx-'));
    try {
      fs.copyFileSync(path.join(FIXTURE, 'Dockerfile'), path.join(ctx, 'Dockerfile'));
      fs.copyFileSync(path.join(REPO_ROOT, 'example', 'requirements.txt'), path.join(ctx, 'requirements.txt'));
      fs.cpSync(wheels, path.join(ctx, 'wheels'), { recursive: true });
      fs.cpSync(path.join(REPO_ROOT, 'example'), path.join(ctx, 'app'), {
        recursive: true,
        filter: (src) => !/(__pycache__|db\.sqlite3|staticfiles|\.venv)/.test(src),
      });
      sh('docker', ['build', '--quiet', '--tag', tag, ctx], denv);
    } finally {
      fs.rmSync(ctx, { recursive: true, force: true });
    }
  }
  const registry = env.SLIPWAY_TEST_REGISTRY ?? '127.0.0.1:5000';
  const repo = `${registry}/slipway-deploy-test/shop`;
  sh('docker', ['tag', tag, `${repo}:${id}`], denv);
  sh('docker', ['push', '--quiet', `${repo}:${id}`], denv);
  const digests = JSON.parse(sh('docker', ['image', 'inspect', '--format', '{{json .RepoDigests}}', tag], denv)) as string[];
  const ref = digests.find((d) => d.startsWith(`${repo}@`));
  if (!ref) throw new Error(`no registry digest for ${tag}: ${digests.join(', ')}`);
  return { ref, tag, repo };
}

/** The services every deploy test and the bench need. */
export function deployServices(): Record<string, string> {
  return ensureServices(['docker', 'base-image', 'registry', 'sshd', 'haproxy', 'load']);
}

/** A value that is either a file path or the content itself. */
function contentOf(value: string | undefined, fallbackFile: string): string {
  const v = value ?? fallbackFile;
  return fs.existsSync(v) ? fs.readFileSync(v, 'utf8') : v;
}

export function sshInputs(env: Record<string, string>): { key: string; knownHosts: string; port: string } {
  const dir = '/var/lib/slipway-test/ssh';
  return {
    key: contentOf(env.SLIPWAY_TEST_SSH_KEY, path.join(dir, 'user_key')),
    knownHosts: contentOf(env.SLIPWAY_TEST_SSH_KNOWN_HOSTS, path.join(dir, 'known_hosts')),
    port: env.SLIPWAY_TEST_SSH_PORT ?? '2222',
  };
}

export interface LoadResult {
  requests: number;
  non2xx: number;
  socketErrors: number;
  /** wrk's own breakdown: connect, read, write, timeout. */
  socketDetail: string;
  durationSec: number;
  raw: string;
}

/**
 * wrk against the proxy on loopback: 2 threads, 8 keep-alive connections, bounded by `maxSec`;
 * `stop()` ends it early (SIGINT: wrk prints its totals) and parses them. `netns`: run wrk in
 * that network namespace (a test host's own, e.g. host2's), against its own loopback.
 */
export function startLoad(url: string, maxSec = 90, netns?: string, paceMs = 0): { stop: () => Promise<LoadResult> } {
  if (!/^http:\/\/127\.0\.0\.1:\d+\//.test(url)) throw new Error(`load only against 127.0.0.1: ${url}`);
  const wrk = ['wrk', '-t2', '-c8', `-d${maxSec}s`, '--timeout', '5s', ...pacing(paceMs), url];
  // `ip netns exec` execs wrk: the child is wrk itself, so SIGINT reaches it.
  const argv = netns ? ['ip', 'netns', 'exec', netns, ...wrk] : wrk;
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const done = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const started = Date.now();
  return {
    stop: async () => {
      // Give wrk a moment of steady state after the deploy, then end it.
      await new Promise((r) => setTimeout(r, 500));
      child.kill('SIGINT');
      await done;
      return parseWrk(out, (Date.now() - started) / 1000);
    },
  };
}

/**
 * `paceMs` > 0: each connection waits that long between its requests (wrk's Lua `delay()`), so the
 * load leaves CPU to the deploy it runs through (the test machine has two cores); 0: as fast as it goes.
 */
function pacing(paceMs: number): string[] {
  if (paceMs <= 0) return [];
  const script = path.join(os.tmpdir(), `slipway-wrk-pace-${Math.round(paceMs)}.lua`);
  if (!fs.existsSync(script)) fs.writeFileSync(script, `function delay()\n  return ${Math.round(paceMs)}\nend\n`);
  return ['-s', script];
}

export function parseWrk(out: string, durationSec: number): LoadResult {
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = se ? se.slice(1, 5).reduce((a, b) => a + Number(b), 0) : 0;
  if (!Number.isFinite(requests)) throw new Error(`wrk printed no totals:\n${out}`);
  const socketDetail = se ? `connect ${se[1]}, read ${se[2]}, write ${se[3]}, timeout ${se[4]}` : 'none';
  return { requests, non2xx, socketErrors, socketDetail, durationSec, raw: out };
}

/** Removes what deploys of `app` left on the loopback host: containers, haproxy, remote dir. */
/** Removes the apps' containers, stops their HAProxy and removes the host's remote dir (once, after every app). */
export function cleanupHost(apps: string | string[], remoteDir: string, env: Record<string, string>): void {
  for (const app of typeof apps === 'string' ? [apps] : apps) cleanupApp(app, remoteDir, env);
  fs.rmSync(remoteDir, { recursive: true, force: true });
}

function cleanupApp(app: string, remoteDir: string, env: Record<string, string>): void {
  const denv: Record<string, string> = env.DOCKER_HOST ? { DOCKER_HOST: env.DOCKER_HOST } : {};
  try {
    const ids = sh('docker', ['ps', '-aq', '--filter', `label=slipway.app=${app}`], denv)
      .split('\n')
      .filter(Boolean);
    if (ids.length) sh('docker', ['rm', '-f', ...ids], denv);
  } catch {
    // nothing to remove
  }
  const pidFile = path.join(remoteDir, app, 'haproxy.pid');
  if (fs.existsSync(pidFile)) {
    for (const pid of fs.readFileSync(pidFile, 'utf8').split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGTERM');
      } catch {
        // already gone
      }
    }
  }
}

/** A process that exists and is not a zombie (a stopped gunicorn's pid may linger as one). */
export function processAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    return !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** gunicorn processes (masters and workers) whose command line runs from `<appDir>/releases/`. */
export function releaseGunicorns(appDir: string): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  if (!appDir) return out;
  for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmdline = fs.readFileSync(`/proc/${p}/cmdline`, 'latin1').split('\0').join(' ');
      if (cmdline.includes(`${appDir}/releases/`) && cmdline.includes('gunicorn')) out.push({ pid: Number(p), cmdline });
    } catch {
      // gone
    }
  }
  return out;
}
