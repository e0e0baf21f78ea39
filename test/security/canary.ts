/**
 * Canary secrets: unique values handed to every secret-bearing input, and the needles to find
 * them again in any form an action could leak them (as is, base64 at every byte alignment,
 * URL-encoded, each line of a multi-line value such as an SSH key).
 */
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface Canary {
  /** What it stands for, e.g. `deploy ssh-private-key`. */
  label: string;
  value: string;
  /** Forms to search for, each with the encoding's name. */
  needles: { form: string; text: string }[];
}

/** A canary with a recognisable prefix; `special` adds characters that URL encoding changes. */
export function canaryValue(tag: string, special = false): string {
  const id = crypto.randomBytes(12).toString('hex');
  return `cnry${tag.replace(/[^a-z0-9]/gi, '')}${id}${special ? '+/@:' : ''}`;
}

export function makeCanary(label: string, value: string): Canary {
  return { label, value, needles: needlesFor(value) };
}

/** A real ed25519 key pair made for this run: its private key text is the canary. */
export function canaryKeyPair(label: string): Canary & { publicKey: string; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-canary-key-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', path.join(dir, 'id')]);
  const value = fs.readFileSync(path.join(dir, 'id'), 'utf8');
  const publicKey = fs.readFileSync(path.join(dir, 'id.pub'), 'utf8').trim();
  return { ...makeCanary(label, value), publicKey, dir };
}

function needlesFor(value: string): { form: string; text: string }[] {
  const out: { form: string; text: string }[] = [];
  const add = (form: string, text: string): void => {
    if (text.length >= 12 && !out.some((n) => n.text === text)) out.push({ form, text });
  };
  const lines = value.split('\n').filter((l) => l.trim() && !/^-----/.test(l));
  if (lines.length > 1) lines.forEach((l, i) => add(`line ${i + 1}`, l.trim()));
  else add('raw', value.trim());
  const core = lines.length > 1 ? lines.join('') : value.trim();
  add('raw', value.trim());
  // base64 inside a longer encoded string: the canary can start at any of three byte offsets.
  for (let shift = 0; shift < 3; shift++) {
    const b64 = Buffer.from('\0'.repeat(shift) + core).toString('base64');
    const skip = Math.ceil((shift * 4) / 3) + (shift ? 1 : 0);
    add(`base64@${shift}`, b64.slice(skip, b64.length - 4));
  }
  add('url-encoded', encodeURIComponent(value.trim()));
  add('form-encoded', new URLSearchParams({ v: value.trim() }).toString().slice(2));
  return out;
}

export interface Hit {
  canary: string;
  form: string;
  place: string;
}

/** Every needle of every canary found in `text`, naming the place. */
export function searchText(text: string | Buffer, place: string, canaries: Canary[]): Hit[] {
  const s = typeof text === 'string' ? text : text.toString('latin1');
  const hits: Hit[] = [];
  for (const c of canaries) {
    for (const n of c.needles) {
      if (s.includes(n.text)) {
        hits.push({ canary: c.label, form: n.form, place });
        break;
      }
    }
  }
  return hits;
}

/**
 * Searches every regular file under `dir` (binary too, as latin1 so any byte sequence matches
 * itself), skipping paths `skip` accepts. Returns the hits and how many files were read.
 */
export function searchTree(
  dir: string,
  place: string,
  canaries: Canary[],
  skip: (file: string) => boolean = () => false,
): { hits: Hit[]; files: number } {
  const hits: Hit[] = [];
  let files = 0;
  const walk = (d: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (skip(p)) continue;
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const size = fs.statSync(p).size;
        if (size > 64 << 20) continue;
        files++;
        hits.push(...searchText(fs.readFileSync(p), `${place}: ${path.relative(dir, p)}`, canaries));
      }
    }
  };
  walk(dir);
  return { hits, files };
}
