import * as path from 'node:path';
import * as os from 'node:os';

/** Where the runner keeps things; sensible fallbacks when run outside a runner. */
export function workspaceDir(): string {
  return path.resolve(process.env.GITHUB_WORKSPACE || process.cwd());
}

export function runnerTemp(): string {
  return process.env.RUNNER_TEMP || os.tmpdir();
}

export function toolCacheDir(): string {
  return process.env.RUNNER_TOOL_CACHE || path.join(os.homedir(), '.cache', 'slipway-tools');
}

export function onRunner(): boolean {
  return process.env.GITHUB_ACTIONS === 'true';
}
