import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { UserError } from '@slipway/toolkit/errors';
import { passwordFromCli } from '../../../packages/build-image/src/registry';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-pwcli-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A CLI that prints `stdout`, `stderr` and exits with `code`. */
function fakeCli(name: string, stdout: string, stderr: string, code: number): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `#!/bin/sh\nprintf '%s' '${stdout}'\nprintf '%s' '${stderr}' >&2\nexit ${code}\n`, { mode: 0o755 });
  return file;
}

describe('passwordFromCli', () => {
  it('returns the printed password, trimmed and masked', async () => {
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      const tool = fakeCli('ok', 'minted-password\n', '', 0);
      await expect(passwordFromCli('ecr', { tool, args: [] })).resolves.toBe('minted-password');
      expect(write.mock.calls.map((c) => String(c[0])).join('')).toContain('::add-mask::minted-password');
    } finally {
      write.mockRestore();
    }
  });

  it('a refusal is one line: the service, the command, the CLI error line, the fix', async () => {
    const tool = fakeCli(
      'denied',
      '',
      '\nAn error occurred (AccessDeniedException) when calling the GetAuthorizationToken operation: not authorized.\n',
      254,
    );
    const err = (await passwordFromCli('ecr', { tool, args: ['ecr', 'get-login-password'] }).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).not.toContain('\n');
    expect(err.message).toMatch(
      /^Could not get a password for Amazon ECR: `.*\/denied ecr get-login-password` exited with code 254: An error occurred \(AccessDeniedException\) when calling the GetAuthorizationToken operation: not authorized; give the job AWS credentials/,
    );
  });

  it("picks gcloud's ERROR: line out of its advice", async () => {
    const tool = fakeCli(
      'gcloud',
      '',
      'ERROR: (gcloud.auth.print-access-token) No active account.\nPlease run:\n\n  $ gcloud auth login\n',
      1,
    );
    await expect(passwordFromCli('gar', { tool, args: [] })).rejects.toThrow(
      /exited with code 1: ERROR: \(gcloud\.auth\.print-access-token\) No active account; authenticate gcloud first/,
    );
  });

  it('a missing CLI, and one that prints nothing', async () => {
    await expect(passwordFromCli('gar', { tool: 'slipway-no-such-gcloud', args: [] })).rejects.toThrow(
      'Could not get a password for Google Artifact Registry: `slipway-no-such-gcloud` could not run (slipway-no-such-gcloud is not on PATH); authenticate gcloud first',
    );
    await expect(passwordFromCli('ecr', { tool: fakeCli('empty', '', '', 0), args: [] })).rejects.toThrow('printed no password');
  });
});
