/**
 * workflow-templates/ is generated: every file in it is exactly what `slipway templates` renders
 * (the renderer `slipway init` uses), and nothing else is there. Regenerate after a change to
 * packages/cli/src/workflows.ts: `node bin/slipway.js templates workflow-templates` (after
 * `node scripts/build-cli.mjs`).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { main, templateFiles } from '../../../packages/cli/src/index';
import { GENERIC_PROFILE, PROVIDERS, renderCd, STARTER_TEMPLATES } from '../../../packages/cli/src/workflows';

const TEMPLATES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'workflow-templates');

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe('workflow-templates/', () => {
  const rendered = templateFiles();

  it('holds exactly the files the renderer writes (none hand-added, none missing)', () => {
    expect(fs.readdirSync(TEMPLATES).sort()).toEqual(Object.keys(rendered).sort());
  });

  it.each(fs.readdirSync(TEMPLATES).sort())('%s is what the renderer writes', (name) => {
    expect(fs.readFileSync(path.join(TEMPLATES, name), 'utf8')).toBe(rendered[name]);
  });

  it('has a CD template per provider, each rendered as init --provider renders it', () => {
    const cd = STARTER_TEMPLATES.filter((t) => t.render === renderCd);
    expect(cd.map((t) => t.provider).sort()).toEqual([...PROVIDERS].sort());
    for (const t of cd) expect(rendered[t.file]).toBe(renderCd({ ...GENERIC_PROFILE, provider: t.provider }));
    expect(rendered['django-cd-aws.yml']).toContain('provider: aws-eb');
    expect(rendered['django-cd-cloud-run.yml']).toContain('provider: cloud-run');
    expect(rendered['django-cd-heroku.yml']).toContain('provider: heroku');
  });

  it('properties files are JSON with the keys GitHub reads', () => {
    for (const t of STARTER_TEMPLATES) {
      const props = JSON.parse(rendered[t.file.replace(/\.yml$/, '.properties.json')]!) as Record<string, unknown>;
      expect(props).toEqual(t.properties);
    }
  });

  it('slipway templates DIR writes them', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-templates-'));
    dirs.push(dir);
    const out: string[] = [];
    const code = await main(['templates', dir], { cwd: '/', out: (l) => out.push(l), err: (l) => out.push(l) });
    expect(code).toBe(0);
    expect(out).toEqual([`Wrote ${Object.keys(rendered).length} files to ${dir}`]);
    for (const [name, text] of Object.entries(rendered)) expect(fs.readFileSync(path.join(dir, name), 'utf8')).toBe(text);
  });
});
