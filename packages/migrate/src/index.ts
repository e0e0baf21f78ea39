import type { ActionDefinition } from '@slipway/toolkit/run';
import { requireState } from '@slipway/toolkit/state';
import { UserError } from '@slipway/toolkit/errors';

async function main(): Promise<void> {
  requireState('setupDjango', 'migrate');
  throw new UserError('migrate is not implemented yet.');
}

export const action: ActionDefinition = { name: 'migrate', main };
