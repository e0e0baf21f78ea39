import { afterEach, describe, expect, it, vi } from 'vitest';
import type { MigrationHost } from '../../../packages/migrate/src/host';
import { MigrationSession } from '../../../packages/migrate/src/session';

/**
 * The session protocol against a stand-in helper (a Node script speaking the same protocol:
 * SLIPWAY_JSON answer lines among other output, one request per stdin line), so framing,
 * streaming, a dying helper and a timeout are tested without Python.
 */
const FAKE = String.raw`
const start = JSON.parse(process.argv.at(-1));
process.stdout.write('Django says hello\n');
process.stdout.write('\nSLIPWAY_JSON:' + JSON.stringify({ ready: true, start }) + '\n');
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const r = JSON.parse(line);
  if (r.cmd === 'echo') {
    process.stdout.write('Applying catalog.0002... OK\n');
    process.stderr.write('a warning on stderr\n');
    // The answer split across writes, as a pipe may deliver it.
    process.stdout.write('\nSLIPWAY_JSON:{"echo":');
    setTimeout(() => process.stdout.write(JSON.stringify(r) + '}\n'), 20);
  }
  if (r.cmd === 'die') {
    process.stderr.write('Traceback (most recent call last):\nRuntimeError: boom\n');
    process.exit(3);
  }
  // 'hang': never answers.
}).on('close', () => process.exit(0));
`;

function fakeHost(stop?: () => Promise<void>): MigrationHost {
  return {
    kind: 'runner',
    managePy: 'manage.py',
    localPython: 'python3',
    python: () => Promise.reject(new Error('not used')),
    pythonCommand: (args) => ({ tool: process.execPath, args: ['-e', FAKE, args.at(-1)!], stop }),
    dispose: () => undefined,
  };
}

const open: MigrationSession[] = [];
async function start(stop?: () => Promise<void>): Promise<MigrationSession> {
  const { session, answer } = await MigrationSession.start(fakeHost(stop), 'default', 10_000);
  open.push(session);
  expect(answer).toEqual({ ready: true, start: { cmd: 'session', database: 'default' } });
  return session;
}

afterEach(async () => {
  vi.restoreAllMocks();
  for (const s of open.splice(0)) await s.close();
});

describe('MigrationSession', () => {
  it('answers each request from its SLIPWAY_JSON line, streaming the output in between only when asked', async () => {
    const session = await start();
    const written: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(chunk.toString());
      return true;
    });
    expect(await session.request({ cmd: 'echo', n: 1 }, { label: 'quiet' })).toEqual({ echo: { cmd: 'echo', n: 1 } });
    expect(written.join('')).toBe('');
    expect(await session.request({ cmd: 'echo', n: 2 }, { label: 'loud', stream: true })).toEqual({ echo: { cmd: 'echo', n: 2 } });
    expect(written.join('')).toContain('Applying catalog.0002... OK\n');
    expect(written.join('')).toContain('a warning on stderr\n');
    expect(written.join('')).not.toContain('SLIPWAY_JSON');
  });

  it('a helper that dies is a CommandError with its exit code and stderr tail; later requests fail at once', async () => {
    const session = await start();
    const died = session.request({ cmd: 'die' }, { label: 'Applying migrations' });
    await expect(died).rejects.toThrow(/^Applying migrations: `[^]*` exited with code 3\n[^]*RuntimeError: boom$/);
    expect(session.alive).toBe(false);
    await expect(session.request({ cmd: 'echo' }, { label: 'again' })).rejects.toThrow(/exited with code 3/);
  });

  it('stops a helper that does not answer in time (its connections, and any lock, end with it)', async () => {
    const session = await start();
    const started = Date.now();
    await expect(session.request({ cmd: 'hang' }, { label: 'Planning', timeoutMs: 1000 })).rejects.toThrow(
      /^Planning: `[^]*` exited with code 143\ntimed out after 1s$/,
    );
    expect(Date.now() - started).toBeLessThan(5000);
    await session.close();
    expect(session.alive).toBe(false);
  });

  it("on a timeout also stops what the host started (the image host's container), and answers once that is done", async () => {
    const events: string[] = [];
    const stop = async (): Promise<void> => {
      events.push('stop started');
      await new Promise((r) => setTimeout(r, 300));
      events.push('stop done');
    };
    const session = await start(stop);
    await expect(session.request({ cmd: 'hang' }, { label: 'Applying migrations', timeoutMs: 500 })).rejects.toThrow(
      /^Applying migrations: `[^]*` exited with code 143\ntimed out after 1s$/,
    );
    events.push('answered');
    expect(events).toEqual(['stop started', 'stop done', 'answered']);
  });

  it('close ends stdin and the helper exits by itself', async () => {
    const session = await start();
    await session.close();
    expect(session.alive).toBe(false);
  });
});
