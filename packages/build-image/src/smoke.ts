import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as core from '@actions/core';
import { containerLogs, containerRunning, removeContainer, run } from '@slipway/toolkit/docker';
import { CommandError, tail, UserError } from '@slipway/toolkit/errors';
import { maskSecret } from '@slipway/toolkit/secrets';

/**
 * Runs the image before it may be pushed: `manage.py check --deploy` in it, then its own
 * command (the server) on a free loopback port, and a GET of the health path, which must answer
 * 2xx. Settings reach the container through a 0600 env file, never argv.
 */
export interface SmokeOptions {
  image: string;
  healthPath: string;
  env: Map<string, string>;
  timeoutMs: number;
  tempDir: string;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function writeEnvFile(dir: string, env: Map<string, string>): string {
  const file = path.join(dir, `smoke-${randomBytes(4).toString('hex')}.env`);
  const lines = [...env].map(([k, v]) => {
    if (/[\r\n]/.test(v)) throw new UserError(`Input \`smoke-test-env\`: ${k} has a line break, which docker's env files cannot carry.`);
    return `${k}=${v}`;
  });
  fs.writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 });
  return file;
}

export async function smokeTest(opts: SmokeOptions): Promise<{ status: number; ms: number }> {
  const started = Date.now();
  const port = await freePort();
  const key = randomBytes(32).toString('base64url');
  maskSecret(key);
  const env = new Map<string, string>([
    ['DJANGO_SECRET_KEY', key],
    ['SECRET_KEY', key],
    ['DJANGO_ALLOWED_HOSTS', '127.0.0.1,localhost'],
    ['ALLOWED_HOSTS', '127.0.0.1,localhost'],
    ['PORT', String(port)],
    ['WEB_CONCURRENCY', '1'],
    ...opts.env,
  ]);
  const envFile = writeEnvFile(opts.tempDir, env);
  const name = `slipway-smoke-${randomBytes(4).toString('hex')}`;
  try {
    core.info('manage.py check --deploy in the image');
    const check = await run(
      {
        image: opts.image,
        rm: true,
        network: 'host',
        envFile,
        entrypoint: 'python',
        command: ['manage.py', 'check', '--deploy'],
      },
      { allowFailure: true, label: 'Smoke test' },
    );
    if (check.exitCode !== 0) {
      throw new CommandError('manage.py check --deploy', check.exitCode, tail(check.stderr || check.stdout, 15), 'Smoke test failed');
    }
    core.info(`Starting the image's server on 127.0.0.1:${port}`);
    await run(
      { image: opts.image, detach: true, name, network: 'host', envFile, labels: { 'org.slipway.smoke-test': 'true' } },
      { silent: true },
    );
    const url = `http://127.0.0.1:${port}${opts.healthPath}`;
    const deadline = Date.now() + opts.timeoutMs;
    let last = 'no answer';
    for (;;) {
      try {
        const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(5000), headers: { host: `127.0.0.1:${port}` } });
        await res.arrayBuffer();
        if (res.status >= 200 && res.status < 300) {
          core.info(`GET ${opts.healthPath} -> ${res.status}`);
          return { status: res.status, ms: Date.now() - started };
        }
        last = `HTTP ${res.status}${res.headers.get('location') ? ` -> ${res.headers.get('location')}` : ''}`;
        if (res.status >= 300 && res.status < 400) {
          last += ' (the smoke test speaks plain HTTP: turn the https redirect off through `smoke-test-env`)';
        }
      } catch (error) {
        last = error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error);
      }
      if (!(await containerRunning(name))) {
        const logs = await containerLogs(name, 20);
        throw new CommandError(`docker run ${opts.image}`, null, tail(logs, 20), 'Smoke test failed: the server exited');
      }
      if (Date.now() > deadline) {
        const logs = await containerLogs(name, 15);
        throw new UserError(
          `Smoke test failed: GET ${opts.healthPath} did not answer 2xx within ${Math.round(opts.timeoutMs / 1000)} s (last: ${last}).\n${tail(logs, 15)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    await removeContainer(name);
    fs.rmSync(envFile, { force: true });
  }
}
