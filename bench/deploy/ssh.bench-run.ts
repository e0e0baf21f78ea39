/**
 * ssh provider benchmark (on demand, not a timed test). Against the loopback "VPS" (sshd +
 * dockerd + the HAProxy the action sets up), with wrk (2 threads, 8 keep-alive connections)
 * on the HAProxy frontend throughout:
 *  1. deploy time with the image already on the host (N deploys), next to the baseline: the bare
 *     `docker run` + first healthy answer of the same image over the same SSH (the floor);
 *  2. failed requests during those deploys (target 0 of >= 5,000), next to the baseline: a naive
 *     stop-old/start-new switch of the same image on the proxy's port path;
 *  3. a deploy whose health check never passes: the longest gap without a 200 from the
 *     frontend (a 20 ms prober), and the time from the failed check to the step's end.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, it } from 'vitest';
import { emptyWorkspace, Job } from '../../test/harness/job';
import { buildDeployImage, cleanupHost, deployServices, sshInputs, startLoad } from '../../test/itg/deploy-support';

const APP = 'shopbench';
const PROXY = 18580;
const APP_PORT = 18500;
const DEPLOYS = Number(process.env.BENCH_DEPLOYS ?? 3);
const remoteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-bench-deploy-'));
let env: Record<string, string> = {};

afterAll(() => cleanupHost(APP, remoteDir, env));

function ssh(keyFile: string, knownHosts: string, port: string, argv: string[]): string {
  return execFileSync('ssh', [
    '-F',
    '/dev/null',
    '-i',
    keyFile,
    '-o',
    `UserKnownHostsFile=${knownHosts}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-p',
    port,
    'root@127.0.0.1',
    ...argv,
  ])
    .toString()
    .trim();
}

function get(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
  });
}

async function waitHealthy(url: string): Promise<void> {
  while ((await get(url)) !== 200) await new Promise((r) => setTimeout(r, 100));
}

/** Polls every 20 ms; returns the longest time between two 200s (poll interval and latency included). */
function prober(url: string): { stop: () => Promise<number> } {
  let running = true;
  let lastOk = Date.now();
  let worst = 0;
  const loop = (async () => {
    while (running) {
      const ok = (await get(url)) === 200;
      const now = Date.now();
      worst = Math.max(worst, now - lastOk);
      if (ok) lastOk = now;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return worst;
    },
  };
}

it('ssh provider', async () => {
  env = deployServices();
  const image = buildDeployImage(env);
  const s = sshInputs(env);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-bench-keys-'));
  const keyFile = path.join(dir, 'id');
  const khFile = path.join(dir, 'kh');
  fs.writeFileSync(keyFile, s.key, { mode: 0o600 });
  fs.writeFileSync(khFile, s.knownHosts);
  const workspace = emptyWorkspace();
  const inputs = (over: Record<string, string> = {}) => ({
    provider: 'ssh',
    environment: 'bench',
    image: image.ref,
    hosts: `root@127.0.0.1:${s.port}`,
    'ssh-private-key': s.key,
    'ssh-known-hosts': s.knownHosts,
    'app-name': APP,
    'app-port': String(APP_PORT),
    'proxy-port': String(PROXY),
    'proxy-address': '127.0.0.1',
    'remote-dir': remoteDir,
    env: 'DJANGO_SECRET_KEY=bench-secret-0123456789\nDJANGO_SECURE_SSL_REDIRECT=false\nDJANGO_LOG_LEVEL=WARNING',
    'release-store': 'releases',
    'keep-releases': '2',
    ...over,
  });
  const front = `http://127.0.0.1:${PROXY}/healthz`;
  const lines: string[] = [];
  const out = (l: string): void => {
    lines.push(l);
    console.log(l);
  };

  // Baseline floor: docker run + first healthy answer, over the same SSH, same image.
  const t0 = Date.now();
  ssh(keyFile, khFile, s.port, [
    'docker',
    'run',
    '-d',
    '--name',
    `${APP}-floor`,
    '--network',
    'host',
    '-e',
    `PORT=${APP_PORT + 9}`,
    '-e',
    'DJANGO_SECRET_KEY=x',
    image.ref,
  ]);
  await waitHealthy(`http://127.0.0.1:${APP_PORT + 9}/healthz`);
  const floorMs = Date.now() - t0;
  ssh(keyFile, khFile, s.port, ['docker', 'rm', '-f', `${APP}-floor`]);
  out(`baseline: docker run + healthy over ssh: ${(floorMs / 1000).toFixed(1)} s`);

  const job = new Job({ workspace });
  const setup = await job.run('deploy', inputs({ 'setup-host': 'true' }));
  if (setup.failure) throw new Error(setup.log);

  // 1 + 2: deploys with the image on the host, under load.
  const load = startLoad(front, 900);
  const times: number[] = [];
  for (let i = 0; i < DEPLOYS; i++) {
    const r = await job.run('deploy', inputs());
    if (r.failure) throw new Error(r.failure);
    times.push(r.durationMs);
  }
  const l = await load.stop();
  out(
    `deploy with image on host (${DEPLOYS} runs): ${times.map((t) => (t / 1000).toFixed(1)).join(', ')} s; median ${(times.sort((a, b) => a - b)[Math.floor(times.length / 2)]! / 1000).toFixed(1)} s`,
  );
  out(
    `failed requests during ${DEPLOYS} deploys: ${l.non2xx + l.socketErrors} of ${l.requests} (non-2xx ${l.non2xx}, socket errors ${l.socketErrors}: ${l.socketDetail})`,
  );
  out(
    `  wrk: ${l.raw
      .split('\n')
      .filter((x) => /Latency|Req\/Sec|requests in/.test(x))
      .map((x) => x.trim())
      .join(' | ')}`,
  );

  // Baseline: naive switch (stop the serving container, start the new one on the same port).
  const cur = JSON.parse(fs.readFileSync(path.join(remoteDir, APP, 'current'), 'utf8')) as { container: string; slot: string };
  const port = cur.slot === 'blue' ? APP_PORT : APP_PORT + 1;
  const naiveLoad = startLoad(front, 900);
  await new Promise((r) => setTimeout(r, 1000));
  ssh(keyFile, khFile, s.port, ['docker', 'stop', '--time', '30', cur.container]);
  ssh(keyFile, khFile, s.port, [
    'docker',
    'run',
    '-d',
    '--name',
    `${APP}-naive`,
    '--network',
    'host',
    '-e',
    `PORT=${port}`,
    '-e',
    'DJANGO_SECRET_KEY=x',
    '-e',
    'DJANGO_SECURE_SSL_REDIRECT=false',
    image.ref,
  ]);
  await waitHealthy(`http://127.0.0.1:${port}/healthz`);
  const n = await naiveLoad.stop();
  out(
    `baseline naive stop/start under the same load: ${n.non2xx + n.socketErrors} failed of ${n.requests} (non-2xx ${n.non2xx}, socket errors ${n.socketErrors}: ${n.socketDetail})`,
  );
  ssh(keyFile, khFile, s.port, ['docker', 'rm', '-f', `${APP}-naive`]);
  ssh(keyFile, khFile, s.port, ['docker', 'start', cur.container]);
  await waitHealthy(`http://127.0.0.1:${port}/healthz`);

  // 3: a health check that never passes.
  const probe = prober(front);
  const failLoad = startLoad(front, 900);
  const failed = await job.run(
    'deploy',
    inputs({ env: 'DJANGO_SECRET_KEY=x\nDATABASE_URL=postgres://nobody@127.0.0.1:1/none', 'health-timeout': '5s' }),
  );
  const fl = await failLoad.stop();
  const gap = await probe.stop();
  const failLine = failed.log.split('\n').find((x) => /health FAILED/.test(x));
  out(
    `failing deploy: exit ${failed.exitCode}; longest gap without a 200 from the frontend: ${gap} ms (prober every 20 ms); failed requests ${fl.non2xx + fl.socketErrors} of ${fl.requests}`,
  );
  out(
    `  the old release never stopped serving; step ended ${(failed.durationMs / 1000).toFixed(1)} s after start (${failLine?.trim() ?? 'no health line'})`,
  );
  fs.rmSync(dir, { recursive: true, force: true });
  fs.writeFileSync(path.join(os.tmpdir(), 'slipway-bench-deploy.txt'), `${lines.join('\n')}\n`);
});
