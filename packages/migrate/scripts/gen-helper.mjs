// Embeds src/helper.py in src/helper-script.ts (the bundle carries it as a string), formatted
// as prettier wants it. Run after editing helper.py: node packages/migrate/scripts/gen-helper.mjs
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';

const dir = new URL('../src/', import.meta.url);
const target = fileURLToPath(new URL('helper-script.ts', dir));
const py = fs.readFileSync(new URL('helper.py', dir), 'utf8');
const ts = `// Generated from helper.py by scripts/gen-helper.mjs: edit helper.py, then regenerate.\nexport const HELPER_SCRIPT = ${JSON.stringify(py)};\n`;
const options = (await prettier.resolveConfig(target)) ?? {};
fs.writeFileSync(target, await prettier.format(ts, { ...options, filepath: target }));
