import type { ActionDefinition } from '@slipway/toolkit/run';
import { main } from './main';

export const action: ActionDefinition = { name: 'rollback', main };
