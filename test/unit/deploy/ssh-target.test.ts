import { describe, expect, it } from 'vitest';
import { explainSshFailure, formatTarget, parseSshTarget } from '@slipway/toolkit/ssh';

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
