import { UserError } from '@slipway/toolkit/errors';
import { poll, requestJson } from './cloud-http';

/**
 * Cloud Run Admin API v2 (cloud.google.com/run/docs/reference/rest/v2): services.get,
 * services.patch (a long-running operation), operations.get.
 */

export type EnvVar = { name: string; value: string } | { name: string; valueSource: { secretKeyRef: { secret: string; version: string } } };

export interface Container {
  name?: string;
  image: string;
  env?: EnvVar[];
  [field: string]: unknown;
}

export interface TrafficTarget {
  type: 'TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST' | 'TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION';
  revision?: string;
  percent?: number;
  tag?: string;
}

export interface TrafficStatus extends TrafficTarget {
  uri?: string;
}

export interface Condition {
  type: string;
  state: string;
  message?: string;
  reason?: string;
}

export interface Service {
  name: string;
  uri?: string;
  etag?: string;
  template: { revision?: string; containers: Container[]; [field: string]: unknown };
  traffic?: TrafficTarget[];
  trafficStatuses?: TrafficStatus[];
  latestReadyRevision?: string;
  latestCreatedRevision?: string;
  terminalCondition?: Condition;
  conditions?: Condition[];
  [field: string]: unknown;
}

interface Operation {
  name: string;
  done?: boolean;
  error?: { code: number; message: string };
  response?: Service;
}

export class CloudRunApi {
  constructor(
    private readonly base: string,
    private readonly token: string,
    readonly serviceName: string,
  ) {}

  private headers(json: boolean): Record<string, string> {
    return { Authorization: `Bearer ${this.token}`, Accept: 'application/json', ...(json ? { 'Content-Type': 'application/json' } : {}) };
  }

  getService(): Promise<Service> {
    return requestJson<Service>({
      method: 'GET',
      url: `${this.base}/v2/${this.serviceName}`,
      headers: this.headers(false),
      label: `Cloud Run: read ${this.serviceName}`,
    });
  }

  /** PATCHes the service and waits for the operation; returns the service it left. */
  async update(service: Service, what: string, timeoutMs: number, log: (line: string) => void): Promise<Service> {
    const body = { ...service };
    // Output-only fields are ignored by the API; send the configuration only.
    for (const field of [
      'uri',
      'trafficStatuses',
      'latestReadyRevision',
      'latestCreatedRevision',
      'terminalCondition',
      'conditions',
      'observedGeneration',
      'reconciling',
      'generation',
      'createTime',
      'updateTime',
      'uid',
      'creator',
      'lastModifier',
      'urls',
    ]) {
      delete body[field];
    }
    let op = await requestJson<Operation>({
      method: 'PATCH',
      url: `${this.base}/v2/${this.serviceName}`,
      headers: this.headers(true),
      body: JSON.stringify(body),
      label: `Cloud Run: ${what}`,
    });
    log(`Cloud Run: ${what} (operation ${op.name.split('/').pop()})…`);
    op = await poll(
      async () => {
        if (op.done) return op;
        op = await requestJson<Operation>({
          method: 'GET',
          url: `${this.base}/v2/${op.name}`,
          headers: this.headers(false),
          label: 'Cloud Run: operation status',
        });
        return op.done ? op : undefined;
      },
      {
        timeoutMs,
        baseMs: 1000,
        capMs: 10_000,
        onTimeout: () => new UserError(`Cloud Run: ${what} did not finish within ${Math.round(timeoutMs / 1000)} s.`),
      },
    );
    if (op.error) throw new UserError(`Cloud Run: ${what} failed: ${op.error.message} (code ${op.error.code}).`);
    const after = await this.getService();
    const ready = after.terminalCondition ?? after.conditions?.find((c) => c.type === 'Ready');
    if (ready && ready.state !== 'CONDITION_SUCCEEDED') {
      throw new UserError(`Cloud Run: ${what}: service not Ready (${ready.state}${ready.message ? `: ${ready.message}` : ''}).`);
    }
    return after;
  }
}

/** The revision serving most traffic now (resolving LATEST). */
export function servingRevision(service: Service): string | undefined {
  const statuses = [...(service.trafficStatuses ?? [])]
    .filter((t) => (t.percent ?? 0) > 0)
    .sort((a, b) => (b.percent ?? 0) - (a.percent ?? 0));
  const top = statuses[0];
  if (!top) return undefined;
  return top.type === 'TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST' ? (top.revision ?? service.latestReadyRevision) : top.revision;
}

/** Today's split with LATEST pinned to the revision it resolves to, so a new revision gets nothing. */
export function pinnedTraffic(service: Service): TrafficTarget[] {
  const statuses = service.trafficStatuses?.length ? service.trafficStatuses : (service.traffic ?? []);
  return statuses
    .filter((t) => (t.percent ?? 0) > 0 || t.tag)
    .map((t) => {
      const revision = t.type === 'TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST' ? (t.revision ?? service.latestReadyRevision) : t.revision;
      const target: TrafficTarget = { type: 'TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION', revision, percent: t.percent ?? 0 };
      if (t.tag) target.tag = t.tag;
      return target;
    });
}
