/**
 * deploy with `migrate: true` over ssh, its releases recorded in GitHub Deployments (the
 * OpenAPI-checked stand-in), then rollback reading only those records: the real sshd on
 * 127.0.0.1:2222, the real Docker engine and HAProxy, a real PostgreSQL (127.0.0.1:5432, trust).
 * GitHub keeps a deployment's payload as it was created, so the record must be created once the
 * migrations ran: the payload read back has to say which migrations the release applied, or
 * rollback cannot know to migrate back.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyWorkspace, Job, type StepResult } from '../harness/job';
import { GitHubApiStub } from '../stubs/github-api';
import { buildDeployImage, cleanupHost, deployServices, sshInputs } from './deploy-support';
import { buildVariant, pg } from './rollback-support';

const APP = 'shopmig';
const APP_PORT = 17700;
const PROXY_PORT = 17780;
const DB = 'slipway_deploy_migrate';
const TOKEN = 'ghs_deploy_migrate_token_0123456789';

let env: Record<string, string>;
let images: { v1: string; v2: string };
let ssh: { key: string; knownHosts: string; port: string };
let remoteDir: string;
const gh = new GitHubApiStub(TOKEN);

function common(): Record<string, string> {
  return {
    provider: 'ssh',
    environment: 'staging',
    hosts: `root@127.0.0.1:${ssh.port}`,
    'ssh-private-key': ssh.key,
    'ssh-known-hosts': ssh.knownHosts,
    'app-name': APP,
    'app-port': String(APP_PORT),
    'proxy-port': String(PROXY_PORT),
    'proxy-address': '127.0.0.1',
    'remote-dir': remoteDir,
    'health-timeout': '60s',
    env: `DATABASE_URL=${pg.url(DB)}\nDJANGO_SECRET_KEY=deploy-migrate-itg-secret-0123456789\nDJANGO_SECURE_SSL_REDIRECT=false\nDJANGO_LOG_LEVEL=WARNING`,
    'release-store': 'github',
    'github-token': TOKEN,
  };
}

const ok = (r: StepResult): void => expect(r.failure, r.log).toBeUndefined();
const current = (): string =>
  (JSON.parse(fs.readFileSync(path.join(remoteDir, APP, 'current'), 'utf8')) as { releaseId: string }).releaseId;
const columns = (): string =>
  pg.query(
    DB,
    "SELECT table_name || '.' || column_name FROM information_schema.columns WHERE column_name IN ('barcode', 'note') ORDER BY 1",
  );

interface Payload {
  slipway: {
    id: string;
    providerReleaseId: string;
    image: string;
    migrations: { before: Record<string, string> | null; after: Record<string, string> | null; applied: string[] } | null;
  };
}

beforeAll(async () => {
  env = deployServices();
  Object.assign(process.env, { DOCKER_HOST: env.DOCKER_HOST ?? process.env.DOCKER_HOST });
  const base = buildDeployImage(env);
  images = { v1: base.ref, v2: buildVariant('v2', base.tag, env).ref };
  ssh = sshInputs(env);
  remoteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-migrate-host-'));
  cleanupHost(APP, path.join(os.tmpdir(), 'none'), env);
  pg.recreate(DB);
  await gh.start();
});

afterAll(async () => {
  await gh.stop();
  if (!env) return;
  cleanupHost(APP, remoteDir, env);
  pg.drop(DB);
});

describe('deploy migrate: true over ssh, recorded in GitHub Deployments', () => {
  it('the record created after the migrations carries them; rollback from those records migrates back', async () => {
    const job = new Job({ workspace: emptyWorkspace(), env: { GITHUB_API_URL: gh.url } });
    const first = await job.run(
      'deploy',
      { ...common(), image: images.v1, migrate: 'true', 'setup-host': 'true' },
      {
        env: { GITHUB_SHA: 'a'.repeat(40) },
      },
    );
    ok(first);
    const a = first.outputs['release-id']!;
    expect(columns()).toBe('');

    const second = await job.run('deploy', { ...common(), image: images.v2, migrate: 'true' }, { env: { GITHUB_SHA: 'b'.repeat(40) } });
    ok(second);
    const b = second.outputs['release-id']!;
    expect(current()).toBe(b);
    expect(columns().split('\n')).toEqual(['catalog_product.barcode', 'orders_order.note']);
    // The migration ran before the record began, and the record began before traffic moved.
    expect(second.log.indexOf('Migrating the database')).toBeLessThan(second.log.indexOf(`Recording release ${b}`));
    expect(second.log.indexOf(`Recording release ${b}`)).toBeLessThan(second.log.indexOf(`Deploying to ssh`));

    expect(gh.violations).toEqual([]);
    const creates = gh.requests.filter((r) => r.method === 'POST' && r.path === '/repos/acme/shop/deployments');
    expect(creates).toHaveLength(2);
    expect(creates.map((c) => c.headers.authorization)).toEqual([`token ${TOKEN}`, `token ${TOKEN}`]);
    const sent = creates[1]!.body as { ref: string; environment: string; payload: Payload };
    expect(sent.ref).toBe('b'.repeat(40));
    expect(sent.environment).toBe('staging');
    expect(sent.payload.slipway).toMatchObject({ id: b, providerReleaseId: b, image: images.v2 });
    expect([...sent.payload.slipway.migrations!.applied].sort()).toEqual(['catalog.0005_product_barcode', 'orders.0003_order_note']);
    expect(sent.payload.slipway.migrations!.before).toMatchObject({ catalog: '0004_product_slug_unique' });
    expect(sent.payload.slipway.migrations!.after).toMatchObject({ catalog: '0005_product_barcode', orders: '0003_order_note' });
    // The first release's record: the migrations that made the schema from nothing.
    const firstPayload = (creates[0]!.body as { payload: Payload }).payload.slipway;
    expect(firstPayload.migrations!.after).toMatchObject({ catalog: '0004_product_slug_unique' });
    // What GitHub stored and hands back is that payload: nothing later was needed to complete it.
    const stored = gh.deployments.find((d) => (d.payload as Payload).slipway.id === b)!;
    expect((stored.payload as Payload).slipway.migrations!.applied).toHaveLength(2);
    const statuses = gh.statuses.get(stored.id)!;
    expect(statuses.map((s) => [s.state, s.description])).toEqual([
      ['in_progress', expect.stringMatching(new RegExp(`^deploying: ${b} \\(sha256:[0-9a-f]{12}\\)`))],
      ['success', expect.stringMatching(new RegExp(`^success: ${b} \\(sha256:[0-9a-f]{12}\\); provider release ${b}$`))],
    ]);
    expect(statuses[1]!.environmentUrl).toBe(`http://127.0.0.1:${PROXY_PORT}/`);

    // Rollback with nothing but the GitHub records: the database mode follows from them.
    const rollback = await job.run('rollback', common());
    ok(rollback);
    expect(rollback.log).toContain('Database: migrate-back');
    expect(current()).toBe(a);
    expect(columns()).toBe('');
    expect(gh.violations).toEqual([]);
  });
});
