import { describe, expect, it } from 'vitest';
import { connectionLost, explainSshFailure, formatTarget, parseSshTarget, sessionCut } from '@slipway/toolkit/ssh';

describe('parseSshTarget', () => {
  it.each([
    ['example.com', { user: 'root', host: 'example.com', port: 22 }],
    ['deploy@example.com', { user: 'deploy', host: 'example.com', port: 22 }],
    ['deploy@10.0.0.5:2222', { user: 'deploy', host: '10.0.0.5', port: 2222 }],
    ['127.0.0.1:2222', { user: 'root', host: '127.0.0.1', port: 2222 }],
    ['u@[::1]:2200', { user: 'u', host: '::1', port: 2200 }],
  ])('%s', (value, expected) => expect(parseSshTarget(value, 'hosts')).toEqual(expected));

  it.each(['', 'a b', 'host;rm -rf /', '-oProxyCommand=x', 'host:0', 'host:70000', 'user@', '@host', '$(id)@host'])(
    'rejects %j naming the input',
    (value) => expect(() => parseSshTarget(value, 'hosts')).toThrow(/^Input `hosts`/),
  );

  it('formats back', () => {
    expect(formatTarget({ user: 'root', host: 'h', port: 22 })).toBe('root@h');
    expect(formatTarget({ user: 'root', host: '::1', port: 2222 })).toBe('root@[::1]:2222');
  });
});

describe('explainSshFailure', () => {
  it.each([
    [
      'No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\nHost key verification failed.',
      /host key does not match/,
    ],
    ['@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@', /host key does not match/],
    ['root@127.0.0.1: Permission denied (publickey).', /key was refused/],
    ['ssh: connect to host 127.0.0.1 port 1: Connection refused', /connection refused/],
    ['ssh: connect to host 10.255.255.1 port 22: Connection timed out', /timed out/],
    ['Load key "/tmp/id": invalid format', /not a valid private key/],
  ])('%s', (stderr, expected) => expect(explainSshFailure(stderr)).toMatch(expected));
});

describe('sessionCut: an exit 255 that is ssh losing the session, not the remote command', () => {
  const r = (exitCode: number, stderr = '', stdout = '') => ({ exitCode, stdout, stderr });
  it.each([
    ['nothing printed', r(255)],
    ['the mux client', r(255, 'mux_client_read_packet: read header failed: Broken pipe')],
    ['the control socket', r(255, 'Control socket connect(/tmp/cm): Connection refused')],
    ['the connection closed', r(255, 'Connection to 127.0.0.1 closed by remote host.')],
    ['client_loop', r(255, 'client_loop: send disconnect: Broken pipe')],
    ['after some remote output', r(255, 'Connection to 127.0.0.1 closed by remote host.', 'Collecting django\n')],
  ])('%s: cut', (_, result) => expect(sessionCut(result)).toBe(true));

  it.each([
    ['exit 1 with nothing printed', r(1)],
    ['a remote command that exits 255 saying why', r(255, 'myscript: bad config')],
    ['exit 0', r(0)],
  ])('%s: not cut', (_, result) => expect(sessionCut(result)).toBe(false));

  it("names the loss, with ssh's last line when there is one", () => {
    expect(connectionLost(r(255))).toBe('the SSH connection was lost');
    expect(connectionLost(r(255, 'x\nmux_client_read_packet: read header failed: Broken pipe'))).toBe(
      'the SSH connection was lost (mux_client_read_packet: read header failed: Broken pipe)',
    );
  });
});
