import * as core from '@actions/core';
import { parseDotenv } from './dotenv';
import { UserError } from './errors';
import { tokenize } from './flags';
import { parseBoolean, parseChoice, parseDuration, parseInteger, parseList, parseNumber, parseShard, type Shard } from './parse';

/**
 * Typed readers for action inputs (the runner passes them as INPUT_<NAME> variables, defaults
 * from action.yml already applied). An empty input means "not given".
 */

export function getString(name: string): string {
  return core.getInput(name).trim();
}

/** The raw value, whitespace kept (for dotenv blocks, scripts, keys). */
export function getRaw(name: string): string {
  return core.getInput(name, { trimWhitespace: false });
}

export function getRequired(name: string, hint = ''): string {
  const value = getString(name);
  if (!value) throw new UserError(`Input \`${name}\` is required${hint ? `: ${hint}` : '.'}`);
  return value;
}

export function getBoolean(name: string, fallback = false): boolean {
  const value = getString(name);
  return value === '' ? fallback : parseBoolean(value, name);
}

export function getChoice<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
  const value = getString(name);
  return value === '' ? fallback : parseChoice(value, name, allowed);
}

export function getList(name: string, opts: { commas?: boolean } = {}): string[] {
  return parseList(core.getInput(name), opts);
}

export function getInteger(name: string, fallback: number, range?: { min?: number; max?: number }): number {
  const value = getString(name);
  return value === '' ? fallback : parseInteger(value, name, range);
}

export function getNumber(name: string, range?: { min?: number; max?: number }): number | undefined {
  const value = getString(name);
  return value === '' ? undefined : parseNumber(value, name, range);
}

/** Milliseconds. */
export function getDuration(name: string, fallbackMs: number): number {
  const value = getString(name);
  return value === '' ? fallbackMs : parseDuration(value, name);
}

export function getShard(name: string): Shard | undefined {
  const value = getString(name);
  return value === '' ? undefined : parseShard(value, name);
}

export function getArgs(name: string): string[] {
  return tokenize(core.getInput(name), name);
}

export function getDotenv(name: string): Map<string, string> {
  return parseDotenv(getRaw(name), `Input \`${name}\``);
}
