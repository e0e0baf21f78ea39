/**
 * ssh rollback benchmark (on demand, not a timed test). Against the loopback "VPS" (sshd +
 * dockerd + the HAProxy deploy sets up), two releases of the example shop deployed by the real
 * deploy action (so the old image and its stopped container are on the host), wrk (2 threads, 8
 * keep-alive connections) on the HAProxy frontend throughout. Measured per run, N rollbacks
 * alternating back and forth (each a rollback of the previous rollback):
 *  - time to the old release serving: from the rollback step's start to the host's `current`
 *    naming the target (written right after the proxy switch), polled every 20 ms; and the
 *    whole step's wall time;  target <= 10 s;
 *  - failed requests (non-2xx + socket errors) during the rollbacks; target 0.
 * Baseline in the same run: a deploy of the same, already present image (what "roll back by
 * redeploying" costs with the same proxy switch).
 *   npx vitest run --config bench/rollback/vitest.config.ts     (BENCH_ROLLBACKS=4 by default)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, it } from 'vitest';
import { emptyWorkspace, Job } from '../../test/harness/job';
import { buildDeployImage, cleanupHost, deployServices, sshInputs, startLoad } from '../../test/itg/deploy-support';
import { buildVariant } from '../../test/itg/rollback-support';

const APP = 'shoprbbench';
const PROXY = 18780;
const APP_PORT = 18700;
const ROLLBACKS = Number(process.env.BENCH_ROLLBACKS ?? 4);
const remoteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-bench-rollback-'));
let env: Record<string, string> = {};

afterAll(() => cleanupHost(APP, remoteDir, env));

const currentFile = path.join(remoteDir, APP, 'current');
const serving = (): string => {
  try {
    return (JSON.parse(fs.readFileSync(currentFile, 'utf8')) as { releaseId: string }).releaseId;
  } catch {
    return '';
  }
};

/** Runs `step` and returns when the host's current release became `releaseId` (ms from start) and the step's wall time. */
async function timed(step: () => Promise<unknown>, releaseId: () => string): Promise<{ serveMs: number; stepMs: number }> {
  const start = Date.now();
  let serveMs = NaN;
  const poll = setInterval(() => {
    const id = releaseId();
    if (Number.isNaN(serveMs) && id && serving() === id) serveMs = Date.now() - start;
  }, 20);
  try {
    await step();
  } finally {
    clearInterval(poll);
  }
  return { serveMs, stepMs: Date.now() - start };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

it('ssh rollback: time to the old release serving, failed requests', async () => {
  env = deployServices();
  Object.assign(process.env, { DOCKER_HOST: env.DOCKER_HOST ?? process.env.DOCKER_HOST });
  const base = buildDeployImage(env);
  const v2 = buildVariant('v2', base.tag, env).ref;
  const ssh = sshInputs(env);
  const common = {
    provider: 'ssh',
    environment: 'bench',
    hosts: `root@127.0.0.1:${ssh.port}`,
    'ssh-private-key': ssh.key,
    'ssh-known-hosts': ssh.knownHosts,
    'app-name': APP,
    'app-port': String(APP_PORT),
    'proxy-port': String(PROXY),
    'proxy-address': '127.0.0.1',
    'remote-dir': remoteDir,
    'health-timeout': '60s',
    'release-store': 'releases',
    'github-token': '',
  };
  const appEnv = 'DJANGO_SECRET_KEY=bench-rollback-secret-0123456789\nDJANGO_SECURE_SSL_REDIRECT=false\nDJANGO_LOG_LEVEL=WARNING';
  const job = new Job({ workspace: emptyWorkspace() });
  const deploy = async (image: string, over: Record<string, string> = {}) => {
    const r = await job.run('deploy', { ...common, image, env: appEnv, ...over });
    if (r.failure) throw new Error(r.log);
    return r.outputs['release-id']!;
  };
  const a = await deploy(base.ref, { 'setup-host': 'true' });
  const b = await deploy(v2);

  const load = startLoad(`http://127.0.0.1:${PROXY}/healthz`, 600);
  const runs: { serveMs: number; stepMs: number }[] = [];
  let expected = a;
  for (let i = 0; i < ROLLBACKS; i++) {
    const want = expected;
    runs.push(
      await timed(
        async () => {
          const r = await job.run('rollback', common);
          if (r.failure) throw new Error(r.log);
        },
        () => want,
      ),
    );
    if (serving() !== want) throw new Error(`after rollback ${i + 1} the host serves ${serving()}, expected ${want}`);
    expected = want === a ? b : a;
  }
  // Baseline: redeploy the image that served before (already on the host), same proxy switch.
  let baselineId = '';
  const baseline = await timed(
    async () => {
      baselineId = await deploy(expected === a ? base.ref : v2);
    },
    () => baselineId || '\0',
  );
  const result = await load.stop();

  const failed = result.non2xx + result.socketErrors;
  const lines = [
    `ssh rollback (old image and container on the host), ${ROLLBACKS} rollbacks back and forth, wrk 2 threads / 8 connections:`,
    `  time to the old release serving: median ${s(median(runs.map((r) => r.serveMs)))}, max ${s(Math.max(...runs.map((r) => r.serveMs)))} (target <= 10 s)`,
    `  rollback step wall time:        median ${s(median(runs.map((r) => r.stepMs)))}, max ${s(Math.max(...runs.map((r) => r.stepMs)))}`,
    `  baseline, redeploy of the same image with deploy: step ${s(baseline.stepMs)}`,
    `  requests ${result.requests} in ${result.durationSec.toFixed(1)} s; failed ${failed} (non-2xx ${result.non2xx}, socket errors ${result.socketErrors}) (target 0)`,
    `  per rollback (serving / step): ${runs.map((r) => `${s(r.serveMs)} / ${s(r.stepMs)}`).join(', ')}`,
  ];
  console.log(lines.join('\n'));
  fs.mkdirSync(path.join(os.tmpdir(), 'slipway-bench'), { recursive: true });
  fs.writeFileSync(path.join(os.tmpdir(), 'slipway-bench', 'rollback.txt'), `${lines.join('\n')}\n`);
});
