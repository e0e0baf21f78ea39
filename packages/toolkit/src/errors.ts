/**
 * The two kinds of failure an action reports (in the spirit of codeql-action's
 * ConfigurationError vs CommandInvocationError): a user mistake, told in one line with the fix,
 * and a program that failed, told with its command, exit code and the tail of its stderr.
 */

/** A mistake the user can fix: a bad input, a missing file. Printed as one line, no stack. */
export class UserError extends Error {
  override name = 'UserError';
}

const TAIL_LINES = 20;
const TAIL_CHARS = 4000;

/** The last `lines` lines of `text`, capped to `chars` characters. */
export function tail(text: string, lines = TAIL_LINES, chars = TAIL_CHARS): string {
  const kept = text.replace(/\s+$/, '').split('\n').slice(-lines).join('\n');
  return kept.length > chars ? `…${kept.slice(-chars)}` : kept;
}

/** A program that exited non-zero (or could not start). */
export class CommandError extends Error {
  override name = 'CommandError';

  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderrTail: string,
    summary?: string,
  ) {
    const status = exitCode === null ? 'could not run' : `exited with code ${exitCode}`;
    const head = summary ? `${summary}: ` : '';
    const detail = stderrTail ? `\n${stderrTail}` : '';
    super(`${head}\`${command}\` ${status}${detail}`);
  }
}

/** The message to show for any thrown value; stacks only for bugs, and only in debug logs. */
export function describeError(error: unknown): { message: string; stack?: string } {
  if (error instanceof UserError || error instanceof CommandError) return { message: error.message };
  if (error instanceof Error) return { message: error.message, stack: error.stack };
  return { message: String(error) };
}
