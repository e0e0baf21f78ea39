import * as fs from 'node:fs';
import { execTool } from '@slipway/toolkit/exec';
import { maskSecret, maskUrl, redactUrl } from '@slipway/toolkit/secrets';
import { SECRET_IDS } from '@slipway/toolkit/dockerfile';

/**
 * The runner's package-index settings, packed as the two build secrets the generated
 * Dockerfile reads: `index-env` (shell `export` lines: index URLs with their credentials,
 * trusted hosts, the CA bundle's path inside the build) and `index-ca` (the CA bundle pip is
 * told to trust, e.g. a company proxy's). Local-only settings (file:// indexes, find-links
 * folders, constraint files) mean nothing inside a build and are left out, with a note.
 */
export interface IndexSettings {
  secrets: Record<string, Buffer>;
  /** What was passed, for the log, credentials redacted. */
  described: string[];
  skipped: string[];
}

const ENV_KEYS = [
  'PIP_INDEX_URL',
  'PIP_EXTRA_INDEX_URL',
  'PIP_TRUSTED_HOST',
  'UV_INDEX_URL',
  'UV_EXTRA_INDEX_URL',
  'UV_DEFAULT_INDEX',
  'UV_INDEX',
  'UV_INSECURE_HOST',
  'PIP_FIND_LINKS',
  'UV_FIND_LINKS',
] as const;
const URL_KEYS = new Set([
  'PIP_INDEX_URL',
  'PIP_EXTRA_INDEX_URL',
  'UV_INDEX_URL',
  'UV_EXTRA_INDEX_URL',
  'UV_DEFAULT_INDEX',
  'UV_INDEX',
  'PIP_FIND_LINKS',
  'UV_FIND_LINKS',
]);
const CA_PATH = `/run/secrets/${SECRET_IDS.ca}`;

/** `pip config list` keys (any scope) mapped to the variables pip reads. */
const PIP_CONFIG: Record<string, string> = {
  'index-url': 'PIP_INDEX_URL',
  'extra-index-url': 'PIP_EXTRA_INDEX_URL',
  'trusted-host': 'PIP_TRUSTED_HOST',
  'find-links': 'PIP_FIND_LINKS',
  cert: 'PIP_CERT',
};

export function parsePipConfigList(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^(?::env:|[\w-]+)\.([\w-]+)='(.*)'$/.exec(line.trim());
    if (m && PIP_CONFIG[m[1]!] && !(PIP_CONFIG[m[1]!]! in out)) out[PIP_CONFIG[m[1]!]!] = m[2]!;
  }
  return out;
}

/** Keeps only the URLs that can be reached from inside a build. */
function remoteOnly(value: string): { kept: string; dropped: string[] } {
  const parts = value.split(/\s+/).filter(Boolean);
  const kept = parts.filter((p) => /^https?:\/\//i.test(p));
  return { kept: kept.join(' '), dropped: parts.filter((p) => !kept.includes(p)) };
}

const shellQuote = (v: string): string => `'${v.replace(/'/g, `'\\''`)}'`;

export function collectIndexSettings(env: NodeJS.ProcessEnv, pipConfig: Record<string, string>): IndexSettings {
  const values: Record<string, string> = {};
  const described: string[] = [];
  const skipped: string[] = [];
  for (const key of ENV_KEYS) {
    const value = env[key] ?? pipConfig[key];
    if (!value) continue;
    if (URL_KEYS.has(key)) {
      const { kept, dropped } = remoteOnly(value);
      for (const d of dropped) skipped.push(`${key} ${d} (not reachable from inside a build)`);
      if (!kept) continue;
      for (const url of kept.split(' ')) maskUrl(url);
      values[key] = kept;
      described.push(`${key}=${kept.split(' ').map(redactUrl).join(' ')}`);
    } else {
      values[key] = value;
      described.push(`${key}=${value}`);
    }
  }
  // uv does not read pip's settings: give it the same index when it has none of its own.
  if (values.PIP_INDEX_URL && !values.UV_INDEX_URL && !values.UV_DEFAULT_INDEX) values.UV_INDEX_URL = values.PIP_INDEX_URL;
  if (values.PIP_EXTRA_INDEX_URL && !values.UV_EXTRA_INDEX_URL && !values.UV_INDEX) values.UV_EXTRA_INDEX_URL = values.PIP_EXTRA_INDEX_URL;

  const secrets: Record<string, Buffer> = {};
  const caFile = env.PIP_CERT || pipConfig.PIP_CERT || env.SSL_CERT_FILE || env.REQUESTS_CA_BUNDLE;
  if (caFile) {
    try {
      secrets[SECRET_IDS.ca] = fs.readFileSync(caFile);
      for (const key of ['PIP_CERT', 'SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE']) values[key] = CA_PATH;
      described.push(`CA bundle ${caFile}`);
    } catch {
      skipped.push(`CA bundle ${caFile} (unreadable)`);
    }
  }
  if (Object.keys(values).length) {
    const text = Object.entries(values)
      .map(([k, v]) => `export ${k}=${shellQuote(v)}\n`)
      .join('');
    maskSecretUrls(values);
    secrets[SECRET_IDS.env] = Buffer.from(text);
  }
  return { secrets, described, skipped };
}

function maskSecretUrls(values: Record<string, string>): void {
  for (const [key, value] of Object.entries(values)) {
    if (URL_KEYS.has(key)) for (const url of value.split(' ')) if (/\/\/[^/@]*:[^/@]*@/.test(url)) maskSecret(url);
  }
}

/** The runner's pip configuration (any file pip reads), or nothing when pip is absent. */
export async function runnerPipConfig(): Promise<Record<string, string>> {
  for (const tool of ['pip3', 'pip']) {
    const r = await execTool(tool, ['config', 'list'], { silent: true, quiet: true, allowFailure: true }).catch(() => undefined);
    if (r && r.exitCode === 0) return parsePipConfigList(r.stdout);
  }
  return {};
}
