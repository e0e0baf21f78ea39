import { createSign } from 'node:crypto';
import * as fs from 'node:fs';
import { UserError } from '@slipway/toolkit/errors';
import { maskSecret } from '@slipway/toolkit/secrets';
import { requestJson } from './cloud-http';

/**
 * An OAuth access token for Google Cloud from what google-github-actions/auth leaves behind: a
 * credentials file (GOOGLE_GHA_CREDS_PATH, GOOGLE_APPLICATION_CREDENTIALS or
 * CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE) holding either
 * - a service account key: a JWT signed RS256 with its private key, exchanged at its token_uri
 *   (RFC 7523 jwt-bearer grant), or
 * - an external_account (Workload Identity Federation): the subject token (GitHub's OIDC token,
 *   from credential_source url or file) exchanged at the STS token_url (RFC 8693), then, when
 *   service_account_impersonation_url is set, an access token for that service account.
 * Token endpoints come from the file itself, so tests point them at stand-ins.
 */

export const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';

export interface GoogleToken {
  accessToken: string;
  /** What it came from, for the log: "service account x@p.iam…", "workload identity …". */
  source: string;
  projectId?: string;
}

interface ServiceAccountKey {
  type: 'service_account';
  project_id?: string;
  private_key_id?: string;
  private_key: string;
  client_email: string;
  token_uri?: string;
}

interface ExternalAccount {
  type: 'external_account';
  audience: string;
  subject_token_type: string;
  token_url: string;
  service_account_impersonation_url?: string;
  credential_source: {
    file?: string;
    url?: string;
    headers?: Record<string, string>;
    format?: { type?: 'text' | 'json'; subject_token_field_name?: string };
  };
}

type CredentialsFile = ServiceAccountKey | ExternalAccount | { type?: string };

export function credentialsPath(env: NodeJS.ProcessEnv): string | undefined {
  return (
    env.GOOGLE_GHA_CREDS_PATH?.trim() ||
    env.CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE?.trim() ||
    env.GOOGLE_APPLICATION_CREDENTIALS?.trim() ||
    undefined
  );
}

export async function googleAccessToken(env: NodeJS.ProcessEnv, tokenInput = ''): Promise<GoogleToken> {
  if (tokenInput) {
    maskSecret(tokenInput);
    return { accessToken: tokenInput, source: 'input `gcp-access-token`' };
  }
  const file = credentialsPath(env);
  if (!file) {
    throw new UserError(
      'provider cloud-run needs Google credentials: run google-github-actions/auth before this step (it sets GOOGLE_APPLICATION_CREDENTIALS), or set input `gcp-access-token`.',
    );
  }
  let creds: CredentialsFile;
  try {
    creds = JSON.parse(fs.readFileSync(file, 'utf8')) as CredentialsFile;
  } catch (error) {
    throw new UserError(
      `Google credentials file ${file} could not be read as JSON (${(error as NodeJS.ErrnoException).code ?? 'invalid JSON'}).`,
    );
  }
  if (creds.type === 'service_account') return serviceAccountToken(creds as ServiceAccountKey);
  if (creds.type === 'external_account') return externalAccountToken(creds as ExternalAccount);
  throw new UserError(
    `Google credentials file ${file} has type ${JSON.stringify(creds.type)}; expected service_account or external_account.`,
  );
}

/** A JWT (RFC 7519) signed with RS256 by the service account's key, for the jwt-bearer grant. */
export function serviceAccountAssertion(key: ServiceAccountKey, now = new Date()): string {
  const iat = Math.floor(now.getTime() / 1000);
  const header = { alg: 'RS256', typ: 'JWT', ...(key.private_key_id ? { kid: key.private_key_id } : {}) };
  const claims = {
    iss: key.client_email,
    scope: CLOUD_PLATFORM,
    aud: key.token_uri ?? 'https://oauth2.googleapis.com/token',
    iat,
    exp: iat + 3600,
  };
  const encode = (v: object): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const unsigned = `${encode(header)}.${encode(claims)}`;
  const signature = createSign('RSA-SHA256').update(unsigned).sign(key.private_key).toString('base64url');
  return `${unsigned}.${signature}`;
}

async function serviceAccountToken(key: ServiceAccountKey): Promise<GoogleToken> {
  if (!key.private_key || !key.client_email) throw new UserError('The service account key file lacks private_key or client_email.');
  maskSecret(key.private_key);
  const assertion = serviceAccountAssertion(key);
  const body = new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString();
  const res = await requestJson<{ access_token?: string }>({
    method: 'POST',
    url: key.token_uri ?? 'https://oauth2.googleapis.com/token',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body,
    label: `Google OAuth token for ${key.client_email}`,
  });
  if (!res?.access_token) throw new UserError(`Google OAuth: no access_token for ${key.client_email}.`);
  maskSecret(res.access_token);
  return { accessToken: res.access_token, source: `service account ${key.client_email}`, projectId: key.project_id };
}

async function subjectToken(src: ExternalAccount['credential_source']): Promise<string> {
  let raw: string;
  if (src.file) {
    raw = fs.readFileSync(src.file, 'utf8');
  } else if (src.url) {
    for (const value of Object.values(src.headers ?? {})) maskSecret(value.replace(/^Bearer\s+/i, ''));
    const res = await fetch(src.url, { headers: src.headers, signal: AbortSignal.timeout(30_000) }).catch((error: unknown) => {
      throw new UserError(`Workload identity: could not fetch the subject token (${(error as Error).message}).`);
    });
    if (!res.ok)
      throw new UserError(
        `Workload identity: the subject token URL answered HTTP ${res.status} (does the job have permissions: id-token: write?).`,
      );
    raw = await res.text();
  } else {
    throw new UserError('The external_account credentials have no credential_source file or url.');
  }
  let token = raw.trim();
  if (src.format?.type === 'json') {
    const field = src.format.subject_token_field_name ?? 'value';
    const value = (JSON.parse(raw) as Record<string, unknown>)[field];
    token = typeof value === 'string' ? value : '';
  }
  if (!token) throw new UserError('Workload identity: the subject token is empty.');
  maskSecret(token);
  return token;
}

async function externalAccountToken(creds: ExternalAccount): Promise<GoogleToken> {
  const subject = await subjectToken(creds.credential_source ?? {});
  const sts = await requestJson<{ access_token?: string }>({
    method: 'POST',
    url: creds.token_url,
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      audience: creds.audience,
      scope: CLOUD_PLATFORM,
      requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      subject_token: subject,
      subject_token_type: creds.subject_token_type,
    }).toString(),
    label: 'Google STS token exchange',
  });
  if (!sts?.access_token) throw new UserError('Google STS: no access_token in the answer.');
  maskSecret(sts.access_token);
  const pool = /workloadIdentityPools\/([^/]+)/.exec(creds.audience)?.[1] ?? creds.audience;
  if (!creds.service_account_impersonation_url) return { accessToken: sts.access_token, source: `workload identity pool ${pool}` };
  const sa = /serviceAccounts\/([^:]+):generateAccessToken/.exec(creds.service_account_impersonation_url)?.[1] ?? 'service account';
  const impersonated = await requestJson<{ accessToken?: string }>({
    method: 'POST',
    url: creds.service_account_impersonation_url,
    headers: { Authorization: `Bearer ${sts.access_token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ scope: [CLOUD_PLATFORM], lifetime: '3600s' }),
    label: `Google IAM: impersonate ${sa}`,
  });
  if (!impersonated?.accessToken) throw new UserError(`Google IAM: no accessToken impersonating ${sa}.`);
  maskSecret(impersonated.accessToken);
  return { accessToken: impersonated.accessToken, source: `workload identity pool ${pool} as ${sa}` };
}
