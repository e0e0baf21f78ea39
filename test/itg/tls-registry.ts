/**
 * A real registry (Debian's docker-registry, the CNCF distribution server) serving cloud
 * registries' own host names over TLS, for tests of the logins to them: a throwaway CA and a
 * server certificate whose SANs are those names, htpasswd users, the names mapped in
 * /etc/hosts and the CA trusted by dockerd through /etc/docker/certs.d/<host>/ca.crt (read per
 * request, no restart).
 *
 * The names map to an address of its own on lo (198.18.44.3/32, RFC 2544's benchmarking range,
 * never routed), not to 127.0.0.1: dockerd counts every registry that resolves into 127.0.0.0/8
 * as insecure (its default insecure-registries) and then skips certificate checks and falls back
 * to plain HTTP, so a missing or wrong CA would pass unnoticed. On this address dockerd verifies
 * the chain (`x509: certificate signed by unknown authority` without certs.d).
 *
 * Everything is undone by stop(), also after a failure: the registry process, the /etc/hosts
 * lines (marked), the certs.d folders it created, the address, the data.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const TLS_REGISTRY_ADDRESS = '198.18.44.3';
const MARKER = '# slipway-itg-tls-registry';
const CERTS_D = '/etc/docker/certs.d';

export interface TlsRegistryOptions {
  hosts: string[];
  /** user -> password (bcrypt in the htpasswd file; neither goes on a command line). */
  users: Record<string, string>;
}

export class TlsRegistry {
  readonly dir: string;
  ca = '';
  private child?: ChildProcess;
  private readonly undo: (() => void)[] = [];
  private log = '';

  constructor(readonly opts: TlsRegistryOptions) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-tls-registry-'));
    this.undo.push(() => fs.rmSync(this.dir, { recursive: true, force: true }));
  }

  async start(): Promise<void> {
    const listening = execFileSync('ss', ['-ltnH', 'sport = :443']).toString().trim();
    if (listening) throw new Error(`port 443 is taken, the TLS registry cannot start:\n${listening}`);
    const owned = execFileSync('ip', ['-4', '-o', 'addr', 'show']).toString();
    if (owned.includes(` ${TLS_REGISTRY_ADDRESS}/`)) throw new Error(`${TLS_REGISTRY_ADDRESS} is already on an interface`);
    removeHostsLines(); // left by a run that was killed
    this.certificates();
    this.htpasswd();
    fs.writeFileSync(path.join(this.dir, 'config.yml'), this.config());

    execFileSync('ip', ['addr', 'add', `${TLS_REGISTRY_ADDRESS}/32`, 'dev', 'lo']);
    this.undo.push(() => execFileSync('ip', ['addr', 'del', `${TLS_REGISTRY_ADDRESS}/32`, 'dev', 'lo'], { stdio: 'ignore' }));
    fs.appendFileSync('/etc/hosts', `${TLS_REGISTRY_ADDRESS} ${this.opts.hosts.join(' ')} ${MARKER}\n`);
    this.undo.push(removeHostsLines);
    if (!fs.existsSync(CERTS_D)) {
      fs.mkdirSync(CERTS_D, { recursive: true });
      this.undo.push(() => fs.rmdirSync(CERTS_D)); // after the host folders (undone last first)
    }
    for (const host of this.opts.hosts) {
      const dir = path.join(CERTS_D, host);
      if (fs.existsSync(dir)) throw new Error(`${dir} exists already: another test or a setup uses this name`);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'ca.crt'), this.ca);
      this.undo.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    }

    this.child = spawn('docker-registry', ['serve', path.join(this.dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (c: Buffer) => (this.log += c.toString()));
    this.child.stderr!.on('data', (c: Buffer) => (this.log += c.toString()));
    this.undo.push(() => this.child?.kill('SIGTERM'));
    for (let i = 0; ; i++) {
      if (await portOpen(TLS_REGISTRY_ADDRESS, 443)) break;
      if (i > 100 || this.child.exitCode !== null) throw new Error(`docker-registry did not start:\n${this.log.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  stop(): void {
    for (const fn of this.undo.reverse()) {
      try {
        fn();
      } catch (error) {
        console.error(`tls-registry cleanup: ${String(error)}`);
      }
    }
    this.undo.length = 0;
  }

  /** A GET on the registry API as `user` (basic auth), the CA trusted, by host name. */
  get(
    host: string,
    apiPath: string,
    user: string,
    password: string,
    accept?: string,
  ): Promise<{ status: number; headers: Record<string, string>; body: string }> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host,
          port: 443,
          path: apiPath,
          ca: this.ca,
          headers: {
            authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
            ...(accept ? { accept } : {}),
          },
        },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers as Record<string, string>, body }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  private certificates(): void {
    const d = (f: string): string => path.join(this.dir, f);
    const openssl = (args: string[]): void => void execFileSync('openssl', args, { stdio: 'pipe' });
    openssl([
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      d('ca.key'),
      '-out',
      d('ca.crt'),
      '-days',
      '1',
      '-subj',
      '/CN=slipway itg CA',
    ]);
    openssl([
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      d('server.key'),
      '-out',
      d('server.csr'),
      '-subj',
      `/CN=${this.opts.hosts[0]!}`,
    ]);
    fs.writeFileSync(
      d('ext.cnf'),
      `subjectAltName=${this.opts.hosts.map((h) => `DNS:${h}`).join(',')}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
    );
    openssl([
      'x509',
      '-req',
      '-in',
      d('server.csr'),
      '-CA',
      d('ca.crt'),
      '-CAkey',
      d('ca.key'),
      '-CAcreateserial',
      '-out',
      d('server.crt'),
      '-days',
      '1',
      '-extfile',
      d('ext.cnf'),
    ]);
    this.ca = fs.readFileSync(d('ca.crt'), 'utf8');
  }

  /** bcrypt hashes from `htpasswd -niB` (password on stdin, a placeholder user on argv). */
  private htpasswd(): void {
    const lines = Object.entries(this.opts.users).map(([user, password]) => {
      const out = execFileSync('htpasswd', ['-niB', 'placeholder'], { input: password }).toString().trim();
      return `${user}:${out.slice(out.indexOf(':') + 1)}`;
    });
    fs.writeFileSync(path.join(this.dir, 'htpasswd'), `${lines.join('\n')}\n`, { mode: 0o600 });
  }

  private config(): string {
    return `version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: ${this.dir}/data
  delete:
    enabled: true
http:
  addr: ${TLS_REGISTRY_ADDRESS}:443
  tls:
    certificate: ${this.dir}/server.crt
    key: ${this.dir}/server.key
auth:
  htpasswd:
    realm: slipway-itg-cloud
    path: ${this.dir}/htpasswd
`;
  }
}

function removeHostsLines(): void {
  const text = fs.readFileSync('/etc/hosts', 'utf8');
  const kept = text
    .split('\n')
    .filter((l) => !l.includes(MARKER))
    .join('\n');
  if (kept !== text) fs.writeFileSync('/etc/hosts', kept);
}

function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}
