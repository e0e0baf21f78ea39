import * as crypto from 'node:crypto';
import type { MigrationHost } from '@slipway/migrate/lib';
import { CommandError, tail } from '@slipway/toolkit/errors';
import { shellQuote } from '@slipway/toolkit/ssh';
import type { RemoteHost } from './host';
import { killPidArgv, releaseDir, releasePythonArgv, type ReleaseLayout } from './release-dir-plan';

/**
 * The migrate library's MigrationHost for `ssh-runtime: release-dir`: the release's own venv
 * Python on the target, over the deploy's SSH master, in the release's project folder with its
 * env file (0600, read on the host by the ENV_LOADER: no value on a command line) and
 * DJANGO_SETTINGS_MODULE. The long-lived helper (plan, lock, apply in one Django start-up) is an
 * ssh process whose stdin and stdout are the helper's: closing stdin ends the remote Python,
 * and with it its database connection and the migration lock. On a timeout the remote process
 * is stopped by the pid it wrote (a killed ssh client alone would leave a busy Python running).
 */
export function releaseMigrationHost(opts: {
  host: RemoteHost;
  layout: ReleaseLayout;
  releaseId: string;
  settingsModule?: string;
}): MigrationHost & { removePidFiles(): Promise<void> } {
  const { host, layout, releaseId } = opts;
  const written = new Set<string>();
  const pidFile = (): string => {
    const file = `${releaseDir(layout, releaseId)}/.slipway-python-${crypto.randomBytes(4).toString('hex')}.pid`;
    written.add(file);
    return file;
  };
  const argv = (args: string[], pid: string): string[] => releasePythonArgv(layout, releaseId, opts.settingsModule, args, pid);
  // Shown without the helper script and the env loader (long, and nothing the reader needs).
  const shown = (args: string[]): string =>
    `ssh ${host.name} ${releaseDir(layout, releaseId)}/.venv/bin/python ${args[0] === '-c' ? '-c <script>' : shellQuote(args.slice(0, 3))}`;
  return {
    kind: 'ssh',
    managePy: 'manage.py',
    // The runner's Python: only used for plain scripts on the runner (SQLite copies of a fresh backup).
    localPython: 'python3',
    python: async (args, o = {}) => {
      const pid = pidFile();
      const result = await host.run(argv(args, pid), { allowFailure: true, timeoutMs: o.timeoutMs, label: o.label });
      if (result.exitCode !== 0 && !o.allowFailure)
        throw new CommandError(shown(args), result.exitCode, tail(result.stderr || result.stdout), o.label);
      return result;
    },
    pythonCommand: (args) => {
      const pid = pidFile();
      const [tool, sshArgs] = host.command(argv(args, pid));
      return {
        tool,
        args: sshArgs,
        stop: async () => {
          await host.run(killPidArgv(pid), { allowFailure: true, timeoutMs: 30_000 }).catch(() => undefined);
        },
      };
    },
    dispose: () => undefined,
    /** The pid files the helpers wrote (each stays until here: after exec nothing is left to remove it). */
    removePidFiles: async () => {
      if (written.size) await host.run(['rm', '-f', ...written], { allowFailure: true });
      written.clear();
    },
  };
}
