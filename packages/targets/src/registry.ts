import { UserError } from '@slipway/toolkit/errors';
import { getSshInputs } from './ssh/inputs';
import { SshProvider } from './ssh/provider';
import { PROVIDERS, type Provider, type ProviderName } from './types';

export interface ProviderOptions {
  appName: string;
  /** Written into the host lock so a blocked deploy can say who holds it. */
  lockOwner: string;
}

/** Reads and checks the chosen provider's own inputs, then builds it. Nothing runs yet. */
export function createProvider(name: string, options: ProviderOptions): Provider {
  if (!(PROVIDERS as readonly string[]).includes(name)) {
    throw new UserError(`Input \`provider\` must be one of ${PROVIDERS.join(', ')}; got ${JSON.stringify(name)}.`);
  }
  switch (name as ProviderName) {
    case 'ssh':
      return new SshProvider(getSshInputs(), options.appName, options.lockOwner);
    default:
      throw new UserError(`Provider \`${name}\` is not available in this Slipway build yet; use provider ssh.`);
  }
}
