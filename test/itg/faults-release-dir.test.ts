/**
 * `ssh-runtime: release-dir` on one host (release-dir-faults-support.ts: a private sshd "VPS",
 * gunicorn, HAProxy, wrk): the SSH connection cut mid-deploy while the new release builds, with
 * faults-deploy.test.ts's mechanism (the sshd session processes stopped and killed for 3 s). The
 * previous release keeps serving (zero failed requests), what the host records is what serves,
 * the lock is released or taken over by the next deploy (saying so), a dir the cut left is
 * pruned without costing a kept release, and the next deploy succeeds under load. Then the same
 * with the deploy killed on the host (its sessions and all they started, until the step ends):
 * the lock and the release dir are left, and the next deploy takes the lock over and prunes it.
 * faults-release-dir-switch and -disk: failures after the switch, before it is recorded.
 * Own app name, remote dir and ports (195xx).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Job } from '../harness/job';
import { releaseDirFaultHost, secretNeverOnArgv, TAKEOVER } from './release-dir-faults-support';

const SECRET = 'rd-faults-secret-Zt8-never-on-argv-0123456789abcdef';
const h = releaseDirFaultHost({ app: 'shoprdf', appPort: 19520, proxyPort: 19590, environment: 'rdfaults', secret: SECRET });

/** The VPS's sshd session processes and, with `tree`, every process they started (the remote build, the lock holder). */
function victims(tree: boolean): number[] {
  const pids = new Set(h.vps.sessionPids());
  if (!tree) return [...pids];
  const parent = new Map<number, number>();
  for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      parent.set(Number(p), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone
    }
  }
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (!pids.has(pid) && pids.has(ppid)) {
        pids.add(pid);
        grew = true;
      }
    }
  }
  return [...pids];
}

describe('release-dir deploy: the SSH connection cut mid-build (real sshd, gunicorn, HAProxy, wrk)', () => {
  const cases = [
    // The link down for 3 s: the sessions ssh opens again die too; the deploy's own clean-up may or may not get through.
    { name: 'ssh cut mid-build', tree: false },
    // The deploy dies on the host with everything it started, until the step ends: nothing on the host cleans up.
    { name: 'deploy killed on the host mid-build', tree: true },
  ];
  for (const { name, tree } of cases) {
    it(`${name}: the old release serves throughout, the next deploy gets past what was left`, async () => {
      const before = h.serving();
      h.commit(name);
      const envDir = path.join(h.appDir, 'env');
      const seen = new Set(fs.readdirSync(envDir));
      let killed = 0;
      let done = false;
      const r = await h.underLoad(async () => {
        const step = new Job({ workspace: h.workspace }).run('deploy', h.inputs()).finally(() => (done = true));
        // Mid-way: the new release's env file is written, its venv and dependencies not yet.
        for (let i = 0; i < 1500 && !fs.readdirSync(envDir).some((f) => !seen.has(f)); i++) await new Promise((res) => setTimeout(res, 20));
        const until = Date.now() + (tree ? 120_000 : 3000);
        while (Date.now() < until && !(tree && done)) {
          // Stopped first, then killed: no victim runs another instruction (a clean-up) once one dies.
          const pids = victims(tree);
          for (const signal of ['SIGSTOP', 'SIGKILL'] as const) {
            for (const pid of pids) {
              try {
                process.kill(pid, signal);
                if (signal === 'SIGKILL') killed++;
              } catch {
                // gone
              }
            }
          }
          await new Promise((res) => setTimeout(res, 20));
        }
        return step;
      });
      expect(killed).toBeGreaterThan(0);
      expect(r.exitCode).not.toBe(0);
      // Whichever call the cut hits: ssh's diagnosis, the lost lock, or a build step that names the connection.
      expect(r.failure, r.log).toMatch(
        /SSH connection to root@127\.0\.0\.1:\d+ failed|Lost the deploy lock|on root@127\.0\.0\.1:\d+ failed \(exit code 255: the SSH connection was lost\b/,
      );
      expect(r.failure).not.toContain('\n');
      expect(h.serving()).toEqual(before);
      h.expectConsistent(`${name}: after the failed deploy`);
      // The lock is not cleared by hand: the next deploy must get past whatever the cut left.
      const left = h.lockHeld();
      const cut = r.outputs['release-id']!;
      // Left when the clean-up could not reach the host either: marked unfinished, pruned first.
      const dirLeft = h.releases().includes(cut);
      if (tree) expect({ lockLeft: left, dirLeft }, 'nothing on the host survived to clean up').toEqual({ lockLeft: true, dirLeft: true });
      if (dirLeft) expect(fs.existsSync(path.join(h.appDir, 'releases', cut, '.slipway-unfinished'))).toBe(true);
      const later = await h.nextDeploy(name, before.releaseId);
      if (left) expect(later.log, "the next deploy says it took over a dead holder's lock").toMatch(TAKEOVER);
      if (dirLeft) expect(later.log).toMatch(new RegExp(`pruned .*${cut}`));
      h.passed.push(
        `${name} (lock ${left ? 'left, taken over' : 'released'}; release dir ${dirLeft ? 'left, pruned' : 'cleaned up'}: ${r.failure})`,
      );
    });
  }

  secretNeverOnArgv(h, SECRET);
});
