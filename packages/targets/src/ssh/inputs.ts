import { UserError } from '@slipway/toolkit/errors';
import { getBoolean, getChoice, getDuration, getInteger, getList, getRaw, getString } from '@slipway/toolkit/inputs';
import { maskSecret } from '@slipway/toolkit/secrets';
import { parseSshTarget, type SshTarget } from '@slipway/toolkit/ssh';

export const IMAGE_TRANSFERS = ['auto', 'pull', 'stream'] as const;
/** docker: `image` in containers; release-dir: the checked-out commit with its own venv under gunicorn (release-dir.ts). */
export const SSH_RUNTIMES = ['docker', 'release-dir'] as const;
export type SshRuntime = (typeof SSH_RUNTIMES)[number];

export const getSshRuntime = (): SshRuntime => getChoice('ssh-runtime', SSH_RUNTIMES, 'docker');

export interface SshInputs {
  runtime: SshRuntime;
  hosts: SshTarget[];
  privateKey: string;
  knownHosts: string;
  jumpHost?: SshTarget;
  remoteDir: string;
  appPort: number;
  proxyPort: number;
  proxyAddress: string;
  setupHost: boolean;
  imageTransfer: (typeof IMAGE_TRANSFERS)[number];
  drainTimeoutMs: number;
  url: string;
}

/** The ssh provider's inputs (shared by deploy and rollback), every one checked. */
export function getSshInputs(): SshInputs {
  const hosts = getList('hosts').map((h) => parseSshTarget(h, 'hosts'));
  if (hosts.length === 0) throw new UserError('Input `hosts` is required for provider ssh: one or more [user@]host[:port].');
  const privateKey = getRaw('ssh-private-key').trim();
  if (!privateKey) throw new UserError('Input `ssh-private-key` is required for provider ssh (the key to log in with, from a secret).');
  maskSecret(privateKey);
  if (!/^-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+-----END [A-Z ]*PRIVATE KEY-----$/.test(privateKey)) {
    throw new UserError('Input `ssh-private-key` is not a PEM/OpenSSH private key (-----BEGIN … PRIVATE KEY-----).');
  }
  if (/ENCRYPTED|Proc-Type: 4,ENCRYPTED/.test(privateKey)) {
    throw new UserError('Input `ssh-private-key` is protected by a passphrase; use a deploy key without one.');
  }
  const knownHosts = getRaw('ssh-known-hosts').trim();
  if (!knownHosts) {
    throw new UserError(
      "Input `ssh-known-hosts` is required for provider ssh: pin the hosts' keys (ssh-keyscan output); unknown keys are refused.",
    );
  }
  const jump = getString('ssh-jump-host');
  const remoteDir = getString('remote-dir') || '/var/lib/slipway';
  if (!/^\/[A-Za-z0-9._/-]*$/.test(remoteDir) || remoteDir.includes('..')) {
    throw new UserError(`Input \`remote-dir\` must be an absolute path of letters, digits, . _ - /; got ${JSON.stringify(remoteDir)}.`);
  }
  const proxyAddress = getString('proxy-address') || '0.0.0.0';
  if (!/^[0-9.]+$|^[0-9a-fA-F:]+$/.test(proxyAddress)) {
    throw new UserError(`Input \`proxy-address\` must be an IP address; got ${JSON.stringify(proxyAddress)}.`);
  }
  const proxyPort = getInteger('proxy-port', 80, { min: 1, max: 65535 });
  const appPort = getInteger('app-port', 8000, { min: 1, max: 65534 });
  if (proxyPort === appPort || proxyPort === appPort + 1) {
    throw new UserError('Input `proxy-port` must differ from `app-port` and `app-port` + 1 (the two release slots).');
  }
  const firstHost = hosts[0]!.host.includes(':') ? `[${hosts[0]!.host}]` : hosts[0]!.host;
  return {
    runtime: getSshRuntime(),
    hosts,
    privateKey,
    knownHosts,
    jumpHost: jump ? parseSshTarget(jump, 'ssh-jump-host') : undefined,
    remoteDir: remoteDir.replace(/\/+$/, ''),
    appPort,
    proxyPort,
    proxyAddress,
    setupHost: getBoolean('setup-host', false),
    imageTransfer: getChoice('image-transfer', IMAGE_TRANSFERS, 'auto'),
    drainTimeoutMs: getDuration('drain-timeout', 30_000),
    url: getString('url') || `http://${firstHost}${proxyPort === 80 ? '' : `:${proxyPort}`}/`,
  };
}
