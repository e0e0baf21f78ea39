import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import * as core from '@actions/core';
import { toolCacheDir } from '@slipway/toolkit/runner';

/**
 * Build secrets for the classic builder, which has no `RUN --mount=type=secret`. Each such RUN
 * is rewritten (toolkit/dockerfile.ts) to fetch its secrets from this server on the runner's
 * loopback, use them, and delete them in the same RUN, so no layer holds them; the builder
 * needs `--network host` to reach it. Why not the alternatives: a build arg lands in the
 * image history; a file copied into the context lands in a layer (of the builder stage at
 * least) and its checksum changes the cache key.
 *
 * The URL (port and token) is part of the RUN text, so it must stay the same from build to
 * build or the classic layer cache would miss: it is kept per runner in the tool cache (0600).
 * The token only proves the caller read that file or the builder-stage history on this
 * runner; the server lives for the length of one build and answers only on 127.0.0.1.
 */
export interface SecretServer {
  base: string;
  /** How many secrets were handed out (a cached RUN asks for none). */
  served: () => number;
  close: () => Promise<void>;
}

interface Endpoint {
  port: number;
  token: string;
}

function endpointFile(): string {
  return path.join(toolCacheDir(), 'slipway', 'build-secret-endpoint.json');
}

function loadEndpoint(): Endpoint {
  const file = endpointFile();
  try {
    const e = JSON.parse(fs.readFileSync(file, 'utf8')) as Endpoint;
    if (Number.isInteger(e.port) && /^[a-f0-9]{32}$/.test(e.token)) return e;
  } catch {
    // first build on this runner
  }
  const e = { port: 40_000 + (randomBytes(2).readUInt16BE() % 20_000), token: randomBytes(16).toString('hex') };
  saveEndpoint(e);
  return e;
}

function saveEndpoint(e: Endpoint): void {
  const file = endpointFile();
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, JSON.stringify(e), { mode: 0o600 });
}

function listen(server: http.Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as { port: number }).port);
    });
  });
}

export async function startSecretServer(secrets: Record<string, Buffer>): Promise<SecretServer> {
  const endpoint = loadEndpoint();
  core.setSecret(endpoint.token);
  let served = 0;
  const server = http.createServer((req, res) => {
    const m = /^\/([a-f0-9]{32})\/([\w.-]+)$/.exec(req.url ?? '');
    const remote = req.socket.remoteAddress ?? '';
    if (!m || m[1] !== endpoint.token || !/^(::ffff:)?127\./.test(remote) || req.method !== 'GET') {
      res.writeHead(403).end();
      return;
    }
    const body = secrets[m[2]!];
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    served++;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' }).end(body);
  });
  let port: number;
  try {
    port = await listen(server, endpoint.port);
  } catch {
    // Taken: use another port from now on (this one build misses the dependency cache).
    port = await listen(server, 0);
    saveEndpoint({ ...endpoint, port });
    core.info(`Port ${endpoint.port} for build secrets is taken; using ${port} (the dependency layer is rebuilt once).`);
  }
  return {
    base: `http://127.0.0.1:${port}/${endpoint.token}`,
    served: () => served,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
