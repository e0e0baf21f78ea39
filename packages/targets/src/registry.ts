import { UserError } from '@slipway/toolkit/errors';
import { createCloudProvider } from './cloud';
import { getSshInputs } from './ssh/inputs';
import { SshProvider } from './ssh/provider';
import { ReleaseDirProvider } from './ssh/release-dir';
import { getReleaseDirInputs } from './ssh/release-dir-inputs';
import { PROVIDERS, type Provider, type ProviderName } from './types';

export interface ProviderOptions {
  appName: string;
  /** Written into the host lock so a blocked deploy can say who holds it. */
  lockOwner: string;
  /** Rollback: only recorded releases are served again, so no checkout is read (ssh release-dir). */
  activateOnly?: boolean;
}

/** Reads and checks the chosen provider's own inputs, then builds it. Nothing runs yet. */
export function createProvider(name: string, options: ProviderOptions): Provider {
  if (!(PROVIDERS as readonly string[]).includes(name)) {
    throw new UserError(`Input \`provider\` must be one of ${PROVIDERS.join(', ')}; got ${JSON.stringify(name)}.`);
  }
  const provider = name as ProviderName;
  switch (provider) {
    case 'ssh': {
      const inputs = getSshInputs();
      if (inputs.runtime === 'release-dir')
        return new ReleaseDirProvider(inputs, options.activateOnly ? undefined : getReleaseDirInputs(), options.appName, options.lockOwner);
      return new SshProvider(inputs, options.appName, options.lockOwner);
    }
    case 'heroku':
    case 'aws-eb':
    case 'cloud-run':
      // Each reads and checks its own inputs here (docs/providers.md); nothing is called yet.
      return createCloudProvider(provider);
  }
}
