/**
 * `ssh-runtime: release-dir` on one host (release-dir-faults-support.ts: a private sshd "VPS",
 * gunicorn, HAProxy, wrk): every write of current.json.new refused, as on a full disk. The
 * switch has moved traffic, recording it fails, and writing the previous release back (what
 * switchBackRelease does) fails the same way, while current.json itself was never replaced: the
 * previous release serves again and the host says so, so the deploy is rolled-back (it said
 * "Could not move traffic back" and left the new gunicorn running). Own app name, dir and ports.
 */
import { describe } from 'vitest';
import { releaseDirFaultHost, secretNeverOnArgv, switchNotRecordedCase } from './release-dir-faults-support';

const SECRET = 'rd-disk-secret-Qm2-never-on-argv-0123456789abcdef';
const h = releaseDirFaultHost({ app: 'shoprdd', appPort: 19530, proxyPort: 19591, environment: 'rddisk', secret: SECRET });

describe('release-dir deploy: the switch not recorded, and the record not writable (real sshd, gunicorn, HAProxy, wrk)', () => {
  switchNotRecordedCase(h, {
    name: 'switch not recorded: every current.json write refused',
    rule: 'dd of={dir}/current.json.new',
    says: /dd of=.*current\.json\.new.*exited with code 42/,
  });

  secretNeverOnArgv(h, SECRET);
});
