import * as fs from 'node:fs';
import * as path from 'node:path';
import * as core from '@actions/core';
import { UserError } from '@slipway/toolkit/errors';
import { execTool, type ExecResult } from '@slipway/toolkit/exec';
import { maskSecret } from '@slipway/toolkit/secrets';

/**
 * `revert: commit|pull-request`: after a successful rollback, the commits between the release
 * served again and the release rolled back are reverted on the branch they were deployed from
 * (`git revert --no-edit <to>..<from>` in a separate worktree, so the workspace is untouched),
 * then pushed to that branch or to a new branch with a pull request. The token reaches git only
 * through GIT_CONFIG_* variables (an Authorization header for the remote's host), never argv.
 */
export const REVERTS = ['false', 'commit', 'pull-request'] as const;
export type RevertMode = (typeof REVERTS)[number];

export interface RevertSettings {
  mode: 'commit' | 'pull-request';
  /** The branch to revert on (`revert-branch`); default the branch the rolled-back release came from. */
  branch: string | undefined;
  authorName: string;
  authorEmail: string;
  token: string;
  /** owner/name, for the pull request. */
  repository: string;
  /** The checked-out repository (the workspace). */
  repoDir: string;
}

export interface RevertRange {
  /** The release served again: its commit is kept. */
  fromSha: string;
  /** The release rolled back: its commit and those before it down to fromSha are reverted. */
  toSha: string;
  releaseId: string;
  environment: string;
  rolledBackId: string;
  targetId: string;
  /** The rolled-back release's git ref (refs/heads/main): the default branch to revert on. */
  gitRef: string;
}

export interface RevertResult {
  branch: string;
  /** Where the revert commits were pushed (the branch, or the pull request's branch). */
  pushedTo: string;
  commits: { sha: string; subject: string }[];
  /** HEAD after the reverts; empty when there was nothing to revert. */
  revertSha: string;
  pullRequest?: { number: number; url: string };
  note?: string;
}

export const DEFAULT_AUTHOR = { name: 'github-actions[bot]', email: '41898282+github-actions[bot]@users.noreply.github.com' };

const BRANCH = /^(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)(?!.*\.lock(?:\/|$))[A-Za-z0-9._/-]{1,200}(?<![./])$/;

export function checkBranch(value: string, input: string): string {
  if (!BRANCH.test(value) || value.startsWith('/') || value.split('/').some((p) => p.startsWith('.'))) {
    throw new UserError(
      `Input \`${input}\` must be a branch name (letters, digits, . _ - /; no "..", no leading "-" or "/"); got ${JSON.stringify(value)}.`,
    );
  }
  return value;
}

export function checkAuthor(name: string, email: string): { name: string; email: string } {
  if (!/^[^\n\r<>]{1,100}$/.test(name))
    throw new UserError(
      `Input \`revert-author-name\` must be one line without < or > (up to 100 characters); got ${JSON.stringify(name)}.`,
    );
  if (!/^[^\s<>@]+@[^\s<>@]+$/.test(email))
    throw new UserError(`Input \`revert-author-email\` must be an e-mail address (name@host); got ${JSON.stringify(email)}.`);
  return { name, email };
}

/** The branch to revert on: the input, else the rolled-back release's branch. */
export function revertBranch(input: string | undefined, gitRef: string): string {
  if (input) return input;
  const m = /^refs\/heads\/(.+)$/.exec(gitRef);
  if (m && BRANCH.test(m[1]!)) return m[1]!;
  throw new UserError(
    `The rolled-back release was deployed from ${JSON.stringify(gitRef || '(no ref recorded)')}, not a branch: set \`revert-branch\` to the branch to revert on.`,
  );
}

/**
 * Variables that give git an Authorization header for the remote's host only (a later empty value
 * first resets headers from other config, e.g. the one actions/checkout persists), and the
 * identity for the revert commits. Nothing secret is on a command line.
 */
export function gitEnv(
  remoteUrl: string,
  token: string,
  author: { name: string; email: string },
  base: NodeJS.ProcessEnv,
  safeDirs: string[],
): { env: Record<string, string>; header: string | undefined } {
  const pairs: [string, string][] = [['commit.gpgsign', 'false'], ...safeDirs.map((d): [string, string] => ['safe.directory', d])];
  let header: string | undefined;
  let origin: string | undefined;
  try {
    const u = new URL(remoteUrl);
    if (u.protocol === 'https:' || u.protocol === 'http:') origin = `${u.protocol}//${u.host}/`;
  } catch {
    origin = undefined; // a path or scp-like ssh remote: no HTTP header to give
  }
  if (origin && token) {
    header = `AUTHORIZATION: basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`;
    pairs.push([`http.${origin}.extraheader`, ''], [`http.${origin}.extraheader`, header]);
  }
  const start = Number(base.GIT_CONFIG_COUNT ?? 0) || 0;
  const env: Record<string, string> = {
    GIT_CONFIG_COUNT: String(start + pairs.length),
    GIT_TERMINAL_PROMPT: '0',
    GIT_AUTHOR_NAME: author.name,
    GIT_AUTHOR_EMAIL: author.email,
    GIT_COMMITTER_NAME: author.name,
    GIT_COMMITTER_EMAIL: author.email,
  };
  pairs.forEach(([k, v], i) => {
    env[`GIT_CONFIG_KEY_${start + i}`] = k;
    env[`GIT_CONFIG_VALUE_${start + i}`] = v;
  });
  return { env, header };
}

export function pullRequestText(range: RevertRange, result: Pick<RevertResult, 'commits' | 'branch'>): { title: string; body: string } {
  const n = result.commits.length;
  const title = `Revert ${n} commit(s) rolled back in ${range.environment}`;
  const server = process.env.GITHUB_SERVER_URL ?? 'https://github.com';
  const run = process.env.GITHUB_RUN_ID ? `${server}/${process.env.GITHUB_REPOSITORY ?? ''}/actions/runs/${process.env.GITHUB_RUN_ID}` : '';
  const body = [
    `\`${range.environment}\` was rolled back from release ${range.rolledBackId} (${range.toSha.slice(0, 7)}) to ${range.targetId} (${range.fromSha.slice(0, 7)}) by rollback release ${range.releaseId}${run ? ` ([run](${run}))` : ''}.`,
    '',
    `This reverts the ${n} commit(s) in ${range.fromSha.slice(0, 7)}..${range.toSha.slice(0, 7)} on \`${result.branch}\`, so the branch matches what runs:`,
    '',
    ...result.commits.map((c) => `- ${c.sha.slice(0, 7)} ${c.subject}`),
  ].join('\n');
  return { title, body };
}

export async function runRevert(s: RevertSettings, range: RevertRange, tempDir: string): Promise<RevertResult> {
  const branch = revertBranch(s.branch, range.gitRef);
  const author = { name: s.authorName, email: s.authorEmail };
  const inside = await execTool('git', ['-C', s.repoDir, 'rev-parse', '--is-inside-work-tree'], { silent: true, allowFailure: true });
  if (inside.exitCode !== 0 || inside.stdout.trim() !== 'true') {
    throw new UserError(
      `${s.repoDir} is not a git checkout: run actions/checkout (fetch-depth: 0 saves a fetch) before rollback with \`revert\`.`,
    );
  }
  const remote = (await git(s.repoDir, ['remote', 'get-url', 'origin'], {}, 'Finding the origin remote')).stdout.trim();
  const worktree = fs.mkdtempSync(path.join(tempDir, 'slipway-revert-'));
  const { env, header } = gitEnv(remote, s.token, author, process.env, [s.repoDir, worktree]);
  if (header) maskSecret(header.slice(header.indexOf('basic ') + 6));
  const run = (args: string[], label: string, cwd = s.repoDir) => git(cwd, args, env, label);

  const shallow = (await run(['rev-parse', '--is-shallow-repository'], 'Checking the clone')).stdout.trim() === 'true';
  const tracking = `refs/remotes/origin/${branch}`;
  await run(
    ['fetch', '--no-tags', ...(shallow ? ['--unshallow'] : []), 'origin', `+refs/heads/${branch}:${tracking}`],
    `Fetching ${branch} from origin`,
  );
  for (const [sha, what] of [
    [range.fromSha, `release ${range.targetId}`],
    [range.toSha, `release ${range.rolledBackId}`],
  ] as const) {
    const found = await execTool('git', ['-C', s.repoDir, 'cat-file', '-e', `${sha}^{commit}`], { env, silent: true, allowFailure: true });
    if (found.exitCode !== 0) throw new UserError(`The commit of ${what} (${sha}) is not in the repository fetched from origin.`);
  }
  if (!(await isAncestor(s.repoDir, range.toSha, tracking, env))) {
    throw new UserError(`The commit of release ${range.rolledBackId} (${range.toSha.slice(0, 7)}) is not on branch ${branch}.`);
  }
  if (!(await isAncestor(s.repoDir, range.fromSha, range.toSha, env))) {
    if (await isAncestor(s.repoDir, range.toSha, range.fromSha, env)) {
      return { branch, pushedTo: '', commits: [], revertSha: '', note: 'nothing to revert: the release served again is newer' };
    }
    throw new UserError(
      `The commit of release ${range.targetId} (${range.fromSha.slice(0, 7)}) is not an ancestor of ${range.toSha.slice(0, 7)}: the commits to revert are not one range.`,
    );
  }
  const log = await run(['log', '--format=%H%x09%s', `${range.fromSha}..${range.toSha}`], 'Listing the commits to revert');
  const commits = log.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => ({ sha: line.slice(0, line.indexOf('\t')), subject: line.slice(line.indexOf('\t') + 1) }));
  if (commits.length === 0)
    return { branch, pushedTo: '', commits, revertSha: '', note: 'nothing to revert: both releases run the same commit' };

  try {
    await run(['worktree', 'add', '--detach', worktree, tracking], 'Preparing a worktree');
    const reverted = await execTool('git', ['revert', '--no-edit', `${range.fromSha}..${range.toSha}`], {
      cwd: worktree,
      env,
      allowFailure: true,
      label: 'Reverting',
    });
    if (reverted.exitCode !== 0) {
      await execTool('git', ['revert', '--abort'], { cwd: worktree, env, allowFailure: true, quiet: true, silent: true });
      const why = (reverted.stderr + reverted.stdout).split('\n').filter((l) => /^(error|fatal|CONFLICT|hint: after resolving)/.test(l));
      throw new UserError(
        `git revert --no-edit ${range.fromSha.slice(0, 7)}..${range.toSha.slice(0, 7)} on ${branch} failed (exit ${reverted.exitCode}): ${why.slice(0, 5).join(' ') || 'see the log'}`,
      );
    }
    const revertSha = (await run(['rev-parse', 'HEAD'], 'Reading the revert commit', worktree)).stdout.trim();
    const pushedTo = s.mode === 'commit' ? branch : `slipway/revert-${range.releaseId}`;
    await run(['push', 'origin', `HEAD:refs/heads/${pushedTo}`], `Pushing to ${pushedTo}`, worktree);
    const result: RevertResult = { branch, pushedTo, commits, revertSha };
    if (s.mode === 'pull-request') result.pullRequest = await openPullRequest(s, range, result);
    return result;
  } finally {
    await execTool('git', ['-C', s.repoDir, 'worktree', 'remove', '--force', worktree], {
      env,
      allowFailure: true,
      silent: true,
      quiet: true,
    });
    fs.rmSync(worktree, { recursive: true, force: true });
  }
}

async function git(cwd: string, args: string[], env: Record<string, string>, label: string): Promise<ExecResult> {
  return execTool('git', args, { cwd, env, silent: true, label });
}

async function isAncestor(cwd: string, a: string, b: string, env: Record<string, string>): Promise<boolean> {
  const r = await execTool('git', ['merge-base', '--is-ancestor', a, b], { cwd, env, silent: true, quiet: true, allowFailure: true });
  if (r.exitCode > 1) throw new UserError(`git merge-base --is-ancestor ${a} ${b} failed: ${r.stderr.trim()}`);
  return r.exitCode === 0;
}

/** POST /repos/{owner}/{repo}/pulls (GitHub REST API). */
async function openPullRequest(s: RevertSettings, range: RevertRange, result: RevertResult): Promise<{ number: number; url: string }> {
  const { title, body } = pullRequestText(range, result);
  const api = (process.env.GITHUB_API_URL || 'https://api.github.com').replace(/\/+$/, '');
  const response = await fetch(`${api}/repos/${s.repository}/pulls`, {
    method: 'POST',
    headers: {
      Accept: 'application/vnd.github+json',
      Authorization: `Bearer ${s.token}`,
      'Content-Type': 'application/json',
      'User-Agent': 'slipway-rollback',
      'X-GitHub-Api-Version': '2022-11-28',
    },
    body: JSON.stringify({ title, head: result.pushedTo, base: result.branch, body, maintainer_can_modify: true }),
    signal: AbortSignal.timeout(30_000),
  });
  const data = (await response.json().catch(() => ({}))) as { number?: number; html_url?: string; message?: string; errors?: unknown };
  if (response.status !== 201 || typeof data.number !== 'number') {
    const detail = data.errors ? ` ${JSON.stringify(data.errors).slice(0, 300)}` : '';
    throw new UserError(
      `GitHub did not open the pull request (HTTP ${response.status}: ${data.message ?? 'no message'}${detail}); the reverts are pushed to ${result.pushedTo}.`,
    );
  }
  core.info(`Opened pull request #${data.number}: ${data.html_url ?? ''}`);
  return { number: data.number, url: data.html_url ?? '' };
}
