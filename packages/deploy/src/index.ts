import type { ActionDefinition } from '@slipway/toolkit/run';
import { getChoice, getRequired } from '@slipway/toolkit/inputs';
import { UserError } from '@slipway/toolkit/errors';

async function main(): Promise<void> {
  getRequired('provider', 'one of ssh, heroku, aws-eb, cloud-run.');
  getChoice('provider', ['ssh', 'heroku', 'aws-eb', 'cloud-run'], 'ssh');
  getRequired('environment', 'the environment name, e.g. production.');
  throw new UserError('deploy is not implemented yet.');
}

export const action: ActionDefinition = { name: 'deploy', main };
