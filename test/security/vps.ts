/**
 * A private "VPS" for the security and fault tests: its own OpenSSH server on a free loopback
 * port (its own host key, its own authorized_keys), so the tests can authorise a canary key,
 * inject failures and cut sessions without touching the shared sshd on 2222.
 *
 * Every session runs through a ForceCommand wrapper that puts `<dir>/shim` first on PATH and then
 * runs the client's command with the login shell as sshd would. The shims (docker, haproxy, socat,
 * install, mkdir, dd, mv, cat, rm, test, flock) pass through to the real program unless `<dir>/fail` holds a
 * prefix of "<tool> <args>", in which case that call exits 42: a remote step failing on demand.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

const SHIMMED = ['docker', 'haproxy', 'socat', 'install', 'mkdir', 'dd', 'mv', 'cat', 'rm', 'test', 'flock'];

export interface Vps {
  port: number;
  pid: number;
  dir: string;
  knownHosts: string;
  /**
   * Makes the next remote calls whose "<tool> <args>" starts with `prefix` exit 42 (undefined:
   * none); with `times`, only that many of them (a fault that happens once), the rest pass through.
   */
  failOn(prefix: string | undefined, times?: number): void;
  /** Calls the shims failed since the last failOn. */
  injected(): string[];
  /** pids of the per-connection sshd processes (children of the listener). */
  sessionPids(): number[];
  stop(): void;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startVps(authorizedKeys: string[]): Promise<Vps> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-vps-'));
  const port = await freePort();
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', path.join(dir, 'host_key')]);
  fs.writeFileSync(path.join(dir, 'authorized_keys'), `${authorizedKeys.join('\n')}\n`, { mode: 0o600 });
  const shim = path.join(dir, 'shim');
  fs.mkdirSync(shim);
  for (const tool of SHIMMED) {
    const real = execFileSync('sh', ['-c', `command -v ${tool}`])
      .toString()
      .trim();
    fs.writeFileSync(
      path.join(shim, tool),
      [
        '#!/bin/sh',
        // Absolute paths only: PATH starts with these shims, so a bare `cat` would call itself.
        `rule=$(/bin/cat '${dir}/fail' 2>/dev/null)`,
        // `left` (failOn's `times`): how many more matching calls fail; absent: every one.
        `if [ -n "$rule" ]; then case "${tool} $*" in "$rule"*)`,
        `  left=$(/bin/cat '${dir}/fail-left' 2>/dev/null)`,
        `  if [ "$left" != 0 ]; then`,
        `    if [ -n "$left" ]; then printf '%s' $((left - 1)) >'${dir}/fail-left'; fi`,
        `    printf '%s\\n' "${tool} $*" >>'${dir}/injected'; printf '%s\\n' "injected failure: ${tool} $1" >&2; exit 42`,
        `  fi;;`,
        `esac; fi`,
        `exec ${real} "$@"`,
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
  }
  const wrapper = path.join(dir, 'session');
  fs.writeFileSync(
    wrapper,
    [
      '#!/bin/sh',
      `PATH='${shim}':/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH`,
      'exec /bin/sh -c "${SSH_ORIGINAL_COMMAND:-true}"',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  fs.writeFileSync(
    path.join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${path.join(dir, 'host_key')}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'AllowTcpForwarding yes',
      `ForceCommand ${wrapper}`,
      '',
    ].join('\n'),
  );
  fs.mkdirSync('/run/sshd', { recursive: true });
  // -D: stays in the foreground as our child, so it is ours to stop by pid.
  const child = spawn('/usr/sbin/sshd', ['-D', '-f', path.join(dir, 'sshd_config'), '-E', path.join(dir, 'sshd.log')], { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (s.end(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (i > 100) throw new Error(`sshd did not start: ${fs.readFileSync(path.join(dir, 'sshd.log'), 'utf8')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const [type, blob] = fs.readFileSync(path.join(dir, 'host_key.pub'), 'utf8').split(' ');
  const pid = child.pid!;
  return {
    port,
    pid,
    dir,
    knownHosts: `[127.0.0.1]:${port} ${type} ${blob}`,
    failOn(prefix, times) {
      fs.rmSync(path.join(dir, 'injected'), { force: true });
      if (times === undefined) fs.rmSync(path.join(dir, 'fail-left'), { force: true });
      else fs.writeFileSync(path.join(dir, 'fail-left'), String(times));
      if (prefix === undefined) fs.rmSync(path.join(dir, 'fail'), { force: true });
      else fs.writeFileSync(path.join(dir, 'fail'), prefix);
    },
    injected() {
      const f = path.join(dir, 'injected');
      return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter(Boolean) : [];
    },
    sessionPids() {
      return fs
        .readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
            return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
          } catch {
            return false;
          }
        })
        .map(Number);
    },
    stop() {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
