/**
 * A stand-in for Amazon ECR's GetAuthorizationToken (API 2015-09-21, JSON 1.1 protocol), what
 * `aws ecr get-login-password` calls: POST / with X-Amz-Target
 * AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken and Content-Type
 * application/x-amz-json-1.1. Each request is checked as ECR would: the SigV4 signature
 * recomputed with the known secret (test/stubs/aws-sigv4-verify.ts, signing name `ecr`), the
 * target, and the body against the operation's input shape in the service model the AWS CLI
 * ships (botocore/data/ecr/2015-09-21/service-2.json). The answer follows the output shape:
 * authorizationData[].authorizationToken = base64("AWS:<password>"), expiresAt (epoch
 * seconds), proxyEndpoint. `deny` answers AccessDeniedException as IAM does.
 */
import * as fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import { verifySigV4 } from '../stubs/aws-sigv4-verify';
import { StubServer, type RecordedRequest, type Reply } from '../stubs/cloud-stub-server';

export const ECR_TARGET_PREFIX = 'AmazonEC2ContainerRegistry_V20150921';

export interface EcrStubOptions {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  account: string;
  /** The password minted by GetAuthorizationToken (the registry's htpasswd has AWS:<password>). */
  password: string;
  /** botocore's ecr service-2.json (from the AWS CLI's venv). */
  serviceModelPath: string;
}

interface Shape {
  type: string;
  members?: Record<string, { shape: string }>;
  required?: string[];
}

export class EcrStub {
  readonly server: StubServer;
  readonly signatureFailures: string[] = [];
  /** Answer AccessDeniedException (the IAM user lacks ecr:GetAuthorizationToken). */
  deny = false;
  private readonly model: {
    metadata: { targetPrefix: string; jsonVersion: string; signingName: string };
    operations: Record<string, { input?: { shape: string }; output?: { shape: string } }>;
    shapes: Record<string, Shape>;
  };

  constructor(readonly opts: EcrStubOptions) {
    this.server = new StubServer((req) => this.route(req));
    this.model = JSON.parse(fs.readFileSync(opts.serviceModelPath, 'utf8')) as typeof this.model;
    if (this.model.metadata.targetPrefix !== ECR_TARGET_PREFIX || this.model.metadata.jsonVersion !== '1.1') {
      throw new Error(`unexpected ECR service model metadata: ${JSON.stringify(this.model.metadata)}`);
    }
  }

  get requests(): RecordedRequest[] {
    return this.server.requests;
  }

  start(): Promise<string> {
    return this.server.start();
  }

  stop(): Promise<void> {
    return this.server.stop();
  }

  private route(req: RecordedRequest): Reply {
    if (req.method !== 'POST' || req.path !== '/') return this.error(404, 'UnknownOperationException', 'Not found');
    const problem = verifySigV4(req, { ...this.opts, service: this.model.metadata.signingName });
    if (problem) {
      this.signatureFailures.push(problem);
      return this.error(
        403,
        problem.startsWith('The security token') ? 'UnrecognizedClientException' : 'InvalidSignatureException',
        problem,
      );
    }
    if ((req.headers['content-type'] ?? '') !== 'application/x-amz-json-1.1') {
      return this.error(400, 'SerializationException', 'Content-Type must be application/x-amz-json-1.1');
    }
    const target = String(req.headers['x-amz-target'] ?? '');
    const [prefix, operation = ''] = target.split('.');
    if (prefix !== ECR_TARGET_PREFIX || !this.model.operations[operation]) {
      return this.error(400, 'UnknownOperationException', `Unknown operation ${target}`);
    }
    if (req.json === undefined || typeof req.json !== 'object' || req.json === null || Array.isArray(req.json)) {
      return this.error(400, 'SerializationException', 'The body must be a JSON object');
    }
    const shape = this.model.shapes[this.model.operations[operation].input?.shape ?? ''];
    for (const key of Object.keys(req.json)) {
      if (!shape?.members?.[key]) return this.error(400, 'SerializationException', `Unknown member ${key} for ${operation}`);
    }
    for (const required of shape?.required ?? []) {
      if (!(required in req.json)) return this.error(400, 'InvalidParameterException', `${required} is required`);
    }
    if (operation !== 'GetAuthorizationToken') {
      return this.error(400, 'UnknownOperationException', `${operation} is not implemented by this stand-in`);
    }
    if (this.deny) {
      return this.error(
        400,
        'AccessDeniedException',
        `User: arn:aws:iam::${this.opts.account}:user/ci is not authorized to perform: ecr:GetAuthorizationToken on resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action`,
      );
    }
    return {
      status: 200,
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() },
      body: JSON.stringify({
        authorizationData: [
          {
            authorizationToken: Buffer.from(`AWS:${this.opts.password}`).toString('base64'),
            expiresAt: Math.floor(Date.now() / 1000) + 12 * 3600,
            proxyEndpoint: `https://${this.opts.account}.dkr.ecr.${this.opts.region}.amazonaws.com`,
          },
        ],
      }),
    };
  }

  private error(status: number, type: string, message: string): Reply {
    return {
      status,
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': type, 'x-amzn-requestid': randomUUID() },
      body: JSON.stringify({ __type: type, message }),
    };
  }
}
