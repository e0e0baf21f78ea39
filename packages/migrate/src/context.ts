import * as path from 'node:path';
import { UserError } from '@slipway/toolkit/errors';
import { getChoice, getDotenv, getDuration, getInteger, getString } from '@slipway/toolkit/inputs';
import { runnerTemp, workspaceDir } from '@slipway/toolkit/runner';
import { FAIL_ON, type FailOn } from './lib';

export const MODES = ['apply', 'plan', 'check'] as const;
export const BACKUP = ['auto', 'true', 'false'] as const;

export interface Inputs {
  mode: (typeof MODES)[number];
  workingDirectory: string;
  database: string;
  failOn: FailOn;
  backup: (typeof BACKUP)[number];
  backupDir: string;
  backupRetentionDays: number;
  lockTimeoutMs: number;
  timeoutMs: number;
  applyTimeoutMs: number;
  image: string;
  env: Record<string, string>;
}

/** Every input, validated before anything runs. */
export function getInputs(): Inputs {
  const database = getString('database') || 'default';
  if (!/^[\w-]+$/.test(database))
    throw new UserError(
      `Input \`database\` must be an alias from settings.DATABASES (letters, digits, _ or -); got ${JSON.stringify(database)}.`,
    );
  const image = getString('image');
  if (image && (/\s/.test(image) || image.startsWith('-')))
    throw new UserError(`Input \`image\` must be an image reference such as registry/app@sha256:…; got ${JSON.stringify(image)}.`);
  const workingDirectory = getString('working-directory');
  if (/[\r\n]/.test(workingDirectory)) throw new UserError('Input `working-directory` must be one folder path on one line.');
  return {
    mode: getChoice('mode', MODES, 'apply'),
    workingDirectory,
    database,
    failOn: getChoice('fail-on', FAIL_ON, 'error'),
    backup: getChoice('backup', BACKUP, 'auto'),
    backupDir: path.resolve(workspaceDir(), getString('backup-dir') || path.join(runnerTemp(), 'slipway-backups')),
    backupRetentionDays: getInteger('backup-retention-days', 7, { min: 1, max: 90 }),
    lockTimeoutMs: getDuration('lock-timeout', 300_000),
    timeoutMs: getDuration('timeout', 30_000),
    applyTimeoutMs: getDuration('apply-timeout', 3_600_000),
    image,
    env: Object.fromEntries(getDotenv('env')),
  };
}

/** Whether this run backs up: `true` always in apply mode, `auto` when something is pending. */
export function wantsBackup(inputs: Pick<Inputs, 'mode' | 'backup'>, pendingCount: number): boolean {
  if (inputs.mode !== 'apply' || inputs.backup === 'false') return false;
  return inputs.backup === 'true' || pendingCount > 0;
}
