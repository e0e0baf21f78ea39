import * as core from '@actions/core';
import { describeError } from './errors';

/** What each action package exports: its name and the functions for its main and post steps. */
export interface ActionDefinition {
  name: string;
  main: () => Promise<void>;
  post?: () => Promise<void>;
}

const IS_POST = 'slipway-is-post';

/**
 * The one wrapper every action's main and post step runs in: the runner gives the post step the
 * state its main step saved, which tells the two apart; any error is caught once here.
 */
export async function run(action: ActionDefinition): Promise<void> {
  const isPost = core.getState(IS_POST) === 'true';
  try {
    if (isPost) {
      await action.post?.();
    } else {
      core.saveState(IS_POST, 'true');
      await action.main();
    }
  } catch (error) {
    const { message, stack } = describeError(error);
    if (stack) core.debug(stack);
    core.setFailed(`${action.name} failed: ${message}`);
  }
}
