/**
 * The HAProxy the ssh provider owns on each host: one frontend, one backend with two server
 * slots (blue, green) on fixed loopback ports. Traffic moves with the runtime API on the admin
 * socket (ready / drain / maint), never with a reload: measured here, no request is dropped.
 */
export const SLOTS = ['blue', 'green'] as const;
export type Slot = (typeof SLOTS)[number];
export const BACKEND = 'app';

export interface ProxyLayout {
  dir: string;
  bindAddress: string;
  proxyPort: number;
  /** blue listens on appPort, green on appPort + 1. */
  appPort: number;
}

export const slotPort = (layout: ProxyLayout, slot: Slot): number => layout.appPort + SLOTS.indexOf(slot);
export const otherSlot = (slot: Slot): Slot => (slot === 'blue' ? 'green' : 'blue');

export function haproxyConfig(layout: ProxyLayout): string {
  const bind = layout.bindAddress.includes(':') ? `[${layout.bindAddress}]` : layout.bindAddress;
  return [
    '# Written by Slipway deploy (ssh provider): it owns this file and changes servers at run time',
    '# through the admin socket. docs/deploy.md explains the layout.',
    'global',
    '    daemon',
    `    pidfile ${layout.dir}/haproxy.pid`,
    `    stats socket ${layout.dir}/haproxy.sock mode 600 level admin`,
    '    maxconn 4096',
    '',
    'defaults',
    '    mode http',
    '    option http-keep-alive',
    '    option redispatch',
    '    retries 3',
    '    timeout connect 5s',
    '    timeout client 60s',
    '    timeout server 60s',
    '    timeout http-keep-alive 60s',
    '',
    'frontend web',
    `    bind ${bind}:${layout.proxyPort}`,
    `    default_backend ${BACKEND}`,
    '',
    `backend ${BACKEND}`,
    '    balance roundrobin',
    ...SLOTS.map((slot) => `    server ${slot} 127.0.0.1:${slotPort(layout, slot)} disabled`),
    '',
  ].join('\n');
}

export interface ServerStat {
  slot: string;
  status: string;
  sessions: number;
}

/** The servers of our backend from `show stat` CSV. */
export function parseShowStat(csv: string): ServerStat[] {
  const lines = csv.split('\n').filter((l) => l.trim());
  const header = lines[0]?.replace(/^#\s*/, '').split(',') ?? [];
  const col = (name: string): number => header.indexOf(name);
  const [px, sv, scur, status] = [col('pxname'), col('svname'), col('scur'), col('status')];
  if (px < 0 || sv < 0 || scur < 0 || status < 0) return [];
  return lines
    .slice(1)
    .map((l) => l.split(','))
    .filter((f) => f[px] === BACKEND && (SLOTS as readonly string[]).includes(f[sv] ?? ''))
    .map((f) => ({ slot: f[sv]!, status: f[status]!, sessions: Number(f[scur] ?? 0) }));
}

/** Runtime API commands that move traffic from `from` (if any) to `to`, draining first. */
export const enableCommands = (to: Slot, from?: Slot): string[] => [
  `set server ${BACKEND}/${to} state ready`,
  ...(from ? [`set server ${BACKEND}/${from} state drain`] : []),
];
export const maintCommand = (slot: Slot): string => `set server ${BACKEND}/${slot} state maint`;
