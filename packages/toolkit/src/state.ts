import * as fs from 'node:fs';
import * as path from 'node:path';
import * as core from '@actions/core';
import { UserError } from './errors';
import { runnerTemp } from './runner';

/**
 * Facts one action hands to the next in the same job, in a versioned JSON file under
 * RUNNER_TEMP (which the runner gives each job afresh). Every producer also exports a few
 * SLIPWAY_-prefixed variables for users' own steps. A state of another version is refused
 * rather than half-understood.
 */
export const STATE_VERSION = 1;

export interface SetupDjangoState {
  pythonPath: string;
  pythonVersion: string;
  venvPath: string;
  projectDir: string;
  managePy: string;
  settingsModule: string;
  djangoVersion: string;
  packageManager: string;
}

export interface BuildImageState {
  /** name@sha256:… */
  image: string;
  digest: string;
  tags: string[];
  imageId: string;
}

/** Latest applied migration per app; null for an app with none applied. */
export type MigrationState = Record<string, string | null>;

export interface MigrateState {
  previousState: MigrationState;
  currentState: MigrationState;
  applied: string[];
  backup?: string;
}

export interface SlipwayState {
  version: typeof STATE_VERSION;
  setupDjango?: SetupDjangoState;
  buildImage?: BuildImageState;
  migrate?: MigrateState;
  [key: string]: unknown;
}

type Producer = 'setupDjango' | 'buildImage' | 'migrate';

const PRODUCER_ACTION: Record<Producer, string> = {
  setupDjango: 'setup-django',
  buildImage: 'build-image',
  migrate: 'migrate',
};

export function statePath(): string {
  return process.env.SLIPWAY_STATE_FILE || path.join(runnerTemp(), 'slipway', 'state.json');
}

export function readState(): SlipwayState {
  const file = statePath();
  if (!fs.existsSync(file)) return { version: STATE_VERSION };
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    throw new UserError(`The Slipway state file ${file} is not valid JSON; remove it and run the job again.`);
  }
  const version = (parsed as { version?: unknown }).version;
  if (version !== STATE_VERSION) {
    throw new UserError(
      `The Slipway state file ${file} has version ${String(version)}, this action reads version ${STATE_VERSION}: use the same Slipway release for every step of the job.`,
    );
  }
  return parsed as SlipwayState;
}

/** Records what `producer` found, atomically, and tells later steps where the file is. */
export function saveState<K extends Producer>(producer: K, value: NonNullable<SlipwayState[K]>): void {
  const file = statePath();
  const state = readState();
  state[producer] = value;
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
  core.exportVariable('SLIPWAY_STATE_FILE', file);
}

/** What `producer` recorded, or a clear error naming the action that should have run first. */
export function requireState<K extends Producer>(producer: K, neededFor: string): NonNullable<SlipwayState[K]> {
  const value = readState()[producer];
  if (!value) {
    throw new UserError(
      `${neededFor} needs ${PRODUCER_ACTION[producer]}'s results: has ${PRODUCER_ACTION[producer]} run earlier in this job?`,
    );
  }
  return value;
}

export function optionalState<K extends Producer>(producer: K): SlipwayState[K] | undefined {
  return readState()[producer];
}
