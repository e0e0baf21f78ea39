import { createElasticBeanstalkProvider } from './aws-eb';
import { createCloudRunProvider } from './cloud-run';
import { createHerokuProvider } from './heroku';
import type { Provider } from './types';

/**
 * The cloud providers (docs/providers.md), each reading and checking its own inputs when built;
 * nothing is called until `validate()`. The registry hands heroku, aws-eb and cloud-run here.
 */
export function createCloudProvider(name: 'heroku' | 'aws-eb' | 'cloud-run'): Provider {
  switch (name) {
    case 'heroku':
      return createHerokuProvider();
    case 'aws-eb':
      return createElasticBeanstalkProvider();
    case 'cloud-run':
      return createCloudRunProvider();
  }
}
