/**
 * rollback's `revert: commit|pull-request`, through the bundle: releases deployed by the real
 * deploy action to Cloud Run (its Google stand-in; the cheapest provider to run), the workspace a
 * shallow clone whose origin is a real git remote over smart HTTP that only takes the token as
 * GitHub does, and pull requests opened against the GitHub API stand-in (checked against
 * @octokit/openapi). The reverts are read back from the remote with git.
 */
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Job, type StepResult } from '../harness/job';
import { CloudRunStub } from '../stubs/cloud-run-api';
import { GitHubApiStub } from '../stubs/github-api';
import { GitHttpRemote, sh } from './rollback-support';

const SA = 'deployer@acme-shop.iam.gserviceaccount.com';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const TOKEN = 'ghs_revertItgToken0123456789abcdefABCDEF';
const BASIC = Buffer.from(`x-access-token:${TOKEN}`).toString('base64');
const IMAGE = (c: string) => `europe-docker.pkg.dev/acme-shop/shop/web@sha256:${c.repeat(64)}`;
const BOT = { name: 'github-actions[bot]', email: '41898282+github-actions[bot]@users.noreply.github.com' };

let tmp: string;
let bare: string;
let dev: string;
let workspace: string;
let run: CloudRunStub;
let github: GitHubApiStub;
let remote: GitHttpRemote;
let job: Job;

const ok = (r: StepResult) => expect(r.exitCode, r.failure ?? r.log.slice(-3000)).toBe(0);
const git = (cwd: string, ...args: string[]) => sh('git', ['-C', cwd, ...args], { GIT_CONFIG_GLOBAL: '/dev/null' });

/** A commit in the developer's clone, pushed to the remote's main; returns its sha. */
function commit(file: string, content: string, subject: string): string {
  if (git(bare, 'branch', '--list', 'main')) {
    git(dev, 'fetch', '-q', 'origin');
    git(dev, 'reset', '-q', '--hard', 'origin/main');
  }
  fs.writeFileSync(path.join(dev, file), content);
  git(dev, 'add', file);
  git(dev, '-c', 'user.name=Dev', '-c', 'user.email=dev@example.com', 'commit', '-q', '-m', subject);
  git(dev, 'push', '-q', 'origin', 'HEAD:main');
  return git(dev, 'rev-parse', 'HEAD');
}

const inputs = (environment: string, extra: Record<string, string> = {}): Record<string, string> => ({
  provider: 'cloud-run',
  environment,
  'app-name': 'shop',
  'gcp-project': 'acme-shop',
  'gcp-region': 'europe-west1',
  'cloud-run-service': 'shop',
  'health-timeout': '20s',
  'release-store': 'releases',
  'github-token': TOKEN,
  ...extra,
});

const deploy = async (environment: string, image: string, sha: string): Promise<string> => {
  const r = await job.run(
    'deploy',
    { ...inputs(environment), image, env: 'DJANGO_SECRET_KEY=revert-itg-secret' },
    { env: { GITHUB_SHA: sha } },
  );
  ok(r);
  return r.outputs['release-id']!;
};

/** `git log` of the remote's main (or another branch): subject, author, committer, newest first. */
const remoteLog = (ref: string, n: number) =>
  git(bare, 'log', '-n', String(n), '--format=%s|%an <%ae>|%cn <%ce>', ref)
    .split('\n')
    .map((l) => l.split('|'));

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'slipway-rollback-revert-'));
  bare = path.join(tmp, 'remote', 'shop.git');
  git(tmp, 'init', '-q', '--bare', '--initial-branch=main', bare);
  dev = path.join(tmp, 'dev');
  git(tmp, 'clone', '-q', bare, dev);
  remote = new GitHttpRemote(path.join(tmp, 'remote'), TOKEN);
  await remote.start();
  github = new GitHubApiStub(TOKEN, 'acme/shop');
  await github.start();
  run = new CloudRunStub({
    project: 'acme-shop',
    region: 'europe-west1',
    service: 'shop',
    initialRevision: 'shop-00001-abc',
    initialImage: IMAGE('0'),
    serviceAccountPublicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    serviceAccountEmail: SA,
    operationPolls: 1,
  });
  const runUrl = await run.start();
  const key = path.join(tmp, 'gha-creds.json');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  fs.writeFileSync(
    key,
    JSON.stringify({ type: 'service_account', project_id: 'acme-shop', private_key: pem, client_email: SA, token_uri: `${runUrl}/token` }),
    { mode: 0o600 },
  );
  job = new Job({
    workspace: path.join(tmp, 'ws'), // cloned below, once main has its first commit
    env: { GOOGLE_APPLICATION_CREDENTIALS: key, CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN: runUrl, GITHUB_API_URL: github.url },
  });
  workspace = job.workspace;
});

afterAll(async () => {
  await run?.stop();
  await github?.stop();
  await remote?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('rollback with revert', () => {
  let c1: string;
  let c3: string;
  let a: string;
  let b: string;

  it('revert: commit reverts the rolled-back commits on main over the authenticated https origin', async () => {
    c1 = commit('app.txt', 'line one\n', 'shop: first release');
    // actions/checkout's way: a depth-1 clone of the ref, origin over https, no credentials kept.
    git(tmp, 'clone', '-q', '--depth', '1', `file://${bare}`, workspace);
    git(workspace, 'remote', 'set-url', 'origin', `${remote.url}/shop.git`);
    // What actions/checkout persists (persist-credentials): a header with its own token, here stale.
    const stale = Buffer.from('x-access-token:ghs_expiredCheckoutToken').toString('base64');
    git(workspace, 'config', `http.${remote.url}/.extraheader`, `AUTHORIZATION: basic ${stale}`);
    commit('barcode.txt', 'barcodes\n', 'feature: barcode');
    c3 = commit('app.txt', 'line one\nline two\n', 'fix: second line');
    a = await deploy('production', IMAGE('a'), c1);
    b = await deploy('production', IMAGE('b'), c3);
    const revisionA = (
      JSON.parse(fs.readFileSync(path.join(workspace, 'releases', 'production', `${a}.json`), 'utf8')) as {
        providerReleaseId: string;
      }
    ).providerReleaseId;

    const result = await job.run('rollback', inputs('production', { revert: 'commit' }));
    ok(result);
    expect(run.servingRevision()).toBe(revisionA);
    expect(result.outputs['target-release-id']).toBe(a);
    // Two revert commits on top of c3, newest commit reverted first, by the default identity.
    const head = git(bare, 'rev-parse', 'main');
    expect(result.outputs['revert-sha']).toBe(head);
    expect(git(bare, 'rev-parse', 'main~2')).toBe(c3);
    expect(remoteLog('main', 2)).toEqual([
      ['Revert "feature: barcode"', `${BOT.name} <${BOT.email}>`, `${BOT.name} <${BOT.email}>`],
      ['Revert "fix: second line"', `${BOT.name} <${BOT.email}>`, `${BOT.name} <${BOT.email}>`],
    ]);
    expect(git(bare, 'log', '-1', '--format=%b', 'main~1')).toBe(`This reverts commit ${c3}.`);
    // main's tree is the tree of the release that serves again.
    expect(git(bare, 'rev-parse', 'main^{tree}')).toBe(git(bare, 'rev-parse', `${c1}^{tree}`));
    // The workspace's own checkout is untouched (the reverts were made in a separate worktree).
    expect(git(workspace, 'status', '--porcelain', '--untracked-files=no')).toBe('');
    expect(git(workspace, 'rev-parse', 'HEAD')).toBe(c1);
    expect(git(workspace, 'worktree', 'list', '--porcelain').match(/^worktree /gm)).toHaveLength(1);
    // Every request to the remote carried the input's token (alone: the persisted header was reset)
    // as GitHub takes it; it never showed in the log.
    const pushes = remote.requests.filter((r) => r.path.endsWith('/git-receive-pack'));
    expect(pushes.length).toBeGreaterThan(0);
    expect(remote.requests.every((r) => r.authorization?.replace(/^basic /i, 'Basic ') === `Basic ${BASIC}`)).toBe(true);
    expect(result.masks).toEqual(expect.arrayContaining([TOKEN, BASIC]));
    expect(result.shownLog).not.toContain(TOKEN);
    expect(result.shownLog).not.toContain(BASIC);
    expect(result.summary).toContain(`2 commit(s) reverted (${head.slice(0, 7)}), pushed to main`);
    expect(result.log).toContain(`Revert: git revert --no-edit ${c1.slice(0, 7)}..${c3.slice(0, 7)}, pushed to main`);
    expect(github.pulls).toEqual([]);
    const rb = JSON.parse(
      fs.readFileSync(path.join(workspace, 'releases', 'production', `${result.outputs['release-id']}.json`), 'utf8'),
    ) as Record<string, unknown>;
    expect(rb).toMatchObject({ outcome: 'success', rollbackOf: b, gitSha: c1 });
  });

  let s1: string;
  let c4: string;
  let c5: string;

  it('revert: pull-request pushes a branch and opens the pull request into main (REST API)', async () => {
    c4 = commit('gift.txt', 'gift wrap\n', 'feature: gift wrap');
    c5 = commit('gift.txt', 'gift wrap, ribbon\n', 'feature: ribbon');
    s1 = await deploy('staging', IMAGE('c'), c4);
    await deploy('staging', IMAGE('d'), c5);
    const mainBefore = git(bare, 'rev-parse', 'main');

    const result = await job.run(
      'rollback',
      inputs('staging', { revert: 'pull-request', 'revert-author-name': 'Release Bot', 'revert-author-email': 'release-bot@acme.example' }),
    );
    ok(result);
    expect(result.outputs['target-release-id']).toBe(s1);
    const branch = `slipway/revert-${result.outputs['release-id']}`;
    expect(git(bare, 'rev-parse', 'main')).toBe(mainBefore);
    expect(git(bare, 'rev-parse', `${branch}~1`)).toBe(c5);
    expect(git(bare, 'rev-parse', branch)).toBe(result.outputs['revert-sha']);
    expect(remoteLog(branch, 1)).toEqual([
      ['Revert "feature: ribbon"', 'Release Bot <release-bot@acme.example>', 'Release Bot <release-bot@acme.example>'],
    ]);

    expect(github.violations).toEqual([]);
    const posts = github.requests.filter((r) => r.method === 'POST' && r.path === '/repos/acme/shop/pulls');
    expect(posts).toHaveLength(1);
    const req = posts[0]!;
    expect(req.operation).toBe('/repos/{owner}/{repo}/pulls');
    expect(req.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(req.headers.accept).toBe('application/vnd.github+json');
    expect(req.headers['x-github-api-version']).toBe('2022-11-28');
    const body = req.body as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['base', 'body', 'head', 'maintainer_can_modify', 'title']);
    expect(body).toMatchObject({
      title: 'Revert 1 commit(s) rolled back in staging',
      head: branch,
      base: 'main',
      maintainer_can_modify: true,
    });
    expect(body.body).toContain(
      `rolled back from release ${result.outputs['rolled-back-release-id']} (${c5.slice(0, 7)}) to ${s1} (${c4.slice(0, 7)})`,
    );
    expect(body.body).toContain(`- ${c5.slice(0, 7)} feature: ribbon`);
    expect(body.body).toContain('https://github.com/acme/shop/actions/runs/1');
    expect(result.outputs['revert-pull-request-url']).toBe('https://github.com/acme/shop/pull/1');
    expect(result.summary).toContain(`on ${branch}: pull request #1 https://github.com/acme/shop/pull/1`);
    expect(result.shownLog).not.toContain(TOKEN);
  });

  it('a revert that conflicts fails the step clearly; the rollback itself stays done and recorded', async () => {
    const c6 = commit('app.txt', 'line one\nline 2 (staging)\n', 'fix: staging line');
    const s3 = await deploy('staging', IMAGE('e'), c6);
    // Back to the rollback release of the previous test (c4): c5 and c6 are reverted. Someone changes
    // the same line on main after the deploy, so the revert of c6 cannot apply.
    const c7 = commit('app.txt', 'line one\nline 2, edited again\n', 'edit: line two again');
    const pullsBefore = github.pulls.length;

    const result = await job.run('rollback', inputs('staging', { revert: 'commit' }));
    expect(result.exitCode).toBe(1);
    const rbId = result.outputs['release-id']!;
    expect(result.failure).toMatch(
      new RegExp(
        `^rollback failed: The rollback is done \\(staging serves \\S+ again, recorded as ${rbId}\\), but the revert failed: ` +
          `git revert --no-edit ${c4.slice(0, 7)}\\.\\.${c6.slice(0, 7)} on main failed \\(exit 1\\): .*CONFLICT.*app\\.txt.* ` +
          `Revert by hand: git revert --no-edit ${c4.slice(0, 12)}\\.\\.${c6.slice(0, 12)}$`,
      ),
    );
    expect(result.outputs['rolled-back-release-id']).toBe(s3);
    expect(run.revisions.get(run.servingRevision()!)?.image).not.toBe(IMAGE('e'));
    const rb = JSON.parse(fs.readFileSync(path.join(workspace, 'releases', 'staging', `${rbId}.json`), 'utf8')) as Record<string, unknown>;
    expect(rb).toMatchObject({ outcome: 'success', rollbackOf: s3 });
    expect(git(bare, 'rev-parse', 'main')).toBe(c7);
    expect(github.pulls.length).toBe(pullsBefore);
    expect(result.summary).toContain('FAILED: git revert');
    expect(git(workspace, 'worktree', 'list', '--porcelain').match(/^worktree /gm)).toHaveLength(1);
  });

  it('refuses bad revert inputs before anything runs', async () => {
    const before = run.requests.length;
    const bad = await job.run('rollback', inputs('staging', { revert: 'commit', 'revert-branch': '--upload-pack=x' }));
    expect(bad.failure).toBe(
      'rollback failed: Input `revert-branch` must be a branch name (letters, digits, . _ - /; no "..", no leading "-" or "/"); got "--upload-pack=x".',
    );
    const noToken = await job.run('rollback', inputs('staging', { revert: 'pull-request', 'github-token': '' }));
    expect(noToken.failure).toBe(
      'rollback failed: Input `revert: pull-request` needs `github-token` (with contents: write and pull-requests: write).',
    );
    expect(run.requests.length).toBe(before);
  });
});
