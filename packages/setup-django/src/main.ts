import * as fs from 'node:fs';
import * as path from 'node:path';
import * as core from '@actions/core';
import { findManagePy, settingsModuleFromManagePy } from '@slipway/toolkit/django';
import { UserError } from '@slipway/toolkit/errors';
import { Phases } from '@slipway/toolkit/log';
import { workspaceDir } from '@slipway/toolkit/runner';
import { writeSummary } from '@slipway/toolkit/summary';
import { getInputs } from './context';

export async function main(): Promise<void> {
  const inputs = getInputs();
  const phases = new Phases();
  const root = workspaceDir();

  const { managePy, settingsModule } = await phases.phase('Finding the Django project', async () => {
    const managePy = findManagePy(root, inputs.workingDirectory || undefined);
    const fromManagePy = settingsModuleFromManagePy(fs.readFileSync(managePy, 'utf8'));
    const settingsModule = inputs.settingsModule || process.env.DJANGO_SETTINGS_MODULE || fromManagePy;
    if (!settingsModule) {
      throw new UserError(
        `${path.relative(root, managePy)} sets no DJANGO_SETTINGS_MODULE: set the \`settings-module\` input (e.g. mysite.settings).`,
      );
    }
    core.info(`manage.py: ${managePy}`);
    core.info(`settings module: ${settingsModule}`);
    return { managePy, settingsModule };
  });

  const projectDir = path.dirname(managePy);
  core.exportVariable('DJANGO_SETTINGS_MODULE', settingsModule);
  core.setOutput('manage-py', managePy);
  core.setOutput('project-dir', projectDir);
  core.setOutput('settings-module', settingsModule);

  await writeSummary('setup-django', [
    {
      heading: '',
      rows: [['manage.py', path.relative(root, managePy)], ['Settings module', settingsModule], ...phases.rows()],
    },
  ]);
}
