/**
 * `ssh-runtime: release-dir` on one host (release-dir-faults-support.ts: a private sshd "VPS",
 * gunicorn, HAProxy, wrk): a failure after the traffic switch but before it is recorded, undone by
 * ReleaseDirProvider.switchBackRelease. The `current` link's rename fails once, when current.json
 * already names the new release: traffic goes back and current.json is written back. The previous
 * release serves throughout (zero failed requests), what the host records is what serves, the
 * lock is released, nothing of the failed release is kept, the outcome is rolled-back, and the
 * next deploy succeeds under load. Own app name, remote dir and ports (195xx).
 */
import { describe } from 'vitest';
import { releaseDirFaultHost, secretNeverOnArgv, switchNotRecordedCase } from './release-dir-faults-support';

const SECRET = 'rd-switch-secret-Wd5-never-on-argv-0123456789abcdef';
const h = releaseDirFaultHost({ app: 'shoprds', appPort: 19540, proxyPort: 19592, environment: 'rdswitch', secret: SECRET });

describe('release-dir deploy: the switch not recorded (real sshd, gunicorn, HAProxy, wrk)', () => {
  // current.json already names the new release when the link's rename fails: it must be written back.
  switchNotRecordedCase(h, {
    name: 'switch not recorded: the current link rename fails once',
    rule: 'mv -T -f {dir}/current.new',
    times: 1,
    says: /mv -T -f .*current\.new.*exited with code 42/,
  });

  secretNeverOnArgv(h, SECRET);
});
