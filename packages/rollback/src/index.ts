import type { ActionDefinition } from '@slipway/toolkit/run';
import { getRequired } from '@slipway/toolkit/inputs';
import { UserError } from '@slipway/toolkit/errors';

async function main(): Promise<void> {
  getRequired('environment', 'the environment to roll back, e.g. production.');
  throw new UserError('rollback is not implemented yet.');
}

export const action: ActionDefinition = { name: 'rollback', main };
