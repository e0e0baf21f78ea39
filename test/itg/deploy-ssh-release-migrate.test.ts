/**
 * `migrate: true` with `ssh-runtime: release-dir`: the migrate action's logic (one helper
 * session: plan, migration lock, apply, state after) runs in the new release on the target, over
 * the deploy's SSH connection, with the release's venv and env file; the release record holds
 * the migration state before and after as the database really is; a failed migration leaves
 * the old release serving (wrk, zero failed requests); rollback `database: migrate-back` runs
 * on the target in the release being left (the only one with the newer migration's file).
 * The private sshd "VPS" (test/security/vps.ts), the real HAProxy, gunicorn, a SQLite database.
 * Own app name, remote dir and ports (19400-19499).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureServices } from '../harness/services';
import { Job, REPO_ROOT, type StepResult } from '../harness/job';
import { ArgvSampler } from '../security/argv-sampler';
import { canaryKeyPair } from '../security/canary';
import { startVps, type Vps } from '../security/vps';
import { startLoad, type LoadResult } from './deploy-support';

const APP = 'shoprdmig';
const APP_PORT = 19400;
const PROXY_PORT = 19480;
const FRONT = `http://127.0.0.1:${PROXY_PORT}/healthz`;
const SECRET = 'rdmig-secret-Xk2-never-on-argv-0123456789abcdef';

let vps: Vps;
let key: ReturnType<typeof canaryKeyPair>;
let remoteDir: string;
let appDir: string;
let workspace: string;
let database: string;
const loads: LoadResult[] = [];
const sampler = new ArgvSampler();

interface Migrations {
  before: Record<string, string | null> | null;
  after: Record<string, string | null> | null;
  applied: string[];
}

function git(args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', ...args], { cwd: workspace })
    .toString()
    .trim();
}

function commitFile(message: string, file: string, text: string | undefined): void {
  const target = path.join(workspace, 'example', file);
  if (text === undefined) fs.rmSync(target);
  else fs.writeFileSync(target, text);
  git(['add', '-A']);
  git(['commit', '-q', '-m', message]);
}

const NOTE_MIGRATION = `from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0004_product_slug_unique")]
    operations = [migrations.AddField("product", "note", models.CharField(max_length=40, null=True, blank=True))]
`;

const BOOM_MIGRATION = `from django.db import migrations


def boom(apps, schema_editor):
    raise RuntimeError("boom-on-purpose")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0005_product_note")]
    operations = [migrations.RunPython(boom, migrations.RunPython.noop)]
`;

function ssh(): Record<string, string> {
  return {
    provider: 'ssh',
    'ssh-runtime': 'release-dir',
    environment: 'rdmig',
    hosts: `root@127.0.0.1:${vps.port}`,
    'ssh-private-key': key.value,
    'ssh-known-hosts': vps.knownHosts,
    'app-name': APP,
    'app-port': String(APP_PORT),
    'proxy-port': String(PROXY_PORT),
    'proxy-address': '127.0.0.1',
    'remote-dir': remoteDir,
    'health-timeout': '30s',
    'drain-timeout': '3s',
    'release-store': 'releases',
    'github-token': '',
  };
}

async function deploy(over: Record<string, string> = {}, load = true): Promise<StepResult> {
  const wrk = load ? startLoad(FRONT, 90) : undefined;
  const job = new Job({ workspace, env: { GITHUB_SHA: git(['rev-parse', 'HEAD']) } });
  try {
    return await job.run('deploy', {
      ...ssh(),
      'working-directory': 'example',
      env: `DJANGO_SECRET_KEY=${SECRET}\nDJANGO_SECURE_SSL_REDIRECT=false\nDJANGO_LOG_LEVEL=WARNING\nDATABASE_URL=sqlite:///${database}`,
      'keep-releases': '3',
      migrate: 'true',
      ...over,
    });
  } finally {
    if (wrk) {
      const l = await wrk.stop();
      loads.push(l);
      expect(l.requests, l.raw).toBeGreaterThan(100);
      expect({ non2xx: l.non2xx, socketErrors: l.socketErrors }, l.raw).toEqual({ non2xx: 0, socketErrors: 0 });
    }
  }
}

function sqlite(sql: string): string[][] {
  const out = execFileSync('python3', [
    '-c',
    'import json, sqlite3, sys; print(json.dumps([list(map(str, r)) for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2])]))',
    database,
    sql,
  ]);
  return JSON.parse(out.toString()) as string[][];
}

/** The database's migration state, as the record keeps it: per app the newest applied migration. */
function dbState(apps: string[]): Record<string, string | null> {
  const rows = new Map(sqlite('SELECT app, MAX(name) FROM django_migrations GROUP BY app').map(([a, n]) => [a!, n!]));
  return Object.fromEntries(apps.map((a) => [a, rows.get(a) ?? null]));
}

const record = (id: string): { outcome: string; migrations: Migrations | null } =>
  JSON.parse(fs.readFileSync(path.join(workspace, 'releases', 'rdmig', `${id}.json`), 'utf8')) as {
    outcome: string;
    migrations: Migrations | null;
  };
const serving = (): string => (JSON.parse(fs.readFileSync(path.join(appDir, 'current.json'), 'utf8')) as { releaseId: string }).releaseId;
const noteColumn = (): boolean => sqlite("SELECT name FROM pragma_table_info('catalog_product')").some(([c]) => c === 'note');

/** Helper Pythons (migrate's, rollback's plan) still running from a release dir of this app: none once a step ends. */
function remotePythons(): string[] {
  const found: string[] = [];
  for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmdline = fs.readFileSync(`/proc/${p}/cmdline`, 'latin1');
      if (cmdline.includes(`${appDir}/releases/`) && cmdline.includes('SLIPWAY_JSON')) found.push(`${p}: ${cmdline.slice(0, 120)}`);
    } catch {
      // gone
    }
  }
  return found;
}

/** Holds the SQLite migration lock (an flock on <db>.slipway-lock, as the helper takes it) until stdin closes. */
function holdLock(): { child: ChildProcess; held: Promise<void>; release: () => Promise<number> } {
  const child = spawn(
    'python3',
    [
      '-c',
      'import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\nfcntl.flock(fd, fcntl.LOCK_EX)\nprint("held", flush=True)\nsys.stdin.read()\nprint(time.time(), flush=True)',
      `${database}.slipway-lock`,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let out = '';
  const held = new Promise<void>((resolve) =>
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.startsWith('held')) resolve();
    }),
  );
  const release = async (): Promise<number> => {
    const done = new Promise<void>((r) => child.on('close', () => r()));
    child.stdin.end();
    await done;
    return Number(out.trim().split('\n').pop()) * 1000;
  };
  return { child, held, release };
}

beforeAll(async () => {
  const needed = fs.existsSync('/usr/sbin/sshd') ? [] : (['sshd'] as const);
  ensureServices(['haproxy', 'load', ...needed]);
  key = canaryKeyPair('rdmig key');
  vps = await startVps([key.publicKey]);
  remoteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-rdmig-host-'));
  appDir = path.join(remoteDir, APP);
  database = path.join(remoteDir, 'shop.sqlite3');
  workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-rdmig-ws-'));
  fs.cpSync(path.join(REPO_ROOT, 'example'), path.join(workspace, 'example'), {
    recursive: true,
    filter: (src) => !/(__pycache__|db\.sqlite3|staticfiles|\.venv)/.test(src),
  });
  git(['init', '-q', '-b', 'main']);
  git(['add', '-A']);
  git(['commit', '-q', '-m', 'shop v1']);
  // Every 50 ms: a Python start-up alone takes longer, so no remote command here lives unseen.
  sampler.start(50);
}, 300_000);

afterAll(() => {
  sampler.stop();
  // Everything started from this app's dir: HAProxy, gunicorn masters and their workers.
  for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (appDir && fs.readFileSync(`/proc/${p}/cmdline`, 'latin1').includes(appDir)) process.kill(Number(p), 'SIGKILL');
    } catch {
      // gone
    }
  }
  vps?.stop();
  if (key) fs.rmSync(key.dir, { recursive: true, force: true });
  if (remoteDir) fs.rmSync(remoteDir, { recursive: true, force: true });
  if (workspace) fs.rmSync(workspace, { recursive: true, force: true });
  const total = loads.reduce((a, l) => a + l.requests, 0);
  const failed = loads.reduce((a, l) => a + l.non2xx + l.socketErrors, 0);
  console.log(`release-dir migrate load: ${failed} failed of ${total} requests over ${loads.length} steps under load`);
});

let first: string;
let second: string;

describe('migrate: true with ssh-runtime: release-dir (the migrate logic on the target)', () => {
  it('first deploy: every migration applied in the release on the target; the record says so, as the database is', async () => {
    const result = await deploy({ 'setup-host': 'true' }, false);
    expect(result.failure, result.log).toBeUndefined();
    first = result.outputs['release-id']!;
    const m = record(first).migrations!;
    expect(m, 'the release record carries the migrations').not.toBeNull();
    expect(
      Object.values(m.before!).every((v) => v === null),
      JSON.stringify(m.before),
    ).toBe(true);
    expect(m.after).toEqual(dbState(Object.keys(m.after!)));
    expect(m.after).toMatchObject({ catalog: '0004_product_slug_unique', orders: '0002_order_order_status_created_idx_and_more' });
    expect(m.applied).toEqual(expect.arrayContaining(['catalog.0004_product_slug_unique', 'orders.0001_initial', 'auth.0001_initial']));
    expect(m.applied.length).toBe(Number(sqlite('SELECT COUNT(*) FROM django_migrations')[0]![0]));
    expect(result.log).toMatch(/Taking the migration lock/);
    expect(result.log).toMatch(/migrations applied with release \S+: .*catalog\.0004_product_slug_unique/);
    // The helpers' pid files are gone; the secret went through the env file only.
    expect(fs.readdirSync(path.join(appDir, 'releases', first)).filter((f) => f.startsWith('.slipway-python'))).toEqual([]);
    expect(remotePythons(), 'the session ended with the step: its remote Python (and its lock) is gone').toEqual([]);
  });

  it('a new migration under load waits for the migration lock, then is applied before traffic moves; before/after/applied recorded', async () => {
    commitFile('v2: product note', 'catalog/migrations/0005_product_note.py', NOTE_MIGRATION);
    const lock = holdLock();
    await lock.held;
    const deploying = deploy();
    // Held until the new release's helper is running (its pid file is there), and 3 s more.
    const started = Date.now();
    for (;;) {
      const dirs = fs.existsSync(path.join(appDir, 'releases')) ? fs.readdirSync(path.join(appDir, 'releases')) : [];
      const helper = dirs.some(
        (d) =>
          d !== first &&
          fs.existsSync(path.join(appDir, 'releases', d)) &&
          fs.readdirSync(path.join(appDir, 'releases', d)).some((f) => f.startsWith('.slipway-python')),
      );
      if (helper || Date.now() - started > 60_000) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 3000));
    expect(noteColumn(), 'nothing applied while another holds the lock').toBe(false);
    expect(remotePythons().length, 'the helper waits for the lock, in the new release on the target').toBeGreaterThan(0);
    const releasedAt = await lock.release();
    const result = await deploying;
    expect(result.failure, result.log).toBeUndefined();
    second = result.outputs['release-id']!;
    expect(serving()).toBe(second);
    const applied = sqlite("SELECT applied FROM django_migrations WHERE app = 'catalog' AND name = '0005_product_note'")[0]![0]!;
    expect(new Date(`${applied.replace(' ', 'T').replace(/\+00:00$/, '')}Z`).getTime()).toBeGreaterThanOrEqual(releasedAt - 5);
    expect(noteColumn()).toBe(true);
    const m = record(second).migrations!;
    expect(m.before).toEqual(record(first).migrations!.after);
    expect(m.applied).toEqual(['catalog.0005_product_note']);
    expect(m.after).toEqual({ ...m.before, catalog: '0005_product_note' });
    expect(m.after).toEqual(dbState(Object.keys(m.after!)));
    expect(result.log).toMatch(/migrations applied with release \S+: catalog\.0005_product_note/);
    expect(remotePythons()).toEqual([]);
  });

  it('a failing migration: one line naming it, the old release keeps serving (zero failed requests), nothing applied', async () => {
    commitFile('v3: boom', 'catalog/migrations/0006_boom.py', BOOM_MIGRATION);
    const before = sqlite('SELECT COUNT(*) FROM django_migrations')[0]![0];
    const result = await deploy();
    expect(result.exitCode).not.toBe(0);
    expect(result.failure).toMatch(
      /^deploy failed: Migration catalog\.0006_boom failed on root@127\.0\.0\.1:\d+ \(RuntimeError: boom-on-purpose\); applied before it: none\. Traffic was not moved\.$/,
    );
    expect(serving()).toBe(second);
    expect(sqlite('SELECT COUNT(*) FROM django_migrations')[0]![0]).toBe(before);
    expect(fs.readdirSync(path.join(appDir, 'releases')).sort(), 'the failed release dir removed').toEqual([first, second].sort());
    expect(fs.existsSync(path.join(appDir, 'lock'))).toBe(false);
  });

  it('rollback `database: migrate-back` runs on the target, in the release being left (it has 0005), under load', async () => {
    const load = startLoad(FRONT, 60);
    const job = new Job({ workspace: fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-rdmig-rb-')) });
    fs.cpSync(path.join(workspace, 'releases'), path.join(job.workspace, 'releases'), { recursive: true });
    let r: StepResult;
    try {
      // No `env`: the release dir brings its own env file; the runner has no image to run.
      r = await job.run('rollback', { ...ssh(), database: 'migrate-back' });
    } finally {
      const l = await load.stop();
      loads.push(l);
      expect({ non2xx: l.non2xx, socketErrors: l.socketErrors }, l.raw).toEqual({ non2xx: 0, socketErrors: 0 });
      fs.cpSync(path.join(job.workspace, 'releases'), path.join(workspace, 'releases'), { recursive: true });
      fs.rmSync(job.workspace, { recursive: true, force: true });
    }
    expect(r.failure, r.log).toBeUndefined();
    expect(serving()).toBe(first);
    expect(r.log).toMatch(/unapply catalog: 0005_product_note/);
    expect(noteColumn(), 'the column 0005 added is gone').toBe(false);
    const wanted = record(first).migrations!.after!;
    expect(dbState(Object.keys(wanted))).toEqual(wanted);
    const rollbackRecord = record(r.outputs['release-id']!);
    expect(rollbackRecord.migrations).toMatchObject({ before: record(second).migrations!.after, after: wanted });
    expect(fs.readdirSync(path.join(appDir, 'releases', second)).filter((f) => f.startsWith('.slipway-python'))).toEqual([]);
    expect(remotePythons()).toEqual([]);
  });

  it('the secret was never on any command line on this machine (the helper, its lock, the way back: env file only)', () => {
    sampler.sample();
    expect(sampler.samples).toBeGreaterThan(100);
    expect([...sampler.seen].filter((l) => l.includes(SECRET.slice(0, 20)))).toEqual([]);
    // ... while the helper did run through the sampled sshd, as the release's venv Python.
    expect(
      [...sampler.seen].some((l) => l.includes(`${appDir}/releases/`) && l.includes('.venv/bin/python') && l.includes('SLIPWAY_JSON')),
    ).toBe(true);
  });
});
