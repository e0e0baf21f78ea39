import { UserError } from './errors';

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Parses dotenv text: KEY=value lines, `export ` prefixes, # comments, single-quoted (literal),
 * double-quoted (\n \" \\ escapes, may span lines) and unquoted values (trailing ` #` comment
 * dropped). No variable expansion. `source` names the input or file in errors.
 */
export function parseDotenv(text: string, source: string): Map<string, string> {
  const result = new Map<string, string>();
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  for (let n = 0; n < lines.length; n++) {
    const lineNo = n + 1;
    const line = lines[n]!.trim();
    if (!line || line.startsWith('#')) continue;
    const body = line.startsWith('export ') ? line.slice(7).trimStart() : line;
    const eq = body.indexOf('=');
    if (eq <= 0) throw new UserError(`${source} line ${lineNo}: expected KEY=value.`);
    const key = body.slice(0, eq).trim();
    if (!KEY.test(key)) {
      throw new UserError(`${source} line ${lineNo}: \`${key}\` is not a valid variable name (letters, digits, _).`);
    }
    let value = body.slice(eq + 1).trimStart();
    const q = value[0];
    if (q === "'" || q === '"') {
      let rest = value.slice(1);
      let end = findClosing(rest, q);
      while (end < 0 && n + 1 < lines.length) {
        rest += `\n${lines[++n]!}`;
        end = findClosing(rest, q);
      }
      if (end < 0) throw new UserError(`${source} line ${lineNo}: unterminated ${q} quote for \`${key}\`.`);
      const after = rest.slice(end + 1).trim();
      if (after && !after.startsWith('#')) {
        throw new UserError(`${source} line ${lineNo}: unexpected text after the closing quote of \`${key}\`.`);
      }
      value = rest.slice(0, end);
      if (q === '"') value = value.replace(/\\([n"\\])/g, (_, ch: string) => (ch === 'n' ? '\n' : ch));
    } else {
      value = value.replace(/\s+#.*$/, '').trim();
    }
    result.set(key, value);
  }
  return result;
}

function findClosing(text: string, quote: string): number {
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\' && quote === '"') i++;
    else if (text[i] === quote) return i;
  }
  return -1;
}
