import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseService, postgresStartup, probe, waitForAll } from '@slipway/toolkit/wait-for';

const servers: net.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A loopback server that answers each connection with `reply` (after reading `expect` bytes, if any). */
async function answering(reply: Buffer | string, readFirst = 0): Promise<number> {
  const server = net.createServer((socket) => {
    let got = 0;
    const send = (): void => void socket.end(reply);
    if (!readFirst) send();
    socket.on('data', (d: Buffer) => {
      got += d.length;
      if (readFirst && got >= readFirst) send();
    });
    socket.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

function pgError(code: string, message: string): Buffer {
  const body = Buffer.from(`SFATAL\0C${code}\0M${message}\0\0`);
  const head = Buffer.alloc(5);
  head.write('E', 0);
  head.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function mysqlPacket(payload: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUIntLE(payload.length, 0, 3);
  return Buffer.concat([head, payload]);
}

describe('parseService', () => {
  it.each([
    ['postgres://app:pw@db:5433/shop', { kind: 'postgres', host: 'db', port: 5433, user: 'app', database: 'shop' }],
    ['postgresql://localhost', { kind: 'postgres', port: 5432, user: 'postgres', database: 'postgres' }],
    ['mysql://root@127.0.0.1', { kind: 'mysql', port: 3306 }],
    ['redis://localhost', { kind: 'redis', port: 6379 }],
    ['https://example.test/healthz', { kind: 'http', port: 443 }],
    ['tcp://127.0.0.1:9000', { kind: 'tcp', port: 9000 }],
  ])('%s', (url, want) => {
    expect(parseService(url)).toMatchObject(want);
  });
});

describe('postgresStartup', () => {
  it('is a protocol 3.0 StartupMessage', () => {
    const msg = postgresStartup('app', 'shop');
    expect(msg.readUInt32BE(0)).toBe(msg.length);
    expect(msg.readUInt32BE(4)).toBe(196608);
    expect(msg.subarray(8).toString()).toBe('user\0app\0database\0shop\0\0');
  });
});

describe('probe: readiness by protocol', () => {
  it.each([
    ['postgres asks for a password', 'postgres', Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3]), undefined],
    ['postgres: wrong database still means up', 'postgres', pgError('3D000', 'database "x" does not exist'), undefined],
    ['postgres starting up', 'postgres', pgError('57P03', 'the database system is starting up'), 'the database system is starting up'],
    ['mysql handshake v10', 'mysql', mysqlPacket(Buffer.from([0x0a, ...Buffer.from('10.11.6-MariaDB\0')])), undefined],
    [
      'mysql too many connections',
      'mysql',
      mysqlPacket(Buffer.from([0xff, 0x10, 0x04, ...Buffer.from('Too many connections')])),
      'Too many connections',
    ],
    ['redis PONG', 'redis', '+PONG\r\n', undefined],
    ['redis NOAUTH is up', 'redis', '-NOAUTH Authentication required.\r\n', undefined],
    ['redis loading', 'redis', '-LOADING Redis is loading the dataset in memory\r\n', '-LOADING Redis is loading the dataset in memory'],
  ] as [string, string, Buffer | string, string | undefined][])('%s', async (_name, kind, reply, verdict) => {
    const readFirst = kind === 'mysql' ? 0 : 1;
    const port = await answering(reply, readFirst);
    expect(await probe(parseService(`${kind}://127.0.0.1:${port}/db`))).toBe(verdict);
  });

  it('a closed port is not ready and times out naming the service', async () => {
    const port = await answering('');
    servers.pop()!.close();
    await expect(waitForAll([parseService(`redis://:pw@127.0.0.1:${port}`)], 1200)).rejects.toThrow(
      `\`wait-for\`: redis://:***@127.0.0.1:${port} was not ready after 1s (ECONNREFUSED): start the service or raise \`wait-timeout\`.`,
    );
  });
});
