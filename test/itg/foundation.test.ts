import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { emptyWorkspace, Job, REPO_ROOT } from '../harness/job';

// '.' is the root action (setup-django + run-tests in one step), named slipway in messages.
const ACTIONS = [...fs.readdirSync(path.join(REPO_ROOT, 'actions')).sort(), '.'];

describe('every action in an empty workspace with no inputs', () => {
  it.each(ACTIONS)('%s fails with one clear line, no stack trace', async (action) => {
    const job = new Job({ workspace: emptyWorkspace() });
    const step = await job.run(action);
    expect(step.exitCode).toBe(1);
    expect(step.failure).toMatch(new RegExp(`^${action === '.' ? 'slipway' : action} failed: \\S`));
    expect(step.failure).not.toContain('\n');
    expect(step.log).not.toMatch(/^\s+at .*\(.*:\d+:\d+\)$/m);
    const errors = step.annotations.filter((a) => a.level === 'error');
    expect(errors).toHaveLength(1);
  });
});
