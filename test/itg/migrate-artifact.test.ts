/**
 * migrate uploads its database backup as a workflow artifact through the artifact service v2,
 * the protocol GitHub's runners use (ACTIONS_RUNTIME_TOKEN + ACTIONS_RESULTS_URL: Twirp JSON
 * calls, the zip to Azure Blob Storage at the signed URL). The service cannot run here, so
 * test/stand-ins/artifact-v2.ts follows the published definitions and records what
 * @actions/artifact inside the bundle sends; these tests assert those requests as well as what
 * a later job would download. The example app on SQLite: no database server, no Docker.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BlockBlobClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyProject, Job, REPO_ROOT, type StepResult } from '../harness/job';
import { preparedVenv, seedSetupDjango } from '../harness/python-env';
import { ARTIFACT_SERVICE, ArtifactV2StandIn } from '../stand-ins/artifact-v2';

const RUN_ID = '13572468024';
const ATTEMPT = '2';
const DAY = 86_400_000;
let venv = '';
let service: ArtifactV2StandIn;
const scratch: string[] = [];

beforeAll(async () => {
  venv = preparedVenv([path.join(REPO_ROOT, 'example', 'requirements.txt')]);
  service = await new ArtifactV2StandIn().start();
});
afterAll(async () => {
  await service?.stop();
  for (const dir of scratch.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A job of workflow run RUN_ID on the example app, catalog at 0001 with three products (more pending). */
function job(jobId: string, env: Record<string, string>): Job {
  const ws = copyProject('example');
  scratch.push(ws);
  const jobEnv = {
    DJANGO_DEBUG: 'true',
    GITHUB_RUN_ID: RUN_ID,
    GITHUB_RUN_ATTEMPT: ATTEMPT,
    GITHUB_JOB: jobId,
    GITHUB_RETENTION_DAYS: '90',
    ...env,
  };
  const j = new Job({ workspace: ws, env: jobEnv });
  scratch.push(path.dirname(j.home));
  seedSetupDjango(j, { venv, projectDir: ws, settingsModule: 'shop.settings' });
  const python = path.join(venv, 'bin', 'python');
  execFileSync(python, ['manage.py', 'migrate', 'catalog', '0001', '-v0'], { cwd: ws, env: { ...process.env, ...j.env, ...jobEnv } });
  execFileSync(
    python,
    [
      '-c',
      `import sqlite3; c = sqlite3.connect('db.sqlite3'); c.executescript("""INSERT INTO catalog_category (name, slug) VALUES ('c', 'c'); INSERT INTO catalog_product (name, description, price, stock, created_at, category_id) VALUES ('a', '', 1, 1, '2026-01-01', 1), ('b', '', 1, 1, '2026-01-01', 1), ('c', '', 1, 1, '2026-01-01', 1);"""); c.commit()`,
    ],
    { cwd: ws },
  );
  return j;
}

/** A Twirp call to a stand-in as a later job would make it (its token, its ids). */
async function twirp(
  on: ArtifactV2StandIn,
  method: string,
  body: Record<string, unknown>,
  token: string,
): Promise<Record<string, unknown>> {
  const res = await fetch(`${on.resultsUrl}twirp/${ARTIFACT_SERVICE}/${method}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  return (await res.json()) as Record<string, unknown>;
}

/** The members of a zip, name → bytes (Python's zipfile: an independent reader). */
function unzip(zip: Buffer): Record<string, Buffer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-artifact-'));
  scratch.push(dir);
  const file = path.join(dir, 'artifact.zip');
  fs.writeFileSync(file, zip);
  const out = execFileSync(path.join(venv, 'bin', 'python'), [
    '-c',
    'import base64, json, sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nprint(json.dumps({i.filename: base64.b64encode(z.read(i)).decode() for i in z.infolist()}))',
    file,
  ]);
  return Object.fromEntries(
    Object.entries(JSON.parse(out.toString()) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64')]),
  );
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

function noTokenIn(step: StepResult, token: string): void {
  expect(step.log.includes(token), 'the runtime token is in the step output').toBe(false);
  expect(step.log.includes(token.split('.')[2]!), 'the runtime token signature is in the step output').toBe(false);
}

describe('the artifact v2 stand-in', () => {
  it("refuses what the service refuses: a foreign token, ids not the token's, a bad name or version, Finalize before the blob or with a wrong size or hash", async () => {
    const s = await new ArtifactV2StandIn().start();
    try {
      const ids = { workflow_run_backend_id: s.runBackendId, workflow_job_run_backend_id: s.jobBackendId };
      const inAWeek = new Date(Date.now() + 7 * DAY).toISOString();
      const create = { ...ids, name: 'a', version: 7, expires_at: inAWeek };
      const forged = `${s.token.split('.').slice(0, 2).join('.')}.${Buffer.from('forged').toString('base64url')}`;
      expect(await twirp(s, 'CreateArtifact', create, forged)).toMatchObject({ code: 'unauthenticated' });
      expect(await twirp(s, 'CreateArtifact', { ...create, workflow_job_run_backend_id: randomUUID() }, s.token)).toMatchObject({
        code: 'permission_denied',
      });
      expect(await twirp(s, 'CreateArtifact', { ...create, name: 'a/b' }, s.token)).toMatchObject({ code: 'invalid_argument' });
      expect(await twirp(s, 'CreateArtifact', { ...create, version: 3 }, s.token)).toMatchObject({ code: 'invalid_argument' });
      expect(await twirp(s, 'CreateArtifact', { ...create, expires_at: '2020-01-01T00:00:00Z' }, s.token)).toMatchObject({
        code: 'invalid_argument',
      });
      const created = await twirp(s, 'CreateArtifact', create, s.token);
      expect(created.ok).toBe(true);
      expect(await twirp(s, 'FinalizeArtifact', { ...ids, name: 'a', size: '3' }, s.token)).toMatchObject({ code: 'failed_precondition' });
      const blob = new BlockBlobClient(created.signed_upload_url as string, undefined, { proxyOptions: s.proxyOptions });
      await blob.upload('abc', 3);
      expect(await twirp(s, 'FinalizeArtifact', { ...ids, name: 'a', size: '4' }, s.token)).toMatchObject({ code: 'invalid_argument' });
      expect(await twirp(s, 'FinalizeArtifact', { ...ids, name: 'a', size: '3', hash: `sha256:${'0'.repeat(64)}` }, s.token)).toMatchObject(
        {
          code: 'invalid_argument',
        },
      );
      const hash = `sha256:${sha256(Buffer.from('abc'))}`;
      expect(await twirp(s, 'FinalizeArtifact', { ...ids, name: 'a', size: '3', hash }, s.token)).toMatchObject({ ok: true });
      await expect(blob.upload('abcd', 4)).rejects.toMatchObject({ statusCode: 409 });
      expect(await twirp(s, 'CreateArtifact', create, s.token)).toMatchObject({ code: 'already_exists' });
      expect(s.twirp.map((c) => c.status)).toEqual([401, 403, 400, 400, 400, 200, 412, 400, 400, 200, 409]);
      // Each refusal but the 409 (a legitimate answer) is a violation, and so is the write to a finalized blob.
      expect(s.violations).toHaveLength(9);
    } finally {
      await s.stop();
    }
  });
});

describe('migrate backup artifact through the artifact service v2', () => {
  it('uploads the backup as slipway-db-backup-<run>-<attempt>-<job>: Create, blocks, Finalize with size and hash; a later job lists and downloads it, and the zip holds the backup byte for byte', async () => {
    service.reset();
    const j = job('staging', service.env());
    const started = Date.now();
    const step = await j.run('migrate', { 'fail-on': 'never', 'backup-dir': 'backups', 'backup-retention-days': '3' });
    expect(step.exitCode, step.log).toBe(0);
    expect(JSON.parse(step.outputs.applied!)).toContain('catalog.0003_populate_product_slugs');
    const backup = step.outputs.backup!;
    expect(backup.startsWith(path.join(j.workspace, 'backups'))).toBe(true);
    const name = `slipway-db-backup-${RUN_ID}-${ATTEMPT}-staging`;
    const ids = { workflow_run_backend_id: service.runBackendId, workflow_job_run_backend_id: service.jobBackendId };

    // The requests, in order: CreateArtifact, the zip in blocks through the proxy, FinalizeArtifact.
    expect(service.twirp.map((c) => [c.method, c.status])).toEqual([
      ['CreateArtifact', 200],
      ['FinalizeArtifact', 200],
    ]);
    const [create] = service.calls('CreateArtifact');
    const { expires_at: expiresAt, ...created } = create!.body;
    expect(created).toEqual({ ...ids, name, version: 7, mime_type: 'application/zip' });
    expect(expiresAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    const expires = Date.parse(expiresAt as string);
    expect(expires).toBeGreaterThanOrEqual(started + 3 * DAY - 1000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 3 * DAY + 1000);
    expect(create!.response.ok).toBe(true);
    expect(create!.response.signed_upload_url).toMatch(/^http:\/\/[a-z]+\.blob\.core\.windows\.net\/.*[?&]sp=cw&/);
    expect(service.blobs.map((b) => b.op)).toEqual([...Array<string>(service.blobs.length - 1).fill('PutBlock'), 'PutBlockList']);
    expect(service.blobs.every((b) => b.proxied && b.status === 201 && b.query.sp === 'cw')).toBe(true);
    expect(service.blobs.at(-1)!.headers['x-ms-blob-content-type']).toBe('application/zip');

    const [artifact] = service.artifacts;
    const zip = artifact!.data!;
    const [finalize] = service.calls('FinalizeArtifact');
    expect(finalize!.body).toEqual({ ...ids, name, size: String(zip.length), hash: `sha256:${sha256(zip)}` });
    expect(finalize!.response).toEqual({ ok: true, artifact_id: String(artifact!.id) });
    expect(artifact).toMatchObject({ name, finalized: true, version: 7, expiresAt: create!.body.expires_at });

    // The zip holds the one backup file, identical to the one left in backup-dir.
    const members = unzip(zip);
    expect(Object.keys(members)).toEqual([path.basename(backup)]);
    expect(Buffer.compare(members[path.basename(backup)]!, fs.readFileSync(backup))).toBe(0);
    // …and it is the database before migrating: catalog at 0001, three products.
    const rows = execFileSync('sqlite3', [
      backup,
      "SELECT count(*) FROM catalog_product; SELECT max(name) FROM django_migrations WHERE app='catalog'",
    ]);
    expect(rows.toString().trim().split('\n')).toEqual(['3', '0001_initial']);

    expect(step.summary).toContain(`<td>Backup artifact</td><td>${name} (id ${artifact!.id}, 3 days)</td>`);
    expect(step.annotations.filter((a) => /artifact/i.test(a.message))).toEqual([]);
    expect(service.violations).toEqual([]);
    noTokenIn(step, service.token);

    // What a later job of the run sees: the artifact listed, its signed URL, the same zip.
    const laterJob = randomUUID();
    const later = service.issueToken(laterJob);
    const laterIds = { workflow_run_backend_id: service.runBackendId, workflow_job_run_backend_id: laterJob };
    const listed = await twirp(service, 'ListArtifacts', { ...laterIds, name_filter: name }, later);
    const entries = listed.artifacts as Record<string, unknown>[];
    expect(entries.map(({ created_at: _, ...rest }) => rest)).toEqual([
      { ...ids, database_id: String(artifact!.id), name, size: String(zip.length), digest: `sha256:${sha256(zip)}` },
    ]);
    expect(Date.parse(entries[0]!.created_at as string)).toBeGreaterThanOrEqual(started);
    const signed = await twirp(service, 'GetSignedArtifactURL', { ...laterIds, name }, later);
    const url = signed.signed_url as string;
    expect(new URL(url).searchParams.get('sp')).toBe('r');
    const downloaded = await new BlockBlobClient(url, undefined, { proxyOptions: service.proxyOptions }).downloadToBuffer();
    expect(Buffer.compare(downloaded, zip)).toBe(0);
    expect(service.violations).toEqual([]);
  });

  it('staging and production jobs of one run (as django-cd.yml has them) upload one artifact each; a second backup in the same job is refused (409) and is a warning, the step carries on', async () => {
    const run = await new ArtifactV2StandIn().start();
    try {
      const staging = job('staging', run.env());
      const first = await staging.run('migrate', { 'fail-on': 'never' });
      expect(first.exitCode, first.log).toBe(0);
      const productionJob = randomUUID();
      const productionToken = run.issueToken(productionJob);
      // The repository keeps artifacts 2 days at most (the runner's GITHUB_RETENTION_DAYS).
      const production = job('production', { ...run.env(productionToken), GITHUB_RETENTION_DAYS: '2' });
      const started = Date.now();
      const prod = await production.run('migrate', { 'fail-on': 'never', 'backup-retention-days': '3' });
      expect(prod.exitCode, prod.log).toBe(0);

      const names = [`slipway-db-backup-${RUN_ID}-${ATTEMPT}-staging`, `slipway-db-backup-${RUN_ID}-${ATTEMPT}-production`];
      expect(run.twirp.map((c) => [c.method, c.status, c.body.name, c.body.workflow_job_run_backend_id])).toEqual([
        ['CreateArtifact', 200, names[0], run.jobBackendId],
        ['FinalizeArtifact', 200, names[0], run.jobBackendId],
        ['CreateArtifact', 200, names[1], productionJob],
        ['FinalizeArtifact', 200, names[1], productionJob],
      ]);
      expect(run.artifacts.map((a) => [a.name, a.finalized])).toEqual([
        [names[0], true],
        [names[1], true],
      ]);
      for (const [i, step] of [first, prod].entries()) {
        const members = unzip(run.artifacts[i]!.data!);
        expect(Buffer.compare(members[path.basename(step.outputs.backup!)]!, fs.readFileSync(step.outputs.backup!))).toBe(0);
      }
      // @actions/artifact caps the retention at GITHUB_RETENTION_DAYS (with its own warning); the summary says 2.
      const expires = Date.parse(run.calls('CreateArtifact')[1]!.body.expires_at as string);
      expect(expires).toBeGreaterThanOrEqual(started + 2 * DAY - 1000);
      expect(expires).toBeLessThanOrEqual(Date.now() + 2 * DAY + 1000);
      expect(prod.summary).toContain(`<td>Backup artifact</td><td>${names[1]} (id ${run.artifacts[1]!.id}, 2 days)</td>`);
      expect(prod.annotations.filter((a) => /artifact|retention/i.test(a.message)).map((a) => a.level)).toEqual(['warning']);
      noTokenIn(first, run.token);
      noTokenIn(prod, productionToken);
      expect(run.violations).toEqual([]);

      // A second migrate step in the staging job with backup: true: nothing pending, a fresh
      // backup, and the run already has this job's artifact. The service refuses it (409, not
      // retried); the step warns in one line naming the local backup and records everything.
      run.reset();
      const again = await staging.run('migrate', { backup: 'true' });
      expect(again.exitCode, again.log).toBe(0);
      expect(again.failure).toBeUndefined();
      expect(again.outputs.applied).toBe('[]');
      const backup = again.outputs.backup!;
      expect(fs.existsSync(backup)).toBe(true);
      expect(run.twirp.map((c) => [c.method, c.status, c.response])).toEqual([
        ['CreateArtifact', 409, { code: 'already_exists', msg: 'an artifact with this name already exists on the workflow run' }],
      ]);
      expect(run.blobs).toEqual([]);
      const warnings = again.annotations.filter((a) => a.level === 'warning');
      expect(warnings.map((a) => a.message)).toEqual([
        `Backup artifact ${names[0]} not uploaded (Failed to CreateArtifact: Received non-retryable error: Failed request: (409) Conflict: an artifact with this name already exists on the workflow run): the backup is only on this runner, at ${backup}.`,
      ]);
      expect(again.summary).toContain('<td>Backup artifact</td><td>not uploaded: Failed to CreateArtifact');
      const state = JSON.parse(fs.readFileSync(staging.env.SLIPWAY_STATE_FILE!, 'utf8')) as { migrate: { backup: string } };
      expect(state.migrate.backup).toBe(backup);
      expect(again.log).not.toMatch(/^\s+at .*\(.*:\d+:\d+\)$/m); // no stack trace
      noTokenIn(again, run.token);
      expect(run.violations).toEqual([]);
    } finally {
      await run.stop();
    }
  });

  it('an unreachable artifact service is a one-line warning: a failed migration still fails with its own message and names the backup', async () => {
    const j = job('deploy', { ...service.env(), ACTIONS_RESULTS_URL: 'http://127.0.0.1:9/' });
    fs.writeFileSync(
      path.join(j.workspace, 'catalog', 'migrations', '0005_boom.py'),
      'from django.db import migrations\n\n\ndef boom(apps, schema_editor):\n    raise RuntimeError("boom in 0005")\n\n\nclass Migration(migrations.Migration):\n    dependencies = [("catalog", "0004_product_slug_unique")]\n    operations = [migrations.RunPython(boom, migrations.RunPython.noop)]\n',
    );
    const step = await j.run('migrate', { 'fail-on': 'never' });
    expect(step.exitCode).toBe(1);
    const backup = step.outputs.backup!;
    expect(fs.existsSync(backup)).toBe(true);
    expect(step.failure).toMatch(
      /^migrate failed: Migration catalog\.0005_boom failed \(RuntimeError: boom in 0005\)\..* Backup from just before: /,
    );
    expect(step.failure).toContain(backup);
    expect(step.annotations.filter((a) => /artifact/i.test(a.message)).map((a) => [a.level, a.message])).toEqual([
      [
        'warning',
        `Backup artifact slipway-db-backup-${RUN_ID}-${ATTEMPT}-deploy not uploaded (Failed to CreateArtifact: Unable to make request: ECONNREFUSED): the backup is only on this runner, at ${backup}.`,
      ],
    ]);
    expect(step.summary).toContain(
      '<td>Backup artifact</td><td>not uploaded: Failed to CreateArtifact: Unable to make request: ECONNREFUSED</td>',
    );
    expect(JSON.parse(step.outputs.applied!)).toContain('catalog.0004_product_slug_unique');
    noTokenIn(step, service.token);
  });

  // @actions/artifact retries a 5xx five times with a growing back-off (3 s, then x1.5 with
  // jitter: about 30 s in all, not configurable), so this case runs on demand (SLIPWAY_TEST_FULL=1).
  // The refused (409) and unreachable cases above run every time.
  it.runIf(process.env.SLIPWAY_TEST_FULL === '1')(
    'an artifact service answering 503 is a warning after the client retries, and the step carries on',
    async () => {
      const failing = await new ArtifactV2StandIn({ twirpStatus: 503 }).start();
      try {
        const j = job('staging', failing.env());
        const step = await j.run('migrate', { 'fail-on': 'never' });
        expect(step.exitCode, step.log).toBe(0);
        expect(failing.twirp.map((c) => [c.method, c.status])).toEqual(Array<[string, number]>(5).fill(['CreateArtifact', 503]));
        expect(step.annotations.filter((a) => /artifact/i.test(a.message)).map((a) => a.message)).toEqual([
          expect.stringMatching(
            /^Backup artifact slipway-db-backup-\S+ not uploaded \(Failed to CreateArtifact: Failed to make request after 5 attempts: Failed request: \(503\).*\): the backup is only on this runner, at \S+\.$/,
          ),
        ]);
        expect(JSON.parse(step.outputs.applied!)).toContain('catalog.0004_product_slug_unique');
        noTokenIn(step, failing.token);
      } finally {
        await failing.stop();
      }
    },
  );
});
