import type { ActionDefinition } from '@slipway/toolkit/run';
import { requireState } from '@slipway/toolkit/state';
import { UserError } from '@slipway/toolkit/errors';

async function main(): Promise<void> {
  requireState('setupDjango', 'run-tests');
  throw new UserError('run-tests is not implemented yet.');
}

export const action: ActionDefinition = { name: 'run-tests', main };
