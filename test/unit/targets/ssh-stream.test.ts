import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { pipeCommands, type PipeResult } from '@slipway/toolkit/pipe';
import { streamFailure } from '@slipway/toolkit/ssh';

const sh = (script: string) => ({ command: 'sh', args: ['-c', script] });

/** Whether a process with this marker in its argv still exists (zombies included). */
function running(marker: string): string {
  try {
    return execFileSync('pgrep', ['-af', marker]).toString().trim();
  } catch {
    return '';
  }
}

describe('pipeCommands', () => {
  it('streams the source into the sink and counts the bytes', async () => {
    // 64 MB through a sink that reads slowly at first: backpressure, not buffering.
    const r = await pipeCommands(sh('head -c 67108864 /dev/zero'), sh('sleep 0.3; wc -c'));
    expect(r.source.ok && r.sink.ok).toBe(true);
    expect(r.firstFailure).toBeUndefined();
    expect(r.bytes).toBe(67108864);
    expect(r.sinkStdout.trim()).toBe('67108864');
  });

  it('a failing source stops the sink before its input could look complete', async () => {
    const marker = `sink-${process.pid}-a`;
    const r = await pipeCommands(
      sh('head -c 1000 /dev/zero; echo "no such image" >&2; exit 3'),
      sh(`cat >/dev/null; echo read-all # ${marker}`),
    );
    expect(r.firstFailure).toBe('source');
    expect(r.source).toMatchObject({ exitCode: 3, ok: false, stderr: 'no such image\n' });
    expect(r.sink.ok).toBe(false);
    expect(r.sinkStdout).not.toContain('read-all');
    expect(running(marker)).toBe('');
  });

  it('a failing sink stops a source that still writes (no hang on a full pipe)', async () => {
    const marker = `source-${process.pid}-b`;
    const started = Date.now();
    const r = await pipeCommands(sh(`exec cat /dev/zero # ${marker}`), sh('head -c 100000 >/dev/null; echo "load failed" >&2; exit 4'));
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(r.firstFailure).toBe('sink');
    expect(r.sink).toMatchObject({ exitCode: 4, ok: false });
    expect(r.source.ok).toBe(false);
    expect(running(marker)).toBe('');
  });

  it('a sink that stops reading early (even with status 0) is a failure and the source is stopped', async () => {
    const r = await pipeCommands(sh('exec cat /dev/zero'), sh('exec head -c 1000'));
    expect(r.firstFailure).toBe('sink');
    expect(r.sink.ok).toBe(true);
    expect(r.source.ok).toBe(false);
    expect(streamFailure(r, { source: 'cat', remote: 'head', host: 'h' })).toMatch(/^`head` failed on h/);
  });

  it('a sink that ignores SIGTERM is killed after the grace period', async () => {
    const r = await pipeCommands(sh('sleep 0.5; exit 1'), sh('trap "" TERM; exec sleep 30'));
    expect(r.firstFailure).toBe('source');
    expect(r.sink.signal).toBe('SIGKILL');
  }, 15_000);

  it('a source that cannot be started is one failure, and the sink is stopped', async () => {
    const r = await pipeCommands({ command: '/nonexistent/docker', args: ['save', 'x'] }, sh('exec sleep 30'));
    expect(r.firstFailure).toBe('source');
    expect(r.source.spawnError).toMatch(/ENOENT/);
    expect(r.sink.signal).toBe('SIGTERM');
  });

  it('times out: both sides stopped', async () => {
    const r = await pipeCommands(sh('exec sleep 30'), sh('exec sleep 30'), { timeoutMs: 300 });
    expect(r.timedOut).toBe(true);
    expect(r.source.ok || r.sink.ok).toBe(false);
  });
});

describe('streamFailure', () => {
  const side = (over: Partial<PipeResult['source']> = {}): PipeResult['source'] => ({
    exitCode: 0,
    signal: null,
    stderr: '',
    ok: true,
    ...over,
  });
  const what = { source: 'docker save sha256:0123456789ab', remote: 'docker load --quiet', host: 'root@h2' };
  const result = (over: Partial<PipeResult>): PipeResult => ({
    source: side(),
    sink: side(),
    bytes: 3 * 1048576,
    timedOut: false,
    sinkStdout: '',
    ...over,
  });

  it('none when both sides succeeded', () => expect(streamFailure(result({}), what)).toBeUndefined());

  it.each<[string, Partial<PipeResult>, RegExp]>([
    [
      'save fails',
      {
        firstFailure: 'source',
        source: side({ exitCode: 1, ok: false, stderr: 'Error: No such image: x\n' }),
        sink: side({ exitCode: null, signal: 'SIGTERM', ok: false }),
      },
      /^`docker save sha256:0123456789ab` failed on the runner \(3\.0 MB sent\): Error: No such image: x$/,
    ],
    [
      'load fails',
      {
        firstFailure: 'sink',
        sink: side({ exitCode: 1, ok: false, stderr: 'open /var/lib/docker/tmp/x: no space left on device\n' }),
        source: side({ signal: 'SIGTERM', exitCode: null, ok: false }),
      },
      /^`docker load --quiet` failed on root@h2 \(3\.0 MB sent\): open .*no space left on device$/,
    ],
    [
      'ssh drops',
      {
        firstFailure: 'sink',
        sink: side({ exitCode: 255, ok: false, stderr: 'Timeout, server 10.0.0.2 not responding.\n' }),
        source: side({ signal: 'SIGTERM', exitCode: null, ok: false }),
      },
      /^SSH connection to root@h2 failed during `docker load --quiet` \(3\.0 MB sent\): Timeout, server 10\.0\.0\.2 not responding\.$/,
    ],
    [
      'timeout',
      { timedOut: true, firstFailure: 'sink', sink: side({ signal: 'SIGTERM', exitCode: null, ok: false }) },
      /timed out \(3\.0 MB sent\)/,
    ],
  ])('%s: one line', (_name, over, expected) => {
    const line = streamFailure(result(over), what);
    expect(line).toMatch(expected);
    expect(line).not.toContain('\n');
  });
});
