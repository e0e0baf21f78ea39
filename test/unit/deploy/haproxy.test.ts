import { describe, expect, it } from 'vitest';
import { enableCommands, haproxyConfig, maintCommand, otherSlot, parseShowStat, slotPort } from '@slipway/targets/ssh/haproxy';

const layout = { dir: '/var/lib/slipway/shop', bindAddress: '127.0.0.1', proxyPort: 18080, appPort: 18000 };

describe('haproxy', () => {
  it('owns a config with two disabled slots and an admin socket', () => {
    const cfg = haproxyConfig(layout);
    expect(cfg).toContain('stats socket /var/lib/slipway/shop/haproxy.sock mode 600 level admin');
    expect(cfg).toContain('bind 127.0.0.1:18080');
    expect(cfg).toContain('server blue 127.0.0.1:18000 disabled');
    expect(cfg).toContain('server green 127.0.0.1:18001 disabled');
    expect(haproxyConfig({ ...layout, bindAddress: '::' })).toContain('bind [::]:18080');
  });

  it('slots alternate', () => {
    expect(otherSlot('blue')).toBe('green');
    expect(slotPort(layout, 'green')).toBe(18001);
    expect(enableCommands('green', 'blue')).toEqual(['set server app/green state ready', 'set server app/blue state drain']);
    expect(enableCommands('blue')).toEqual(['set server app/blue state ready']);
    expect(maintCommand('blue')).toBe('set server app/blue state maint');
  });

  it('reads sessions and status of our servers from show stat', () => {
    const csv = [
      '# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status',
      'web,FRONTEND,,,3,8,4096,100,0,0,0,0,0,,,,,OPEN',
      'app,blue,0,0,2,8,,50,0,0,,0,,0,0,0,0,DRAIN',
      'app,green,0,0,0,4,,10,0,0,,0,,0,0,0,0,UP',
      'app,BACKEND,0,0,2,8,410,60,0,0,0,0,,0,0,0,0,UP',
    ].join('\n');
    expect(parseShowStat(csv)).toEqual([
      { slot: 'blue', status: 'DRAIN', sessions: 2 },
      { slot: 'green', status: 'UP', sessions: 0 },
    ]);
    expect(parseShowStat('garbage')).toEqual([]);
  });
});
