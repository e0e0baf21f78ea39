import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { UserError } from './errors';
import { maskUrl, redactUrl } from './secrets';

/**
 * Waits until services accept work, asking each in its own protocol rather than trusting an
 * open port (a database in its start-up phase already listens):
 * - postgres://  a StartupMessage; ready on an authentication request or any error other than
 *   57P03 "the database system is starting up" (a wrong password still means the server is up).
 * - mysql://     reads the server's greeting; ready on a protocol-10 handshake, not on an error
 *   packet (e.g. "Too many connections", "Host is blocked").
 * - redis://     an inline PING; ready on +PONG or -NOAUTH, not on -LOADING / -BUSY.
 * - http(s)://   a GET; ready on any status below 500.
 * - tcp://       a TCP connect.
 * Each attempt has its own short timeout; attempts repeat every 500 ms until `timeoutMs`.
 */
export type ServiceKind = 'postgres' | 'mysql' | 'redis' | 'http' | 'tcp';

export interface Service {
  url: string;
  kind: ServiceKind;
  host: string;
  port: number;
  user: string;
  database: string;
}

const DEFAULT_PORTS: Record<ServiceKind, number> = { postgres: 5432, mysql: 3306, redis: 6379, http: 80, tcp: 0 };
const SCHEMES: Record<string, ServiceKind> = {
  'postgres:': 'postgres',
  'postgresql:': 'postgres',
  'mysql:': 'mysql',
  'mariadb:': 'mysql',
  'redis:': 'redis',
  'rediss:': 'redis',
  'http:': 'http',
  'https:': 'http',
  'tcp:': 'tcp',
};

export function parseService(url: string, input = 'wait-for'): Service {
  // A service URL may carry a password (postgres://app:pw@db:5432): masked before anything can print it.
  maskUrl(url);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(
      `Input \`${input}\`: \`${redactUrl(url)}\` is not a URL (e.g. postgres://localhost:5432, http://localhost:8000/healthz).`,
    );
  }
  const kind = SCHEMES[u.protocol];
  if (!kind)
    throw new UserError(
      `Input \`${input}\`: ${u.protocol.slice(0, -1)} is not supported (use postgres, mysql, redis, http, https or tcp).`,
    );
  const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : DEFAULT_PORTS[kind];
  if (!port) throw new UserError(`Input \`${input}\`: ${redactUrl(url)} needs a port (tcp://host:port).`);
  return {
    url,
    kind,
    host: u.hostname.replace(/^\[|\]$/g, '') || 'localhost',
    port,
    user: decodeURIComponent(u.username) || 'postgres',
    database: decodeURIComponent(u.pathname.slice(1)) || decodeURIComponent(u.username) || 'postgres',
  };
}

/** One attempt: resolves with undefined when ready, or the reason it is not. */
export async function probe(service: Service, timeoutMs = 3000): Promise<string | undefined> {
  if (service.kind === 'http') return probeHttp(service.url, timeoutMs);
  return new Promise((resolve) => {
    const socket = net.connect({ host: service.host, port: service.port });
    let data = Buffer.alloc(0);
    const done = (reason: string | undefined): void => {
      socket.destroy();
      clearTimeout(timer);
      resolve(reason);
    };
    const timer = setTimeout(() => done(`no answer within ${timeoutMs} ms`), timeoutMs);
    socket.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
    socket.on('close', () => done('connection closed'));
    socket.on('connect', () => {
      if (service.kind === 'tcp') return done(undefined);
      if (service.kind === 'postgres') socket.write(postgresStartup(service.user, service.database));
      if (service.kind === 'redis') socket.write('PING\r\n');
    });
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const verdict = VERDICTS[service.kind as Exclude<ServiceKind, 'http'>](data);
      if (verdict !== MORE) done(verdict);
    });
  });
}

/** undefined: ready; MORE: need more bytes; any other string: why it is not ready. */
const MORE = '\0more';
type Verdict = string | undefined;

const VERDICTS: Record<Exclude<ServiceKind, 'http'>, (data: Buffer) => Verdict> = {
  tcp: () => undefined,
  postgres: (d) => {
    if (d.length < 5) return MORE;
    const type = String.fromCharCode(d[0]!);
    if (type === 'R') return undefined;
    if (type !== 'E') return `unexpected reply ${JSON.stringify(type)}`;
    const length = d.readUInt32BE(1);
    if (d.length < length + 1) return MORE;
    const fields = d
      .subarray(5, length + 1)
      .toString('utf8')
      .split('\0');
    const code = fields.find((f) => f.startsWith('C'))?.slice(1);
    const message = fields.find((f) => f.startsWith('M'))?.slice(1) ?? '';
    return code === '57P03' ? message || 'starting up' : undefined;
  },
  mysql: (d) => {
    if (d.length < 5) return MORE;
    const length = d.readUIntLE(0, 3);
    if (d.length < 4 + length) return MORE;
    if (d[4] === 0x0a) return undefined;
    if (d[4] === 0xff)
      return d
        .subarray(7, 4 + length)
        .toString('utf8')
        .replace(/^#\w{5}/, '');
    return `unexpected greeting byte ${d[4]}`;
  },
  redis: (d) => {
    const line = d.toString('utf8');
    if (!line.includes('\r\n')) return MORE;
    if (line.startsWith('+PONG') || /^-(NOAUTH|WRONGPASS|ERR)/.test(line)) return undefined;
    return line.trim();
  },
};

/** A protocol-3.0 StartupMessage for `user` and `database`. */
export function postgresStartup(user: string, database: string): Buffer {
  const body = Buffer.from(`user\0${user}\0database\0${database}\0\0`, 'utf8');
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + body.length, 0);
  head.writeUInt32BE(196608, 4);
  return Buffer.concat([head, body]);
}

function probeHttp(url: string, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const get = url.startsWith('https:') ? https.get : http.get;
    const req = get(url, { timeout: timeoutMs }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 0) < 500 ? undefined : `HTTP ${res.statusCode}`);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

/** Waits for every service at once; a timeout names the service (password hidden) and why. */
export async function waitForAll(services: Service[], timeoutMs: number, onReady?: (s: Service, ms: number) => void): Promise<void> {
  const started = Date.now();
  await Promise.all(
    services.map(async (service) => {
      let reason: string | undefined;
      for (;;) {
        const left = timeoutMs - (Date.now() - started);
        reason = await probe(service, Math.max(200, Math.min(3000, left)));
        if (reason === undefined) return onReady?.(service, Date.now() - started);
        if (Date.now() - started + 500 >= timeoutMs) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      throw new UserError(
        `\`wait-for\`: ${redactUrl(service.url)} was not ready after ${Math.round(timeoutMs / 1000)}s (${reason}): start the service or raise \`wait-timeout\`.`,
      );
    }),
  );
}
