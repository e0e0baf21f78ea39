/**
 * The venv cache through the cache service v2, the protocol GitHub's hosted runners use
 * (ACTIONS_CACHE_SERVICE_V2 + ACTIONS_RESULTS_URL: Twirp JSON calls, then the archive to and
 * from Azure Blob Storage at the signed URL). The service cannot run here, so
 * test/stand-ins/cache-v2.ts follows the published definitions and records what @actions/cache
 * inside the bundle sends; these tests assert those requests as well as the outcome.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BlockBlobClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyProject, Job } from '../harness/job';
import { TEST_CACHE } from '../harness/python-env';
import { CacheV2StandIn, SERVICE } from '../stand-ins/cache-v2';

const TOOL_CACHE = path.join(TEST_CACHE, 'setup-django-toolcache');

const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});
function project(source: string): string {
  const dir = copyProject(source);
  scratch.push(dir);
  return dir;
}

let service: CacheV2StandIn;
beforeAll(async () => {
  service = await new CacheV2StandIn().start();
});
afterAll(async () => {
  await service?.stop();
});

function newJob(workspace: string, env: Record<string, string> = {}): Job {
  fs.mkdirSync(TOOL_CACHE, { recursive: true });
  const job = new Job({ workspace, toolCache: TOOL_CACHE, env: { UV_PYTHON_DOWNLOADS: 'never', ...service.env(), ...env } });
  scratch.push(path.dirname(job.home));
  return job;
}

/** The version @actions/cache sends: sha256 of the paths as given, the compression, its salt. */
function cacheVersion(paths: string[]): string {
  let zstd = true;
  try {
    execFileSync('zstd', ['--quiet', '--version'], { stdio: 'ignore' });
  } catch {
    zstd = false;
  }
  return createHash('sha256')
    .update([...paths, zstd ? 'zstd-without-long' : 'gzip', '1.0'].join('|'))
    .digest('hex');
}

function run(python: string, code: string, cwd: string): string {
  return execFileSync(python, ['-c', code], { cwd }).toString().trim();
}

describe('the cache v2 stand-in', () => {
  it('takes a block upload and a ranged download the way the Azure SDK sends them', async () => {
    // @actions/cache switches from one Put Blob to Put Block + Put Block List above 128 MiB;
    // the same SDK call with a smaller threshold exercises that path here.
    const s = await new CacheV2StandIn().start();
    try {
      const version = 'a'.repeat(64);
      const call = async (method: string, body: unknown): Promise<Record<string, string>> => {
        const res = await fetch(`${s.resultsUrl}twirp/${SERVICE}/${method}`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${s.token}` },
          body: JSON.stringify(body),
        });
        return (await res.json()) as Record<string, string>;
      };
      const created = await call('CreateCacheEntry', { key: 'blocks', version });
      expect(created.ok).toBe(true);
      const proxyOptions = { host: 'http://127.0.0.1', port: Number(new URL(s.resultsUrl).port) };
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-blocks-')), 'archive');
      scratch.push(path.dirname(file));
      const data = Buffer.alloc(2.5 * 1024 * 1024 + 17, 7).map((_, i) => (i * 31) % 251);
      fs.writeFileSync(file, data);
      await new BlockBlobClient(created.signed_upload_url!, undefined, { proxyOptions }).uploadFile(file, {
        blockSize: 1024 * 1024,
        concurrency: 2,
        maxSingleShotSize: 1024 * 1024,
      });
      const puts = s.blobs.filter((b) => b.op === 'PutBlock');
      expect(puts).toHaveLength(3);
      const list = s.blobs.find((b) => b.op === 'PutBlockList')!;
      expect(list.blockIds).toEqual(
        [...puts]
          .sort((a, b) =>
            Buffer.from(a.blockIds![0]!, 'base64').toString().localeCompare(Buffer.from(b.blockIds![0]!, 'base64').toString()),
          )
          .map((p) => p.blockIds![0]),
      );
      expect(await call('FinalizeCacheEntryUpload', { key: 'blocks', version, size_bytes: String(data.length) })).toMatchObject({
        ok: true,
      });
      const found = await call('GetCacheEntryDownloadURL', { key: 'blo', restore_keys: ['blo'], version });
      expect(found).toMatchObject({ ok: true, matched_key: 'blocks' });
      const back = await new BlockBlobClient(found.signed_download_url!, undefined, { proxyOptions }).downloadToBuffer(0, data.length, {
        blockSize: 1024 * 1024,
      });
      expect(Buffer.compare(back, data)).toBe(0);
      expect(s.blobs.filter((b) => b.op === 'GetBlob').map((b) => b.range)).toContain('bytes=0-1048575');
      expect(s.violations).toEqual([]);

      // What it refuses: a write with the read URL, a finalize with the wrong size, a bad token.
      await expect(new BlockBlobClient(found.signed_download_url!, undefined, { proxyOptions }).upload('x', 1)).rejects.toMatchObject({
        statusCode: 403,
        code: 'AuthorizationPermissionMismatch',
      });
      expect(await call('CreateCacheEntry', { key: 'blocks', version })).toMatchObject({ code: 'already_exists' });
      await call('CreateCacheEntry', { key: 'short', version });
      expect(await call('FinalizeCacheEntryUpload', { key: 'short', version, size_bytes: '5' })).toMatchObject({
        code: 'failed_precondition',
      });
      const denied = await fetch(`${s.resultsUrl}twirp/${SERVICE}/GetCacheEntryDownloadURL`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer wrong' },
        body: JSON.stringify({ key: 'blocks', version }),
      });
      expect(denied.status).toBe(401);
      expect(s.violations).toHaveLength(3);
    } finally {
      await s.stop();
    }
  });
});

describe('setup-django venv cache through the cache service v2', () => {
  const marker = `# cache v2 test ${Date.now()}\n`;
  const version = cacheVersion(['.venv']);

  it('cold run saves through v2; a fresh workspace gets an exact hit; a changed lockfile restores by prefix and installs the difference', async () => {
    service.reset();
    const first = project('example');
    fs.appendFileSync(path.join(first, 'requirements.txt'), marker);
    const job1 = newJob(first);
    const miss = await job1.run('setup-django');
    expect(miss.failure).toBeUndefined();
    expect(miss.outputs['cache-hit']).toBe('false');
    const key = miss.outputs['cache-key']!;
    const prefix = key.replace(/[0-9a-f]{32}$/, '');
    expect(prefix).not.toBe(key);
    // The lookup: primary key, the restore prefix, the version of `.venv` (relative, so any
    // checkout path gives the same one); nothing matched.
    expect(service.calls('GetCacheEntryDownloadURL')).toEqual([
      { method: 'GetCacheEntryDownloadURL', body: { key, restore_keys: [prefix], version }, status: 200, response: { ok: false } },
    ]);
    expect(miss.log).toContain('Installing dependencies');

    const [save] = await job1.post();
    expect(save!.exitCode).toBe(0);
    expect(save!.log).toContain(`Saved the virtualenv as ${key}`);
    expect(service.calls('CreateCacheEntry').map((c) => [c.body, c.status])).toEqual([[{ key, version }, 200]]);
    const uploads = service.blobs.filter((b) => b.op === 'PutBlob');
    expect(uploads).toHaveLength(1);
    const upload = uploads[0]!;
    expect(upload).toMatchObject({ proxied: true, status: 201 });
    expect(upload.headers['x-ms-blob-type']).toBe('BlockBlob');
    expect(upload.query.sp).toBe('cw');
    expect(Number(upload.headers['content-length'])).toBe(upload.bodyBytes);
    expect(upload.bodyBytes).toBeGreaterThan(1024 * 1024); // a venv with Django in it
    const [finalize] = service.calls('FinalizeCacheEntryUpload');
    expect(finalize!.body).toEqual({ key, version, size_bytes: String(upload.bodyBytes) });
    expect(finalize!.response).toMatchObject({ ok: true });
    expect(service.violations).toEqual([]);

    // Another checkout path, same files: the exact entry is downloaded through the Azure SDK.
    service.reset();
    const second = project('example');
    fs.appendFileSync(path.join(second, 'requirements.txt'), marker);
    const job2 = newJob(second);
    const hit = await job2.run('setup-django');
    expect(hit.failure).toBeUndefined();
    expect(hit.outputs).toMatchObject({ 'cache-hit': 'true', 'cache-key': key, 'venv-path': path.join(second, '.venv') });
    expect(service.calls('GetCacheEntryDownloadURL').map((c) => [c.body, c.response.matched_key])).toEqual([
      [{ key, restore_keys: [prefix], version }, key],
    ]);
    const reads = service.blobs.filter((b) => b.op === 'GetBlob');
    expect(service.blobs.filter((b) => b.op === 'GetBlobProperties')).toHaveLength(1);
    expect(reads.length).toBeGreaterThan(0);
    expect(reads.every((r) => r.proxied && r.query.sp === 'r' && /^bytes=\d+-\d+$/.test(r.range ?? ''))).toBe(true);
    expect(hit.log).not.toContain('::group::Installing dependencies');
    expect(hit.log).not.toMatch(/\[command\].*(uv|pip) /);
    expect(hit.summary).toContain('exact hit');
    expect(run(hit.outputs['python-path']!, 'import sys, django; print(sys.prefix)', second)).toBe(path.join(second, '.venv'));
    const [skip] = await job2.post();
    expect(skip!.log).toContain(`Cache hit on ${key}: nothing to save.`);
    expect(service.calls('CreateCacheEntry')).toEqual([]);
    expect(service.violations).toEqual([]);

    // A dependency added: restored from the first entry by the restore prefix, one package added,
    // and the new environment saved under its own key.
    service.reset();
    const third = project('example');
    fs.appendFileSync(path.join(third, 'requirements.txt'), `${marker}tblib==3.2.2\n`);
    const job3 = newJob(third);
    const partial = await job3.run('setup-django');
    expect(partial.failure).toBeUndefined();
    const key3 = partial.outputs['cache-key']!;
    expect(partial.outputs['cache-hit']).toBe('false');
    expect(key3).not.toBe(key);
    expect(key3.startsWith(prefix)).toBe(true);
    expect(service.calls('GetCacheEntryDownloadURL').map((c) => [c.body, c.response.matched_key])).toEqual([
      [{ key: key3, restore_keys: [prefix], version }, key],
    ]);
    expect(partial.log).toContain(`Restored from ${key}`);
    expect(partial.log).toMatch(/Installed 1 package/);
    expect(partial.summary).toContain('partial');
    expect(run(partial.outputs['python-path']!, 'import tblib, django; print("ok")', third)).toBe('ok');
    const [save3] = await job3.post();
    expect(save3!.exitCode).toBe(0);
    expect(service.calls('CreateCacheEntry').map((c) => c.body)).toEqual([{ key: key3, version }]);
    expect(service.calls('FinalizeCacheEntryUpload').map((c) => c.response.ok)).toEqual([true]);
    expect(service.violations).toEqual([]);
  });

  it('an unreachable cache service is a warning and the step carries on', async () => {
    const ws = project('example');
    fs.appendFileSync(path.join(ws, 'requirements.txt'), `# down ${Date.now()}\n`);
    const job = newJob(ws, { ACTIONS_RESULTS_URL: 'http://127.0.0.1:9/' });
    const step = await job.run('setup-django');
    expect(step.exitCode).toBe(0);
    expect(step.failure).toBeUndefined();
    expect(step.annotations.filter((a) => a.level === 'warning').map((a) => a.message)).toEqual([
      expect.stringMatching(/Failed to restore: .*GetCacheEntryDownloadURL.*ECONNREFUSED/),
    ]);
    expect(step.outputs['cache-hit']).toBe('false');
    expect(fs.existsSync(path.join(ws, '.venv', 'bin', 'python'))).toBe(true);
    const [post] = await job.post();
    expect(post!.exitCode).toBe(0);
    // @actions/cache reports a failed reservation as a line of log (the same as a 409 from a
    // concurrent job saving the same key, which must not warn), and the post step says so.
    expect(post!.annotations).toEqual([]);
    expect(post!.log).toMatch(/Failed to save: Unable to reserve cache with key/);
    expect(post!.log).toContain('The virtualenv was not saved');
  });

  // @actions/cache retries each call 5 times with a fixed back-off (about 30 s for the restore and
  // as much for the save, not configurable): ~70 s, so this case runs on demand (SLIPWAY_TEST_FULL=1)
  // to keep .ci/run inside its budget. The refused-connection case above runs every time.
  it.runIf(process.env.SLIPWAY_TEST_FULL === '1')(
    'a cache service answering 503 is a warning after the client retries, and the step carries on',
    async () => {
      const failing = await new CacheV2StandIn({ twirpStatus: 503 }).start();
      try {
        const ws = project('example');
        fs.appendFileSync(path.join(ws, 'requirements.txt'), `# 503 ${Date.now()}\n`);
        const job = newJob(ws, failing.env());
        const step = await job.run('setup-django');
        expect(step.exitCode).toBe(0);
        expect(step.failure).toBeUndefined();
        expect(step.annotations.map((a) => [a.level, a.message])).toEqual([
          ['warning', expect.stringMatching(/^Failed to restore: .*GetCacheEntryDownloadURL.*after 5 attempts.*\(503\)/)],
        ]);
        expect(step.outputs['cache-hit']).toBe('false');
        const [post] = await job.post();
        expect(post!.exitCode).toBe(0);
        expect(post!.annotations).toEqual([]);
        expect(post!.log).toContain('The virtualenv was not saved');
        // @actions/cache tries each call five times (3 s, then x1.5 backoff) before giving up.
        expect(failing.twirp.map((c) => [c.method, c.status])).toEqual([
          ...Array<[string, number]>(5).fill(['GetCacheEntryDownloadURL', 503]),
          ...Array<[string, number]>(5).fill(['CreateCacheEntry', 503]),
        ]);
        expect(failing.twirp.every((c) => c.body.version === version)).toBe(true);
      } finally {
        await failing.stop();
      }
    },
  );
});
