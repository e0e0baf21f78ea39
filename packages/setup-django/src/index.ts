import type { ActionDefinition } from '@slipway/toolkit/run';
import { main } from './main';
import { post } from './post';

export const action: ActionDefinition = { name: 'setup-django', main, post };
