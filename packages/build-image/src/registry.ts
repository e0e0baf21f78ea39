import { CommandError, UserError } from '@slipway/toolkit/errors';
import { displayCommand, execTool } from '@slipway/toolkit/exec';
import { maskSecret } from '@slipway/toolkit/secrets';

/**
 * Who logs in where, by registry convention:
 *  - GHCR (ghcr.io): the GitHub actor with `github-token` when no credentials are given;
 *  - Docker Hub (docker.io): a user name and an access token, both required;
 *  - Amazon ECR (<account>.dkr.ecr.<region>.amazonaws.com, public.ecr.aws): user `AWS`, the
 *    password from `aws ecr get-login-password` when none is given;
 *  - Google Artifact Registry / GCR (<region>-docker.pkg.dev, *.gcr.io): `_json_key` with a
 *    service-account JSON key, else `oauth2accesstoken` (a token, or `gcloud auth
 *    print-access-token` when none is given);
 *  - DigitalOcean (registry.digitalocean.com): the API token as user name and password;
 *  - anything else: `registry-username` and `registry-password`.
 */
export type RegistryKind = 'ghcr' | 'dockerhub' | 'ecr' | 'ecr-public' | 'gar' | 'docr' | 'other';

export function registryKind(registry: string): RegistryKind {
  const host = registry.toLowerCase();
  if (host === 'ghcr.io') return 'ghcr';
  if (host === 'docker.io' || host === 'index.docker.io' || host === 'registry-1.docker.io') return 'dockerhub';
  if (/^\d{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/.test(host)) return 'ecr';
  if (host === 'public.ecr.aws') return 'ecr-public';
  if (/^[a-z0-9-]+-docker\.pkg\.dev$/.test(host) || /^([a-z]+\.)?gcr\.io$/.test(host)) return 'gar';
  if (host === 'registry.digitalocean.com') return 'docr';
  return 'other';
}

/** A password that a CLI prints, for registries that mint short-lived ones. */
export interface PasswordCommand {
  tool: string;
  args: string[];
}

export interface LoginPlan {
  kind: RegistryKind;
  registry: string;
  username: string;
  /** The password, or how to get one. */
  password: string | PasswordCommand;
  /** The user name is itself a secret (DigitalOcean): write the auth, never put it on argv. */
  secretUsername: boolean;
}

export interface LoginInput {
  registry: string;
  username: string;
  password: string;
  githubToken: string;
  actor: string;
  /** Credentials are needed: push is on. Without it a login is only done when asked for. */
  push: boolean;
}

/** Decides the login, or undefined when none is needed or possible without credentials. */
export function planLogin(input: LoginInput): LoginPlan | undefined {
  const kind = registryKind(input.registry);
  const { registry, username, password } = input;
  const plan = (user: string, pass: string | PasswordCommand, secretUsername = false): LoginPlan => ({
    kind,
    registry,
    username: user,
    password: pass,
    secretUsername,
  });
  if (username && !password) {
    throw new UserError(
      `Input \`registry-username\` is set but \`registry-password\` is empty: pass the password or token for ${registry}.`,
    );
  }
  if (password) {
    switch (kind) {
      case 'ghcr':
        return plan(username || input.actor, password);
      case 'ecr':
      case 'ecr-public':
        return plan(username || 'AWS', password);
      case 'gar':
        return plan(username || (password.trimStart().startsWith('{') ? '_json_key' : 'oauth2accesstoken'), password);
      case 'docr':
        return username ? plan(username, password) : plan(password, password, true);
      default:
        if (!username) {
          throw new UserError(
            `Input \`registry-username\` is required to log in to ${registry}${kind === 'dockerhub' ? ' (your Docker Hub user name)' : ''}.`,
          );
        }
        return plan(username, password);
    }
  }
  if (!input.push) return undefined;
  switch (kind) {
    case 'ghcr':
      if (!input.githubToken) {
        throw new UserError('Pushing to ghcr.io needs a token: give `github-token` (with packages: write) or `registry-password`.');
      }
      return plan(input.actor, input.githubToken);
    case 'ecr':
      return plan('AWS', { tool: 'aws', args: ['ecr', 'get-login-password', '--region', ecrRegion(registry)] });
    case 'ecr-public':
      return plan('AWS', { tool: 'aws', args: ['ecr-public', 'get-login-password', '--region', 'us-east-1'] });
    case 'gar':
      return plan('oauth2accesstoken', { tool: 'gcloud', args: ['auth', 'print-access-token'] });
    default:
      // A registry that needs no login (or one the runner is already logged in to).
      return undefined;
  }
}

export function ecrRegion(registry: string): string {
  return /\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com/.exec(registry)?.[1] ?? 'us-east-1';
}

const CLI_LOGIN: Partial<Record<RegistryKind, { service: string; fix: string }>> = {
  ecr: {
    service: 'Amazon ECR',
    fix: 'give the job AWS credentials allowed ecr:GetAuthorizationToken (aws-actions/configure-aws-credentials before this step), or pass `registry-password`',
  },
  'ecr-public': {
    service: 'Amazon ECR Public',
    fix: 'give the job AWS credentials allowed ecr-public:GetAuthorizationToken and sts:GetServiceBearerToken (aws-actions/configure-aws-credentials before this step), or pass `registry-password`',
  },
  gar: {
    service: 'Google Artifact Registry',
    fix: 'authenticate gcloud first (google-github-actions/auth and setup-gcloud), or pass an access token as `registry-password`',
  },
};

/**
 * Runs the CLI that mints a registry password and returns it, masked. A failure is one line:
 * the registry, the command, the CLI's own last line (never its output: it could hold the
 * password) and the fix.
 */
export async function passwordFromCli(kind: RegistryKind, command: PasswordCommand): Promise<string> {
  const shown = displayCommand(command.tool, command.args);
  const { service, fix } = CLI_LOGIN[kind] ?? { service: kind, fix: 'pass `registry-password`' };
  const fail = (why: string): UserError => new UserError(`Could not get a password for ${service}: \`${shown}\` ${why}; ${fix}.`);
  let result;
  try {
    result = await execTool(command.tool, command.args, { silent: true, allowFailure: true });
  } catch (error) {
    // It could not start: not installed, or not on PATH.
    if (error instanceof CommandError) throw fail(`could not run (${command.tool} is not on PATH)`);
    throw error;
  }
  const password = result.stdout.trim();
  if (result.exitCode !== 0) {
    // The CLI's error line (aws: `An error occurred (...)`, gcloud: `ERROR: (gcloud...) ...`), else its last.
    const lines = result.stderr
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    const last = lines.find((l) => /^(ERROR:|An error occurred\b)/.test(l)) ?? lines.at(-1) ?? '';
    throw fail(`exited with code ${result.exitCode}${last ? `: ${last.replace(/[.\s]+$/, '')}` : ''}`);
  }
  if (!password) throw fail('printed no password');
  maskSecret(password);
  return password;
}
