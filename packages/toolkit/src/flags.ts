import { UserError } from './errors';

/**
 * Splits a free-form input of extra arguments into argv the way a POSIX shell would quote them,
 * without any expansion: no variables, globs, substitutions or operators ever run. Single
 * quotes are literal, double quotes allow \" \\ \$ \` escapes, a backslash escapes outside
 * quotes, and newlines separate words like spaces.
 */
export function tokenize(input: string, inputName: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < input.length; i++) {
    const c = input[i]!;
    if (quote === "'") {
      if (c === "'") quote = null;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === '\\' && i + 1 < input.length && '"\\$`\n'.includes(input[i + 1]!)) word += input[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\') {
      if (i + 1 >= input.length) throw new UserError(`Input \`${inputName}\` ends with a lone backslash.`);
      const next = input[++i]!;
      if (next !== '\n') word += next;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new UserError(`Input \`${inputName}\` has an unterminated ${quote} quote.`);
  if (inWord) words.push(word);
  return words;
}
