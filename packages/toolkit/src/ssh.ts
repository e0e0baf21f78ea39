import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CommandError, UserError } from './errors';
import { execTool, type ExecResult } from './exec';
import { pipeCommands, type PipeCommand, type PipeResult } from './pipe';
import { runnerTemp } from './runner';

/**
 * An OpenSSH client driven by argv: the key in a 0600 file, host keys pinned in a known_hosts
 * file (StrictHostKeyChecking=yes: unknown or changed keys are refused), an optional jump host,
 * and one ControlMaster connection per host so each remote command costs a round trip, not a
 * handshake. Remote commands are argv arrays quoted for the remote shell by `shellQuote`; their
 * exit status propagates as a CommandError.
 */

export interface SshTarget {
  user: string;
  host: string;
  port: number;
}

const TARGET = /^(?:([A-Za-z_][A-Za-z0-9._-]*)@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*)(?::(\d{1,5}))?$/;

/** `[user@]host[:port]` (IPv6 in brackets). `name` is the input it came from, for the error. */
export function parseSshTarget(value: string, name: string, defaultUser = 'root'): SshTarget {
  const m = TARGET.exec(value.trim());
  const port = m?.[3] ? Number(m[3]) : 22;
  if (!m || port < 1 || port > 65535) {
    throw new UserError(`Input \`${name}\`: ${JSON.stringify(value)} is not [user@]host[:port].`);
  }
  return { user: m[1] ?? defaultUser, host: m[2]!.replace(/^\[|\]$/g, ''), port };
}

export function formatTarget(t: SshTarget): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  return `${t.user}@${host}${t.port === 22 ? '' : `:${t.port}`}`;
}

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * Quotes one word for a POSIX shell: safe words as they are, everything else in single quotes
 * with each ' written as '\''. Inside single quotes nothing is special ($, `, \, ;, newlines).
 */
export function shellQuoteWord(word: string): string {
  if (word.includes('\0')) throw new UserError('A remote command argument contains a NUL byte.');
  if (word !== '' && SAFE.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** An argv as one command line for the remote login shell (which ssh always goes through). */
export function shellQuote(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error('shellQuote: empty argv');
  return argv.map(shellQuoteWord).join(' ');
}

export interface SshOptions {
  privateKey: string;
  knownHosts: string;
  jumpHost?: SshTarget;
  connectTimeoutSec?: number;
}

export interface RemoteOptions {
  input?: string | Buffer;
  allowFailure?: boolean;
  silent?: boolean;
  timeoutMs?: number;
  label?: string;
}

/** The SSH connection failed or was cut under a remote command; `why` is the reason alone. */
export class SshConnectionError extends UserError {
  override name = 'SshConnectionError';
  constructor(
    message: string,
    readonly why: string,
  ) {
    super(message);
  }
}

/** The files one SSH session needs; removed by `close()`. */
export class SshClient {
  private readonly dir: string;
  /** Control sockets need a short path (sun_path is 108 bytes): not under RUNNER_TEMP. */
  private readonly controlDir: string;
  private readonly keyFile: string;
  private readonly knownHostsFile: string;
  private readonly masters = new Set<string>();

  constructor(private readonly options: SshOptions) {
    fs.mkdirSync(runnerTemp(), { recursive: true });
    this.dir = fs.mkdtempSync(path.join(runnerTemp(), 'slipway-ssh-'));
    fs.chmodSync(this.dir, 0o700);
    this.controlDir = fs.mkdtempSync(path.join(os.tmpdir().length > 20 ? '/tmp' : os.tmpdir(), 'swcm-'));
    fs.chmodSync(this.controlDir, 0o700);
    this.keyFile = path.join(this.dir, 'id');
    this.knownHostsFile = path.join(this.dir, 'known_hosts');
    // OpenSSH refuses a key without its trailing newline or with CRLFs.
    const key = `${options.privateKey.replace(/\r\n?/g, '\n').trim()}\n`;
    fs.writeFileSync(this.keyFile, key, { mode: 0o600 });
    fs.writeFileSync(this.knownHostsFile, `${options.knownHosts.replace(/\r\n?/g, '\n').trim()}\n`, { mode: 0o600 });
  }

  /** The options every ssh invocation gets, before the destination. */
  baseArgs(target: SshTarget): string[] {
    const args = [
      '-F',
      '/dev/null',
      '-i',
      this.keyFile,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      `UserKnownHostsFile=${this.knownHostsFile}`,
      '-o',
      'GlobalKnownHostsFile=/dev/null',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'UpdateHostKeys=no',
      '-o',
      'BatchMode=yes',
      '-o',
      'PasswordAuthentication=no',
      '-o',
      `ConnectTimeout=${this.options.connectTimeoutSec ?? 15}`,
      '-o',
      'ServerAliveInterval=5',
      '-o',
      'ServerAliveCountMax=3',
      '-o',
      'LogLevel=ERROR',
      '-o',
      'ControlMaster=auto',
      '-o',
      `ControlPath=${path.join(this.controlDir, '%C')}`,
      '-o',
      'ControlPersist=120',
      '-p',
      String(target.port),
      '-l',
      target.user,
    ];
    if (this.options.jumpHost) {
      // The jump connection gets the same key and the same pinned known_hosts.
      const j = this.options.jumpHost;
      const proxy = ['ssh', ...this.jumpArgs(), '-W', '%h:%p', '-p', String(j.port), '-l', j.user, j.host];
      args.push('-o', `ProxyCommand=${proxy.map(shellQuoteWord).join(' ')}`);
    }
    return args;
  }

  private jumpArgs(): string[] {
    return [
      '-F',
      '/dev/null',
      '-i',
      this.keyFile,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      `UserKnownHostsFile=${this.knownHostsFile}`,
      '-o',
      'GlobalKnownHostsFile=/dev/null',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      'LogLevel=ERROR',
    ];
  }

  /** Opens (or reuses) the master connection; a refused host key or login is a UserError. */
  async connect(target: SshTarget): Promise<void> {
    const result = await execTool('ssh', [...this.baseArgs(target), target.host, 'true'], {
      allowFailure: true,
      silent: true,
      quiet: true,
      timeoutMs: ((this.options.connectTimeoutSec ?? 15) + 15) * 1000,
    });
    if (result.exitCode === 0) {
      this.masters.add(JSON.stringify(target));
      return;
    }
    throw new UserError(`Cannot connect to ${formatTarget(target)}: ${explainSshFailure(result.stderr)}`);
  }

  /**
   * The ssh arguments that run argv on the host over the master, for a caller that spawns it
   * itself and keeps its stdin and stdout (a long-lived remote process: a lock holder, a helper).
   */
  commandArgs(target: SshTarget, argv: readonly string[]): string[] {
    return [...this.baseArgs(target), target.host, shellQuote(argv)];
  }

  /** Runs argv on the host; a non-zero exit throws CommandError naming the remote command. */
  async run(target: SshTarget, argv: readonly string[], opts: RemoteOptions = {}): Promise<ExecResult> {
    const command = shellQuote(argv);
    const result = await execTool('ssh', this.commandArgs(target, argv), {
      input: opts.input,
      allowFailure: true,
      silent: opts.silent ?? true,
      quiet: true,
      timeoutMs: opts.timeoutMs,
    });
    // A cut session is never an allowed failure: what the command did on the host is unknown.
    const cut = sessionCut(result);
    if (cut || (result.exitCode === 255 && /Connection|Host key|closed|Broken pipe|timed out/i.test(result.stderr))) {
      const why = cut ? connectionLost(result) : explainSshFailure(result.stderr);
      throw new SshConnectionError(`SSH connection to ${formatTarget(target)} failed during \`${command}\`: ${why}`, why);
    }
    if (result.exitCode !== 0 && !opts.allowFailure) {
      throw new CommandError(`ssh ${formatTarget(target)} ${command}`, result.exitCode, tailOf(result.stderr || result.stdout), opts.label);
    }
    return result;
  }

  /**
   * Runs argv on the host with a local command's stdout as its stdin, streamed through a pipe
   * (never held in memory); see `pipeCommands`. `streamFailure` turns the result into one line.
   */
  async runFrom(target: SshTarget, argv: readonly string[], source: PipeCommand, opts: { timeoutMs?: number } = {}): Promise<PipeResult> {
    const sink = { command: 'ssh', args: this.commandArgs(target, argv) };
    return pipeCommands(source, sink, { timeoutMs: opts.timeoutMs });
  }

  /** Forwards a local port to `remoteHost:remotePort` as seen from the target, over the master. */
  async forward(target: SshTarget, localPort: number, remotePort: number, remoteHost = '127.0.0.1'): Promise<() => Promise<void>> {
    const spec = `127.0.0.1:${localPort}:${remoteHost}:${remotePort}`;
    await execTool('ssh', [...this.baseArgs(target), '-O', 'forward', '-L', spec, target.host], { silent: true, quiet: true });
    return async () => {
      await execTool('ssh', [...this.baseArgs(target), '-O', 'cancel', '-L', spec, target.host], {
        silent: true,
        quiet: true,
        allowFailure: true,
      });
    };
  }

  /** Closes every master connection and removes the key and known_hosts files. */
  async close(): Promise<void> {
    for (const key of this.masters) {
      const target = JSON.parse(key) as SshTarget;
      await execTool('ssh', [...this.baseArgs(target), '-O', 'exit', target.host], {
        silent: true,
        quiet: true,
        allowFailure: true,
        timeoutMs: 10_000,
      }).catch(() => undefined);
    }
    this.masters.clear();
    fs.rmSync(this.dir, { recursive: true, force: true });
    fs.rmSync(this.controlDir, { recursive: true, force: true });
  }
}

function tailOf(text: string): string {
  return text.trim().split('\n').slice(-10).join('\n');
}

/** One line saying why ssh could not connect, from its stderr. */
export function explainSshFailure(stderr: string): string {
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed|No .* host key is known/i.test(stderr)) {
    return 'the host key does not match `ssh-known-hosts` (refused). Pin the host key with `ssh-keyscan` from a trusted network.';
  }
  if (/Permission denied/i.test(stderr)) return 'the key was refused (Permission denied): check `ssh-private-key` and the user.';
  if (/Connection refused/i.test(stderr)) return 'connection refused: is sshd listening on that port?';
  if (/timed out/i.test(stderr)) return 'connection timed out: is the host reachable?';
  if (/Could not resolve hostname/i.test(stderr)) return 'the host name does not resolve.';
  if (/invalid format|error in libcrypto|Load key/i.test(stderr)) return '`ssh-private-key` is not a valid private key.';
  const last = stderr.trim().split('\n').pop();
  return last || 'ssh failed without a message.';
}

const lastLine = (text: string): string => text.trim().split('\n').pop() ?? '';

/**
 * Whether a remote command's exit 255 is ssh's own, the session cut under it (its master or the
 * connection killed): nothing printed at all, or only ssh's multiplexing or connection messages.
 */
export function sessionCut(r: { exitCode: number; stdout: string; stderr: string }): boolean {
  if (r.exitCode !== 255) return false;
  const out = `${r.stdout}\n${r.stderr}`.trim();
  const last = lastLine(r.stderr) || lastLine(r.stdout);
  return !out || /^(muxclient|mux_client|Control socket|client_loop|Connection .*closed|Connection reset|Broken pipe)/i.test(last);
}

/** "the SSH connection was lost", with ssh's own last line when it printed one. */
export function connectionLost(r: { stdout: string; stderr: string }): string {
  const last = lastLine(r.stderr) || lastLine(r.stdout);
  return `the SSH connection was lost${last ? ` (${last})` : ''}`;
}

/** Why `source | ssh host remote` failed, in one line; undefined when it did not. */
export function streamFailure(r: PipeResult, what: { source: string; remote: string; host: string }): string | undefined {
  if (!r.firstFailure && r.source.ok && r.sink.ok) return undefined;
  const sent = `${(r.bytes / 1048576).toFixed(1)} MB sent`;
  const exit = (s: PipeResult['source']): string =>
    s.spawnError ?? (lastLine(s.stderr) || (s.signal ? `killed by ${s.signal}` : `exit code ${s.exitCode}`));
  if (r.timedOut) return `\`${what.source} | ssh ${what.host} ${what.remote}\` timed out (${sent}).`;
  if (r.firstFailure === 'source' || (r.firstFailure === undefined && !r.source.ok)) {
    return `\`${what.source}\` failed on the runner (${sent}): ${exit(r.source)}`;
  }
  if (r.sink.exitCode === 255 || r.sink.spawnError) {
    return `SSH connection to ${what.host} failed during \`${what.remote}\` (${sent}): ${r.sink.spawnError ?? explainSshFailure(r.sink.stderr)}`;
  }
  return `\`${what.remote}\` failed on ${what.host} (${sent}): ${exit(r.sink)}`;
}

/** A free TCP port on loopback, for local forwards. */
export async function freeLocalPort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
