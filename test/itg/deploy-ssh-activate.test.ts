/**
 * Serving a kept release again over ssh (rollback's activate), against the real sshd on
 * 127.0.0.1:2222, Docker and HAProxy: the release's stopped container is started again when it
 * was made for the slot it goes to (same container, no create), and recreated when it was not
 * (it listened on the slot the serving release holds now). wrk sees no failed request.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyWorkspace, Job, type StepResult } from '../harness/job';
import { buildDeployImage, cleanupHost, deployServices, sshInputs, startLoad, type LoadResult } from './deploy-support';

const APP = 'shopkept';
const APP_PORT = 17800;
const PROXY_PORT = 17880;
const FRONT = `http://127.0.0.1:${PROXY_PORT}/healthz`;

let env: Record<string, string>;
let image: string;
let ssh: { key: string; knownHosts: string; port: string };
let remoteDir: string;

function common(): Record<string, string> {
  return {
    provider: 'ssh',
    environment: 'kept',
    hosts: `root@127.0.0.1:${ssh.port}`,
    'ssh-private-key': ssh.key,
    'ssh-known-hosts': ssh.knownHosts,
    'app-name': APP,
    'app-port': String(APP_PORT),
    'proxy-port': String(PROXY_PORT),
    'proxy-address': '127.0.0.1',
    'remote-dir': remoteDir,
    'health-timeout': '60s',
    'release-store': 'releases',
    'github-token': '',
  };
}

const APP_ENV = 'DJANGO_SECRET_KEY=kept-itg-secret-0123456789abcdef\nDJANGO_SECURE_SSL_REDIRECT=false\nDJANGO_LOG_LEVEL=WARNING';
const ok = (r: StepResult): void => expect(r.failure, r.log).toBeUndefined();
const current = (): { releaseId: string; slot: string } =>
  JSON.parse(fs.readFileSync(path.join(remoteDir, APP, 'current'), 'utf8')) as { releaseId: string; slot: string };
const containerId = (release: string): string =>
  execFileSync('docker', ['inspect', '--format', '{{.Id}}', `${APP}-${release}`])
    .toString()
    .trim();

function expectNoFailures(load: LoadResult): void {
  expect(load.requests, load.raw).toBeGreaterThan(100);
  expect({ non2xx: load.non2xx, socketErrors: load.socketErrors }, load.raw).toEqual({ non2xx: 0, socketErrors: 0 });
}

beforeAll(() => {
  env = deployServices();
  Object.assign(process.env, { DOCKER_HOST: env.DOCKER_HOST ?? process.env.DOCKER_HOST });
  image = buildDeployImage(env).ref;
  ssh = sshInputs(env);
  remoteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-kept-host-'));
  cleanupHost(APP, path.join(os.tmpdir(), 'none'), env);
});

afterAll(() => {
  if (env) cleanupHost(APP, remoteDir, env);
});

describe('activate a kept release (ssh)', () => {
  it('starts the kept container when it fits the slot, recreates it when it does not', async () => {
    const job = new Job({ workspace: emptyWorkspace() });
    const deploy = async (over: Record<string, string> = {}): Promise<string> => {
      const r = await job.run('deploy', { ...common(), image, env: APP_ENV, ...over });
      ok(r);
      return r.outputs['release-id']!;
    };
    const a = await deploy({ 'setup-host': 'true' });
    const b = await deploy();
    expect([current().releaseId, current().slot]).toEqual([b, 'green']);

    // A was made for blue, B serves on green: A's own container goes back on blue.
    const keptA = containerId(a);
    let load = startLoad(FRONT, 120);
    const back = await job.run('rollback', { ...common(), env: APP_ENV });
    expectNoFailures(await load.stop());
    ok(back);
    expect(back.log).toContain(`started the kept container ${APP}-${a} again on slot blue`);
    expect([current().releaseId, current().slot]).toEqual([a, 'blue']);
    expect(containerId(a)).toBe(keptA);

    // C goes to green; B was made for green too, so going back to B needs blue: recreated.
    const c = await deploy();
    expect([current().releaseId, current().slot]).toEqual([c, 'green']);
    const keptB = containerId(b);
    load = startLoad(FRONT, 120);
    const toB = await job.run('rollback', { ...common(), env: APP_ENV, to: b });
    expectNoFailures(await load.stop());
    ok(toB);
    expect(toB.log).toContain(`recreating ${APP}-${b} (kept container made for another slot green, PORT=${APP_PORT + 1})`);
    expect([current().releaseId, current().slot]).toEqual([b, 'blue']);
    expect(containerId(b)).not.toBe(keptB);
    expect(await fetch(FRONT).then((r) => r.status)).toBe(200);
  });
});
