/**
 * The injection corpus: values that would run a command if any input reached a shell, an option
 * parser or a remote command line unquoted. Each `touch` targets an absolute marker path.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { REPO_ROOT } from '../harness/job';

export const ACTIONS = ['setup-django', 'run-tests', 'build-image', 'migrate', 'deploy', 'rollback'] as const;
export type ActionName = (typeof ACTIONS)[number];

/** Every input an action declares (all action inputs are strings to the runner). */
export function inputsOf(action: ActionName): string[] {
  const yml = parseYaml(fs.readFileSync(path.join(REPO_ROOT, 'actions', action, 'action.yml'), 'utf8')) as {
    inputs?: Record<string, unknown>;
  };
  return Object.keys(yml.inputs ?? {});
}

export interface Payload {
  name: string;
  value: (marker: string) => string;
}

export const PAYLOADS: Payload[] = [
  { name: '$(touch X)', value: (x) => `$(touch ${x})` },
  { name: '`touch X`', value: (x) => `\`touch ${x}\`` },
  { name: '"; touch X; "', value: (x) => `"; touch ${x}; "` },
  { name: "'; touch X; '", value: (x) => `'; touch ${x}; '` },
  { name: 'a\\ntouch X', value: (x) => `a\ntouch ${x}` },
  { name: '--help', value: () => '--help' },
  { name: '-o ProxyCommand=touch X', value: (x) => `-o ProxyCommand=touch ${x}` },
  { name: '10,000 chars', value: (x) => `${x}${'A'.repeat(10_000 - x.length)}` },
  // An environment variable cannot carry invalid UTF-8 from the runner (it passes inputs as
  // UTF-16 strings) nor from Node's spawn: lone surrogates arrive as U+FFFD, next to control
  // characters, an ANSI escape and a right-to-left override.
  { name: 'non-UTF-8 / control bytes', value: (x) => `\udc80\udcff\ufffd\u0001\u001b[31m\u202e;touch ${x}` },
];

/**
 * CI's corpus: the five shell payloads in one value (any shell that evaluates the value runs at
 * least one of them), then the option-like, long and non-UTF-8 ones. SLIPWAY_SECURITY_FULL=1
 * runs every payload of PAYLOADS on its own instead.
 */
export const CI_PAYLOADS: Payload[] = [
  {
    name: 'all shell forms at once',
    value: (x) =>
      PAYLOADS.slice(0, 5)
        .map((p) => p.value(x))
        .join(' '),
  },
  ...PAYLOADS.slice(5),
];

/** Python, JavaScript and shell stack traces a user should never see. */
export const STACK_TRACE = /Traceback \(most recent call last\)|^\s+at .+[(\s]\/?[^\s()]+:\d+:\d+\)?$|node:internal\//m;
