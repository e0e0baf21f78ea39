import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '@slipway/toolkit/errors';
import { inspectProject } from './inspect';
import { parseStages, planFiles, report, UsageError, writeFiles } from './init';
import { GENERIC_PROFILE, PROVIDERS, STARTER_TEMPLATES, type Provider } from './workflows';

/**
 * `slipway` command line. Exit codes: 0 done; 1 the project or the files refuse (no manage.py,
 * files that exist without --force); 2 a usage error (unknown command, stage, provider, flag).
 * Every error is one line on stderr.
 */
export const USAGE = `usage: slipway init [ci|docker|cd|rollback ...] [--provider ssh|heroku|aws-eb|cloud-run] [--dir PATH] [--force]
       slipway templates DIR     (writes the organisation starter workflows)

init inspects the Django project in PATH (default: the current folder) and writes
.github/workflows/django-ci.yml, compose.yaml (+ a Dockerfile when there is none),
django-cd.yml and django-rollback.yml: all stages in that order, or only those named.
It never overwrites a file without --force, and prints the secrets and variables to create.`;

export interface Io {
  cwd: string;
  out: (line: string) => void;
  err: (line: string) => void;
}

interface InitArgs {
  stages: string[];
  force: boolean;
  dir: string;
  provider: Provider;
}

export function parseInitArgs(argv: string[], cwd: string): InitArgs {
  const args: InitArgs = { stages: [], force: false, dir: cwd, provider: 'ssh' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${flag} needs a value.`);
      return v;
    };
    if (flag === '--force' && inline === undefined) args.force = true;
    else if (flag === '--dir') args.dir = path.resolve(cwd, value());
    else if (flag === '--provider') {
      const p = value();
      if (!(PROVIDERS as readonly string[]).includes(p)) {
        throw new UsageError(`Unknown provider \`${p}\`: use one of ${PROVIDERS.join(', ')}.`);
      }
      args.provider = p as Provider;
    } else if (arg.startsWith('-')) throw new UsageError(`Unknown option ${arg}: see slipway --help.`);
    else args.stages.push(arg);
  }
  return args;
}

function init(argv: string[], io: Io): void {
  const args = parseInitArgs(argv, io.cwd);
  const stages = parseStages(args.stages);
  const facts = inspectProject(args.dir);
  const files = planFiles(facts, stages, args.provider);
  writeFiles(args.dir, files, args.force);
  io.out(report(files, facts, stages, args.provider));
}

/** The organisation templates: workflow-templates/<name>.yml and <name>.properties.json, from init's renderer. */
export function templateFiles(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of STARTER_TEMPLATES) {
    out[t.file] = t.render({ ...GENERIC_PROFILE, provider: t.provider });
    out[t.file.replace(/\.yml$/, '.properties.json')] = propertiesJson(t.properties);
  }
  return out;
}

/** One key per line, arrays on one line: the layout Prettier keeps. */
function propertiesJson(props: object): string {
  const lines = Object.entries(props).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v).replace(/","/g, '", "')}`);
  return `{\n${lines.join(',\n')}\n}\n`;
}

function templates(argv: string[], io: Io): void {
  if (argv.length !== 1 || argv[0]!.startsWith('-')) throw new UsageError('slipway templates needs exactly one folder.');
  const dir = path.resolve(io.cwd, argv[0]!);
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(templateFiles())) fs.writeFileSync(path.join(dir, name), text);
  io.out(`Wrote ${Object.keys(templateFiles()).length} files to ${dir}`);
}

export async function main(argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      io.out(USAGE);
      return command === undefined ? 2 : 0;
    }
    if (command === 'init') init(rest, io);
    else if (command === 'templates') templates(rest, io);
    else throw new UsageError(`Unknown command \`${command}\`: use slipway init (see slipway --help).`);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`slipway: ${error.message}`);
      return 2;
    }
    if (error instanceof UserError) {
      io.err(`slipway: ${error.message}`);
      return 1;
    }
    io.err(`slipway: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}
