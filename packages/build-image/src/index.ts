import type { ActionDefinition } from '@slipway/toolkit/run';
import { getRequired } from '@slipway/toolkit/inputs';
import { UserError } from '@slipway/toolkit/errors';

async function main(): Promise<void> {
  getRequired('image', 'the image name without a tag, e.g. ghcr.io/acme/shop.');
  throw new UserError('build-image is not implemented yet.');
}

export const action: ActionDefinition = { name: 'build-image', main };
