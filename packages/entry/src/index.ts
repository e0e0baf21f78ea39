import { action as buildImage } from '@slipway/build-image';
import { action as deploy } from '@slipway/deploy';
import { action as migrate } from '@slipway/migrate';
import { action as rollback } from '@slipway/rollback';
import { action as runTests } from '@slipway/run-tests';
import { action as setupDjango } from '@slipway/setup-django';
import { run, type ActionDefinition } from '@slipway/toolkit/run';

/**
 * All actions share one bundle (dist/slipway/index.js): measured in bench/bundle-layout.mjs,
 * one bundle with six thin stubs is a fraction of six standalone bundles' size and starts as
 * fast. Each dist/<name>/index.js stub calls runAction with its own name.
 */
export const ACTIONS: Record<string, ActionDefinition> = Object.fromEntries(
  [setupDjango, runTests, buildImage, migrate, deploy, rollback].map((a) => [a.name, a]),
);

/** The root action.yml: setup-django then run-tests in one step (setup-django's post saves the cache). */
const ci: ActionDefinition = {
  name: 'slipway',
  main: async () => {
    await setupDjango.main();
    await runTests.main();
  },
  post: setupDjango.post,
};

export async function runAction(name: string): Promise<void> {
  const action = name === 'ci' ? ci : ACTIONS[name];
  if (!action) throw new Error(`Unknown Slipway action ${name}`);
  await run(action);
}
