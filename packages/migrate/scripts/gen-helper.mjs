// Embeds src/helper.py in src/helper-script.ts (the bundle carries it as a string).
// Run after editing helper.py: node packages/migrate/scripts/gen-helper.mjs
import * as fs from 'node:fs';

const dir = new URL('../src/', import.meta.url);
const py = fs.readFileSync(new URL('helper.py', dir), 'utf8');
const ts = `// Generated from helper.py by scripts/gen-helper.mjs: edit helper.py, then regenerate.\nexport const HELPER_SCRIPT = ${JSON.stringify(py)};\n`;
fs.writeFileSync(new URL('helper-script.ts', dir), ts);
