/**
 * A stand-in for AWS Elastic Beanstalk (API 2010-12-01, Query protocol), the operations the aws-eb
 * provider calls: CreateApplicationVersion, UpdateEnvironment, DescribeEnvironments,
 * DescribeEvents. Every request is checked like AWS would: a SigV4 signature recomputed here (an
 * implementation separate from the provider's) with the known secret, Action/Version, and the
 * parameters against the operation's input shape in the service model the AWS SDK ships
 * (botocore's elasticbeanstalk/2010-12-01/service-2.json.gz, from the test's venv). The source
 * bundle named by CreateApplicationVersion is read back from S3 (moto's server) and unzipped,
 * so the environment "runs" the image its Dockerrun.aws.json names, and its CNAME (this server)
 * answers health checks for that image.
 */
import { createHash, createHmac, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import { gunzipSync, inflateRawSync } from 'node:zlib';
import { verifySigV4 } from './aws-sigv4-verify';
import { StubServer, type RecordedRequest, type Reply } from './cloud-stub-server';

export interface EbStubOptions {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  region: string;
  application: string;
  environment: string;
  /** The version serving at the start (created with the application). */
  initialVersion: string;
  /** botocore's service-2.json.gz for elasticbeanstalk 2010-12-01. */
  serviceModelPath: string;
  /** Where source bundles are read from (path-style S3, e.g. moto_server). */
  s3Url: string;
  /** DescribeEnvironments calls an update takes before it settles. */
  updatePolls?: number;
  /** Images whose deployment fails (Ready/Red, an ERROR event). */
  failingImages?: string[];
  /** Images that deploy but whose app answers 500. */
  unhealthyImages?: string[];
}

interface Version {
  label: string;
  bucket: string;
  key: string;
  dockerrun: { AWSEBDockerrunVersion?: string; Image?: { Name?: string }; Ports?: { ContainerPort?: number }[] } | null;
}

interface Shape {
  type: string;
  members?: Record<string, { shape: string }>;
  required?: string[];
}

export class ElasticBeanstalkStub {
  readonly server: StubServer;
  readonly versions = new Map<string, Version>();
  readonly events: { EventDate: string; Message: string; Severity: string; VersionLabel?: string }[] = [];
  readonly signatureFailures: string[] = [];
  env: { VersionLabel: string; Status: string; Health: string; Config: Record<string, string> };
  private pending?: { label: string; polls: number };
  private readonly model: { operations: Record<string, { input?: { shape: string } }>; shapes: Record<string, Shape> };

  constructor(readonly opts: EbStubOptions) {
    this.server = new StubServer((req) => this.route(req));
    this.model = JSON.parse(gunzipSync(fs.readFileSync(opts.serviceModelPath)).toString('utf8')) as typeof this.model;
    this.versions.set(opts.initialVersion, { label: opts.initialVersion, bucket: '', key: '', dockerrun: { Image: { Name: 'initial' } } });
    this.env = { VersionLabel: opts.initialVersion, Status: 'Ready', Health: 'Green', Config: {} };
  }

  get requests(): RecordedRequest[] {
    return this.server.requests;
  }

  /** The EB calls (not health checks), with their form parameters. */
  calls(): { action: string; params: URLSearchParams; req: RecordedRequest }[] {
    return this.requests
      .filter((r) => r.method === 'POST' && r.path === '/')
      .map((req) => {
        const params = new URLSearchParams(req.body.toString('utf8'));
        return { action: params.get('Action') ?? '', params, req };
      });
  }

  start(): Promise<string> {
    return this.server.start();
  }

  stop(): Promise<void> {
    return this.server.stop();
  }

  private get cname(): string {
    return this.server.url.replace(/^http:\/\//, '');
  }

  private async route(req: RecordedRequest): Promise<Reply> {
    if (req.method === 'GET') return this.serveApp();
    if (req.method !== 'POST' || req.path !== '/') return this.error(404, 'UnknownOperation', 'Not found');
    const problem = this.verifySignature(req);
    if (problem) {
      this.signatureFailures.push(problem);
      return this.error(403, 'SignatureDoesNotMatch', problem);
    }
    if (!/^application\/x-www-form-urlencoded/.test(req.headers['content-type'] ?? '')) {
      return this.error(400, 'InvalidParameterValue', 'Content-Type must be application/x-www-form-urlencoded');
    }
    const params = new URLSearchParams(req.body.toString('utf8'));
    const action = params.get('Action') ?? '';
    if (params.get('Version') !== '2010-12-01') return this.error(400, 'InvalidParameterValue', 'Version must be 2010-12-01');
    const invalid = this.validate(action, params);
    if (invalid) return this.error(400, invalid.code, invalid.message);
    switch (action) {
      case 'DescribeEnvironments':
        return this.describeEnvironments(params);
      case 'CreateApplicationVersion':
        return this.createApplicationVersion(params);
      case 'UpdateEnvironment':
        return this.updateEnvironment(params);
      case 'DescribeEvents':
        return this.describeEvents(params);
      default:
        return this.error(400, 'InvalidAction', `The action ${action} is not implemented by this stand-in`);
    }
  }

  /** Parameters against the operation's input shape: known members, required ones present. */
  private validate(action: string, params: URLSearchParams): { code: string; message: string } | undefined {
    const op = this.model.operations[action];
    if (!op) return { code: 'InvalidAction', message: `Could not find operation ${action}` };
    const shape = op.input ? this.model.shapes[op.input.shape] : undefined;
    const members = shape?.members ?? {};
    for (const key of params.keys()) {
      if (key === 'Action' || key === 'Version') continue;
      const top = key.split('.')[0]!;
      const member = members[top];
      if (!member) return { code: 'InvalidParameterValue', message: `Unknown parameter ${key} for ${action}` };
      const type = this.model.shapes[member.shape]?.type;
      if ((type === 'list' || type === 'structure') === !key.includes('.')) {
        return { code: 'InvalidParameterValue', message: `Parameter ${key} does not match the ${type} ${top}` };
      }
    }
    for (const required of shape?.required ?? []) {
      if (![...params.keys()].some((k) => k === required || k.startsWith(`${required}.`))) {
        return { code: 'MissingParameter', message: `The request must contain the parameter ${required}` };
      }
    }
    return undefined;
  }

  /** SigV4 checked from scratch (test/stubs/aws-sigv4-verify.ts), scoped to elasticbeanstalk. */
  private verifySignature(req: RecordedRequest): string | undefined {
    return verifySigV4(req, { ...this.opts, service: 'elasticbeanstalk' });
  }

  /** Headers for an S3 GET signed with the stub's own credentials (EB reads the bundle as the caller). */
  private s3Headers(url: URL): Record<string, string> {
    const date = new Date()
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}/, '');
    const day = date.slice(0, 8);
    const payload = createHash('sha256').update('').digest('hex');
    const headers: Record<string, string> = { host: url.host, 'x-amz-content-sha256': payload, 'x-amz-date': date };
    const names = Object.keys(headers).sort();
    const canonical = ['GET', url.pathname, '', names.map((n) => `${n}:${headers[n]}\n`).join(''), names.join(';'), payload].join('\n');
    const scope = `${day}/${this.opts.region}/s3/aws4_request`;
    const toSign = `AWS4-HMAC-SHA256\n${date}\n${scope}\n${createHash('sha256').update(canonical).digest('hex')}`;
    let k: Buffer | string = `AWS4${this.opts.secretAccessKey}`;
    for (const part of [day, this.opts.region, 's3', 'aws4_request']) k = createHmac('sha256', k).update(part).digest();
    const signature = createHmac('sha256', k).update(toSign).digest('hex');
    delete headers.host;
    return {
      ...headers,
      authorization: `AWS4-HMAC-SHA256 Credential=${this.opts.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`,
    };
  }

  private describeEnvironments(params: URLSearchParams): Reply {
    const app = params.get('ApplicationName');
    const wanted = params.getAll('EnvironmentNames.member.1');
    if (this.pending) {
      this.pending.polls -= 1;
      if (this.pending.polls <= 0) this.settle();
    }
    const match = (!app || app === this.opts.application) && (!wanted.length || wanted.includes(this.opts.environment));
    const env = match ? this.environmentXml() : '';
    return this.ok('DescribeEnvironments', `<Environments>${env ? `<member>${env}</member>` : ''}</Environments>`);
  }

  private environmentXml(): string {
    return (
      `<EnvironmentName>${this.opts.environment}</EnvironmentName><EnvironmentId>e-stub123</EnvironmentId>` +
      `<ApplicationName>${this.opts.application}</ApplicationName><VersionLabel>${xml(this.env.VersionLabel)}</VersionLabel>` +
      `<Status>${this.env.Status}</Status><Health>${this.env.Health}</Health><CNAME>${this.cname}</CNAME>` +
      `<EndpointURL>${this.cname}</EndpointURL><DateUpdated>${new Date().toISOString()}</DateUpdated>`
    );
  }

  private async createApplicationVersion(params: URLSearchParams): Promise<Reply> {
    if (params.get('ApplicationName') !== this.opts.application)
      return this.error(400, 'InvalidParameterValue', 'No Application named ' + params.get('ApplicationName'));
    const label = params.get('VersionLabel')!;
    if (label.length > 100) return this.error(400, 'InvalidParameterValue', 'VersionLabel is longer than 100 characters');
    if (this.versions.has(label)) return this.error(400, 'InvalidParameterValue', `Application Version ${label} already exists.`);
    const bucket = params.get('SourceBundle.S3Bucket') ?? '';
    const key = params.get('SourceBundle.S3Key') ?? '';
    const objectUrl = new URL(`${this.opts.s3Url}/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`);
    const res = await fetch(objectUrl, { headers: this.s3Headers(objectUrl) });
    if (!res.ok)
      return this.error(400, 'InvalidParameterCombination', `Unable to download from S3 location (Bucket: ${bucket} Key: ${key}).`);
    const files = unzip(Buffer.from(await res.arrayBuffer()));
    const dockerrun = files.get('Dockerrun.aws.json');
    this.versions.set(label, {
      label,
      bucket,
      key,
      dockerrun: dockerrun ? (JSON.parse(dockerrun.toString('utf8')) as Version['dockerrun']) : null,
    });
    return this.ok(
      'CreateApplicationVersion',
      `<ApplicationVersion><ApplicationName>${this.opts.application}</ApplicationName><VersionLabel>${xml(label)}</VersionLabel>` +
        `<SourceBundle><S3Bucket>${xml(bucket)}</S3Bucket><S3Key>${xml(key)}</S3Key></SourceBundle><Status>UNPROCESSED</Status></ApplicationVersion>`,
    );
  }

  private updateEnvironment(params: URLSearchParams): Reply {
    if (params.get('EnvironmentName') !== this.opts.environment)
      return this.error(400, 'InvalidParameterValue', `No Environment found for EnvironmentName = '${params.get('EnvironmentName')}'.`);
    if (this.env.Status !== 'Ready') {
      return this.error(
        400,
        'InvalidParameterValue',
        `Environment named ${this.opts.environment} is in an invalid state for this operation. Must be Ready.`,
      );
    }
    const label = params.get('VersionLabel');
    if (label && !this.versions.has(label))
      return this.error(400, 'InvalidParameterValue', `No Application Version named '${label}' found.`);
    for (let i = 1; params.has(`OptionSettings.member.${i}.OptionName`); i++) {
      const ns = params.get(`OptionSettings.member.${i}.Namespace`);
      if (ns === 'aws:elasticbeanstalk:application:environment') {
        this.env.Config[params.get(`OptionSettings.member.${i}.OptionName`)!] = params.get(`OptionSettings.member.${i}.Value`) ?? '';
      }
    }
    this.env.Status = 'Updating';
    this.env.Health = 'Grey';
    this.pending = { label: label ?? this.env.VersionLabel, polls: this.opts.updatePolls ?? 2 };
    this.event('INFO', `Environment update is starting.`, label ?? undefined);
    return this.ok('UpdateEnvironment', this.environmentXml());
  }

  private settle(): void {
    const { label } = this.pending!;
    this.pending = undefined;
    const image = this.versions.get(label)?.dockerrun?.Image?.Name ?? '';
    this.env.Status = 'Ready';
    this.env.VersionLabel = label;
    if (this.opts.failingImages?.includes(image)) {
      this.env.Health = 'Red';
      this.event('ERROR', `Failed to pull Docker image ${image}: manifest unknown.`, label);
      this.event('ERROR', 'Failed to deploy application.', label);
    } else {
      this.env.Health = 'Green';
      this.event('INFO', `New application version was deployed to running EC2 instances.`, label);
      this.event('INFO', 'Environment update completed successfully.', label);
    }
  }

  private event(Severity: string, Message: string, VersionLabel?: string): void {
    this.events.push({ EventDate: new Date().toISOString(), Message, Severity, VersionLabel });
  }

  private describeEvents(params: URLSearchParams): Reply {
    const since = Date.parse(params.get('StartTime') ?? '') || 0;
    const max = Number(params.get('MaxRecords') ?? 100);
    const list = this.events
      .filter((e) => Date.parse(e.EventDate) >= since - 1000)
      .reverse()
      .slice(0, max);
    const items = list
      .map(
        (e) =>
          `<member><EventDate>${e.EventDate}</EventDate><Message>${xml(e.Message)}</Message><Severity>${e.Severity}</Severity>` +
          `<ApplicationName>${this.opts.application}</ApplicationName><EnvironmentName>${this.opts.environment}</EnvironmentName>` +
          (e.VersionLabel ? `<VersionLabel>${xml(e.VersionLabel)}</VersionLabel>` : '') +
          `</member>`,
      )
      .join('');
    return this.ok('DescribeEvents', `<Events>${items}</Events>`);
  }

  /** The environment's app: healthy unless its image is listed as unhealthy. */
  private serveApp(): Reply {
    if (this.env.Status !== 'Ready') return { status: 503, body: 'updating' };
    const image = this.versions.get(this.env.VersionLabel)?.dockerrun?.Image?.Name ?? '';
    return this.opts.unhealthyImages?.includes(image) ? { status: 500, body: 'Server Error' } : { status: 200, body: `ok ${image}` };
  }

  private ok(action: string, inner: string): Reply {
    return {
      status: 200,
      headers: { 'content-type': 'text/xml' },
      body:
        `<${action}Response xmlns="http://elasticbeanstalk.amazonaws.com/docs/2010-12-01/"><${action}Result>${inner}</${action}Result>` +
        `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></${action}Response>`,
    };
  }

  private error(status: number, code: string, message: string): Reply {
    return {
      status,
      headers: { 'content-type': 'text/xml' },
      body: `<ErrorResponse xmlns="http://elasticbeanstalk.amazonaws.com/docs/2010-12-01/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${xml(message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
    };
  }
}

function xml(v: string): string {
  return v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Reads a ZIP through its central directory (stored or deflated entries). */
export function unzip(zip: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (end < 0) throw new Error('not a zip file');
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error('bad central directory');
    const method = zip.readUInt16LE(at + 10);
    const size = zip.readUInt32LE(at + 20);
    const nameLen = zip.readUInt16LE(at + 28);
    const extraLen = zip.readUInt16LE(at + 30);
    const commentLen = zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const name = zip.subarray(at + 46, at + 46 + nameLen).toString('utf8');
    const dataAt = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const data = zip.subarray(dataAt, dataAt + size);
    files.set(name, method === 8 ? inflateRawSync(data) : Buffer.from(data));
    at += 46 + nameLen + extraLen + commentLen;
  }
  return files;
}

/**
 * moto's server (PyPI `moto[server]`, test/stubs/aws-requirements.txt) on 127.0.0.1: a real S3
 * for the source bundles. Returns its URL and a stop function.
 */
export async function startMoto(venv: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const { spawn } = await import('node:child_process');
  const net = await import('node:net');
  const port = await new Promise<number>((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const p = (probe.address() as AddressInfo).port;
      probe.close(() => resolve(p));
    });
  });
  const child = spawn(`${venv}/bin/moto_server`, ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited: ${stderr}`);
    const up = await fetch(`${url}/moto-api/`).then(
      () => true,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`moto_server did not answer within 30 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
