/**
 * Starts the real services integration tests need (dockerd, a registry, sshd, haproxy, ...)
 * through scripts/test-env/up.sh, which installs what is missing on a fresh machine and is
 * fast when everything already runs, and returns the variables the tests use to reach them.
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { REPO_ROOT } from './job';

export type Component = 'docker' | 'base-image' | 'registry' | 'sshd' | 'haproxy' | 'load' | 'tools' | 'host2';

export function ensureServices(components: Component[]): Record<string, string> {
  const dir = path.join(REPO_ROOT, 'scripts', 'test-env');
  execFileSync('bash', [path.join(dir, 'up.sh'), ...components], { stdio: 'inherit', timeout: 900_000 });
  const out = execFileSync('bash', [path.join(dir, 'env.sh')]).toString();
  const env: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}
