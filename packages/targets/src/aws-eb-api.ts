import { members, memberParams, queryCall, type QueryClient, type QueryParams } from './aws-query';
import type { AwsEnvironment } from './aws-credentials';

/**
 * The Elastic Beanstalk 2010-12-01 operations the aws-eb provider uses (Query protocol; shapes as
 * in the service model the AWS SDKs ship: CreateApplicationVersion, UpdateEnvironment,
 * DescribeEnvironments, DescribeEvents).
 */

export interface EbEnvironment {
  EnvironmentName: string;
  EnvironmentId?: string;
  ApplicationName?: string;
  VersionLabel?: string;
  Status: string;
  Health?: string;
  HealthStatus?: string;
  CNAME?: string;
  EndpointURL?: string;
}

export interface EbEvent {
  EventDate: string;
  Message: string;
  Severity?: string;
  VersionLabel?: string;
}

export const ENV_NAMESPACE = 'aws:elasticbeanstalk:application:environment';

export class ElasticBeanstalk {
  private readonly client: QueryClient;

  constructor(
    endpoint: string,
    aws: AwsEnvironment,
    private readonly application: string,
    private readonly environment: string,
  ) {
    this.client = { endpoint, service: 'elasticbeanstalk', version: '2010-12-01', label: 'Elastic Beanstalk', ...aws };
  }

  async describeEnvironment(): Promise<EbEnvironment | undefined> {
    const result = await queryCall(this.client, 'DescribeEnvironments', {
      ApplicationName: this.application,
      'EnvironmentNames.member.1': this.environment,
      IncludeDeleted: false,
    });
    return members<EbEnvironment>(result.Environments).find((e) => e.EnvironmentName === this.environment && e.Status !== 'Terminated');
  }

  async createApplicationVersion(versionLabel: string, description: string, bucket: string, key: string): Promise<void> {
    await queryCall(this.client, 'CreateApplicationVersion', {
      ApplicationName: this.application,
      VersionLabel: versionLabel,
      Description: description.slice(0, 200),
      'SourceBundle.S3Bucket': bucket,
      'SourceBundle.S3Key': key,
    });
  }

  /** Deploys a version; `env` (when given) sets the application's environment properties. */
  async updateEnvironment(versionLabel: string, env?: Map<string, string>): Promise<EbEnvironment> {
    const params: QueryParams = { ApplicationName: this.application, EnvironmentName: this.environment, VersionLabel: versionLabel };
    if (env?.size) {
      Object.assign(
        params,
        memberParams(
          'OptionSettings',
          [...env].map(([name, value]) => ({ Namespace: ENV_NAMESPACE, OptionName: name, Value: value })),
        ),
      );
    }
    return (await queryCall(this.client, 'UpdateEnvironment', params)) as unknown as EbEnvironment;
  }

  async events(since: Date, max = 20): Promise<EbEvent[]> {
    const result = await queryCall(this.client, 'DescribeEvents', {
      ApplicationName: this.application,
      EnvironmentName: this.environment,
      StartTime: since.toISOString(),
      MaxRecords: max,
    });
    return members<EbEvent>(result.Events);
  }
}
