import { getBoolean, getChoice, getDuration, getList, getString } from '@slipway/toolkit/inputs';

export const PACKAGE_MANAGERS = ['auto', 'pip', 'uv', 'poetry', 'pipenv'] as const;
export const INSTALLERS = ['uv', 'pip'] as const;
export const CHECK_MODES = ['false', 'true', 'deploy'] as const;

export interface Inputs {
  pythonVersion: string;
  workingDirectory: string;
  packageManager: (typeof PACKAGE_MANAGERS)[number];
  installer: (typeof INSTALLERS)[number];
  requirements: string[];
  extras: string[];
  groups: string[];
  systemPackages: string[];
  cache: boolean;
  settingsModule: string;
  envFile: string;
  secretKeys: string[];
  check: (typeof CHECK_MODES)[number];
  waitFor: string[];
  waitTimeoutMs: number;
}

/** Every input, validated before anything runs. */
export function getInputs(): Inputs {
  return {
    pythonVersion: getString('python-version'),
    workingDirectory: getString('working-directory'),
    packageManager: getChoice('package-manager', PACKAGE_MANAGERS, 'auto'),
    installer: getChoice('installer', INSTALLERS, 'uv'),
    requirements: getList('requirements'),
    extras: getList('extras'),
    groups: getList('groups'),
    systemPackages: getList('system-packages'),
    cache: getBoolean('cache', true),
    settingsModule: getString('settings-module'),
    envFile: getString('env-file'),
    secretKeys: getList('secret-keys'),
    check: getChoice('check', CHECK_MODES, 'false'),
    waitFor: getList('wait-for'),
    waitTimeoutMs: getDuration('wait-timeout', 60_000),
  };
}
