import type { DeployContext } from '../../../packages/targets/src/types';

/** Sets INPUT_* variables as the runner does; returns a function that removes them again. */
export function withInputs(inputs: Record<string, string>): () => void {
  const keys = Object.keys(inputs).map((k) => `INPUT_${k.replace(/ /g, '_').toUpperCase()}`);
  Object.values(inputs).forEach((v, i) => (process.env[keys[i]!] = v));
  return () => keys.forEach((k) => delete process.env[k]);
}

export function deployContext(over: Partial<DeployContext> = {}): DeployContext & { lines: string[] } {
  const lines: string[] = [];
  return {
    releaseId: '20261122-023400-abc1234-a1f',
    environment: 'production',
    appName: 'shop',
    image: 'registry.example.com/shop@sha256:' + 'a'.repeat(64),
    imageDigest: 'sha256:' + 'a'.repeat(64),
    env: new Map([
      ['DJANGO_SETTINGS_MODULE', 'shop.settings'],
      ['SECRET_KEY', 's3cr3t-value'],
    ]),
    health: { path: '/healthz', expectedStatus: 200, timeoutMs: 3000 },
    keepReleases: 3,
    rollbackOnFailure: true,
    log: (line: string) => lines.push(line),
    lines,
    ...over,
  };
}
