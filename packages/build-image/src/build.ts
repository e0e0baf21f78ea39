import { tail } from '@slipway/toolkit/errors';

/** Reading a build's output: reused layers, and where and why a failed build stopped. */

export interface CacheUse {
  reused: number;
  steps: number;
}

export function cacheUse(output: string, builder: 'buildx' | 'classic'): CacheUse {
  if (builder === 'classic') {
    const steps = (output.match(/^Step \d+\/\d+ : /gm) ?? []).length;
    const reused = (output.match(/^ ---> Using cache$/gm) ?? []).length;
    return { reused, steps };
  }
  const done = new Set<string>();
  const cached = new Set<string>();
  for (const m of output.matchAll(/^#(\d+) (CACHED|DONE|\[)/gm)) {
    done.add(m[1]!);
    if (m[2] === 'CACHED') cached.add(m[1]!);
  }
  const steps = new Set([...output.matchAll(/^#(\d+) \[[^\]]*\d+\/\d+\]/gm)].map((m) => m[1]!));
  return { reused: [...cached].filter((id) => steps.has(id)).length, steps: steps.size };
}

export interface BuildFailure {
  /** "5/12" (classic) or "builder 5/6" (buildx). */
  step: string;
  instruction: string;
  /** The instruction's position among the Dockerfile's instructions (1-based), when known. */
  index?: number;
  lastLines: string;
}

export function buildFailure(output: string, builder: 'buildx' | 'classic'): BuildFailure | undefined {
  if (builder === 'classic') {
    const steps = [...output.matchAll(/^Step (\d+)\/(\d+) : (.*)$/gm)];
    const last = steps.at(-1);
    if (!last) return undefined;
    const after = output
      .slice(last.index + last[0].length)
      .split('\n')
      .filter((l) => !/^ ---> /.test(l) && !/^Removing intermediate container/.test(l))
      .join('\n')
      .replace(/DEPRECATED: The legacy builder is deprecated[\s\S]*?environment-variable\.\n?/, '')
      .replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'), '')
      .trim();
    return { step: `${last[1]}/${last[2]}`, instruction: last[3]!.trim(), index: Number(last[1]), lastLines: tail(after, 15, 2000) };
  }
  const err = /^#(\d+) ERROR: (.*)$/m.exec(output);
  const id = err?.[1];
  const head = id ? new RegExp(`^#${id} \\[([^\\]]+)\\] (.*)$`, 'm').exec(output) : null;
  if (!head) return undefined;
  const lines = output
    .split('\n')
    .filter((l) => l.startsWith(`#${id} `) && !/^#\d+ (DONE|ERROR|CANCELED)/.test(l))
    .map((l) => l.replace(/^#\d+ (\d+\.\d+ )?/, ''));
  const pos = /(\d+)\/\d+$/.exec(head[1]!);
  return {
    step: head[1]!,
    instruction: head[2]!,
    index: pos ? Number(pos[1]) : undefined,
    lastLines: tail(lines.slice(1).join('\n'), 15, 2000),
  };
}

/**
 * The line of the n-th instruction of a Dockerfile (classic steps count every instruction
 * of every stage, in order), for an annotation on the file.
 */
export function instructionLine(dockerfile: string, index: number): number | undefined {
  const lines = dockerfile.split('\n');
  let count = 0;
  let continued = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line.trim() || /^\s*#/.test(line)) continue;
    if (!continued && ++count === index) return i + 1;
    continued = /\\\s*$/.test(line);
  }
  return undefined;
}
