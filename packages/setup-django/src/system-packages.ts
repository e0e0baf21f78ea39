import * as core from '@actions/core';
import { UserError } from '@slipway/toolkit/errors';
import { execTool } from '@slipway/toolkit/exec';
import { aptArgv } from './context';

/**
 * `system-packages`: what dpkg already has is left alone (all there: no apt-get at all, the
 * warm path of a self-hosted runner or a re-run); the rest is looked up after `apt-get update`
 * with a simulated install, so a name apt does not know fails as one line naming the input
 * before anything is installed; then the missing ones are installed.
 */
export async function installSystemPackages(packages: string[], isRoot: boolean): Promise<void> {
  const missing: string[] = [];
  const present: string[] = [];
  for (const spec of packages) {
    const version = await installedVersion(spec);
    if (version === undefined) missing.push(spec);
    else present.push(`${spec} (${version})`);
  }
  if (!missing.length) {
    core.info(`Already installed: ${present.join(', ')}. Nothing to install: apt-get is not run.`);
    return;
  }
  if (present.length) core.info(`Already installed: ${present.join(', ')}.`);
  core.info(`To install: ${missing.join(', ')}`);
  const { update, simulate, install } = aptArgv(missing, isRoot);
  const env = { DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' };
  await execTool(...update, { env, label: 'apt-get update' });
  const dryRun = await execTool(...simulate, { env, silent: true, allowFailure: true, label: 'apt-get install --simulate' });
  const unknown = unknownPackages(`${dryRun.stdout}\n${dryRun.stderr}`);
  if (unknown.length) {
    throw new UserError(
      `Input \`system-packages\`: ${unknown.map((u) => `\`${u}\``).join(', ')} ${unknown.length > 1 ? 'are' : 'is'} not in this runner's apt sources (a Debian/Ubuntu package name, e.g. libpq-dev).`,
    );
  }
  await execTool(...install, { env, label: 'Installing system packages' });
}

/** The installed version of `name`, `name:arch` or `name=version` (which must match), else undefined. */
async function installedVersion(spec: string): Promise<string | undefined> {
  const [name, pinned] = spec.split('=', 2) as [string, string | undefined];
  const res = await execTool('dpkg-query', ['-W', '-f=${db:Status-Status} ${Version}', name], {
    quiet: true,
    silent: true,
    allowFailure: true,
  }).catch(() => undefined); // no dpkg-query: not a Debian system, apt-get will say so
  if (!res || res.exitCode !== 0) return undefined;
  const [status, version] = res.stdout.trim().split(' ');
  if (status !== 'installed' || !version) return undefined;
  return pinned === undefined || pinned === version ? version : undefined;
}

/** The names apt-get reported it cannot find, from its output (messages are not translated: LANG=C below). */
export function unknownPackages(output: string): string[] {
  const out = new Set<string>();
  for (const m of output.matchAll(/^E: Unable to locate package (\S+)$/gm)) out.add(m[1]!);
  for (const m of output.matchAll(/^E: Package '([^']+)' has no installation candidate$/gm)) out.add(m[1]!);
  for (const m of output.matchAll(/^E: Version '([^']+)' for '([^']+)' was not found$/gm)) out.add(`${m[2]}=${m[1]}`);
  return [...out];
}
