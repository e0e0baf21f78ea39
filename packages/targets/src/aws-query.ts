import { XMLParser } from 'fast-xml-parser';
import { request } from './cloud-http';
import { signRequest, type AwsCredentials } from './aws-sigv4';

/**
 * A client for AWS's Query protocol (form-encoded Action=…&Version=… POSTed to the service
 * endpoint, XML answers), the protocol of Elastic Beanstalk's 2010-12-01 API; requests signed
 * with SigV4.
 */

export type QueryParams = Record<string, string | number | boolean | undefined>;

export interface QueryClient {
  endpoint: string;
  service: string;
  version: string;
  region: string;
  credentials: AwsCredentials;
  label: string;
}

const parser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, trimValues: true });

/** Calls `action` and returns the content of its <ActionResult> element. */
export async function queryCall(client: QueryClient, action: string, params: QueryParams): Promise<Record<string, unknown>> {
  const form = new URLSearchParams({ Action: action, Version: client.version });
  for (const [key, value] of Object.entries(params)) if (value !== undefined) form.append(key, String(value));
  const body = form.toString();
  const url = new URL(`${client.endpoint}/`);
  const headers = signRequest(
    { method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, body },
    { service: client.service, region: client.region, credentials: client.credentials },
  );
  delete headers.host; // fetch sets it from the URL, to the same value that was signed
  const res = await request({ method: 'POST', url: url.toString(), headers, body, label: `${client.label} ${action}` });
  const doc = parser.parse(res.text) as Record<string, Record<string, unknown> | undefined>;
  const result = doc[`${action}Response`]?.[`${action}Result`];
  return (result && typeof result === 'object' ? result : {}) as Record<string, unknown>;
}

/** Query-protocol lists: `<X><member>…</member></X>`, one member parsed as an object. */
export function members<T>(value: unknown): T[] {
  if (!value || typeof value !== 'object') return [];
  const member = (value as { member?: T | T[] }).member;
  if (member === undefined) return [];
  return Array.isArray(member) ? member : [member];
}

/** Flattens a list of structures as the Query protocol wants: Name.member.1.Field=value. */
export function memberParams(name: string, items: Record<string, string>[]): QueryParams {
  const out: QueryParams = {};
  items.forEach((item, i) => {
    for (const [field, value] of Object.entries(item)) out[`${name}.member.${i + 1}.${field}`] = value;
  });
  return out;
}
