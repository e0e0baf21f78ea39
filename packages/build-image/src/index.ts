import type { ActionDefinition } from '@slipway/toolkit/run';
import { main, post } from './main';

export const action: ActionDefinition = { name: 'build-image', main, post };
