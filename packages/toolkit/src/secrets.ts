import * as core from '@actions/core';

/**
 * Masks a secret and the forms it commonly takes once derived (base64, URL-encoded, each line
 * of a multi-line value), so the runner hides every one of them from logs.
 */
export function maskSecret(value: string | undefined): void {
  if (!value) return;
  for (const form of derivedForms(value)) core.setSecret(form);
}

export function derivedForms(value: string): string[] {
  const forms = new Set<string>();
  const add = (v: string): void => {
    if (v.trim().length >= 3) forms.add(v);
  };
  add(value);
  for (const line of value.split(/\r?\n/)) add(line.trim());
  add(Buffer.from(value).toString('base64'));
  add(Buffer.from(value).toString('base64url'));
  add(encodeURIComponent(value));
  add(JSON.stringify(value).slice(1, -1));
  return [...forms];
}

/** Masks the password of a URL (postgres://u:p@h/db) and the whole URL with it. */
export function maskUrl(url: string | undefined): void {
  if (!url) return;
  try {
    const parsed = new URL(url);
    if (parsed.password) {
      maskSecret(decodeURIComponent(parsed.password));
      maskSecret(url);
    }
  } catch {
    // not a URL; nothing derived to mask
  }
}

/** A URL for display: its password replaced by `***`. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@/]+@/, '//$1:***@');
  }
}

/** Names that carry secrets by convention. */
export function looksSecret(name: string): boolean {
  return /SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE_KEY|API_KEY|CREDENTIAL|_DSN$|DATABASE_URL/i.test(name);
}
