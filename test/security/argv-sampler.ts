/**
 * Samples the argv of every process on the machine (not only the step's descendants: ssh
 * masters, dockerd's children and sshd sessions are detached) from /proc/<pid>/cmdline every
 * ~20 ms while a step runs, so a secret passed on any command line is seen even by a process
 * that lives a few milliseconds.
 */
import * as fs from 'node:fs';

export class ArgvSampler {
  /** Distinct command lines seen (NUL-separated argv joined with spaces). */
  readonly seen = new Set<string>();
  samples = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly last = new Map<string, string>();

  start(intervalMs = 20): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
  }

  sample(): void {
    this.samples++;
    let pids: string[];
    try {
      pids = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p));
    } catch {
      return;
    }
    for (const pid of pids) {
      let raw: Buffer;
      try {
        raw = fs.readFileSync(`/proc/${pid}/cmdline`);
      } catch {
        continue; // gone between readdir and read
      }
      if (raw.length === 0) continue; // kernel thread or zombie
      const line = raw.toString('latin1').replace(/\0+$/, '').split('\0').join(' ');
      if (this.last.get(pid) === line) continue;
      this.last.set(pid, line);
      this.seen.add(line);
    }
  }
}

/** Runs `fn` while a sampler polls /proc; returns its result and the sampler. */
export async function withArgvSampler<T>(fn: () => Promise<T>): Promise<{ result: T; sampler: ArgvSampler }> {
  const sampler = new ArgvSampler().start();
  try {
    return { result: await fn(), sampler };
  } finally {
    sampler.stop();
  }
}
