import { describe, expect, it } from 'vitest';
import { checkAuthor, checkBranch, DEFAULT_AUTHOR, gitEnv, pullRequestText, revertBranch } from '@slipway/rollback/revert';

const TOKEN = 'ghs_unitTestToken0123456789';

describe('revert branch', () => {
  it.each([
    ['', 'refs/heads/main', 'main'],
    ['', 'refs/heads/release/2026.11', 'release/2026.11'],
    ['hotfix', 'refs/tags/v1.2.0', 'hotfix'],
  ])('input %j, deployed from %s → %s', (input, ref, branch) => {
    expect(revertBranch(input || undefined, ref)).toBe(branch);
  });

  it.each(['refs/tags/v1.2.0', 'refs/pull/3/merge', ''])('refuses to guess from %j', (ref) => {
    expect(() => revertBranch(undefined, ref)).toThrow(/set `revert-branch`/);
  });

  it.each(['main', 'release/2026.11', 'a-b_c.d'])('accepts %s', (b) => expect(checkBranch(b, 'revert-branch')).toBe(b));
  it.each(['-x', '--upload-pack=evil', 'a..b', '/main', 'main/', 'a//b', 'x.lock', 'a/.hidden', 'a b', 'main@{1}', 'a;b', 'ä'])(
    'refuses %j',
    (b) => expect(() => checkBranch(b, 'revert-branch')).toThrow(/^Input `revert-branch` must be a branch name/),
  );

  it('checks the identity', () => {
    expect(checkAuthor(DEFAULT_AUTHOR.name, DEFAULT_AUTHOR.email)).toEqual(DEFAULT_AUTHOR);
    expect(() => checkAuthor('a\nb', 'x@y')).toThrow(/revert-author-name/);
    expect(() => checkAuthor('Bot <x@y>', 'x@y')).toThrow(/revert-author-name/);
    expect(() => checkAuthor('Bot', 'x y@z')).toThrow(/revert-author-email/);
  });
});

describe('git environment', () => {
  const author = { name: 'Bot', email: 'bot@example.com' };

  it('https remote: the header for that host only, reset first; identity; nothing else', () => {
    const { env, header } = gitEnv('https://github.com/acme/shop', TOKEN, author, {}, ['/ws']);
    const basic = Buffer.from(`x-access-token:${TOKEN}`).toString('base64');
    expect(header).toBe(`AUTHORIZATION: basic ${basic}`);
    expect(env).toEqual({
      GIT_CONFIG_COUNT: '4',
      GIT_CONFIG_KEY_0: 'commit.gpgsign',
      GIT_CONFIG_VALUE_0: 'false',
      GIT_CONFIG_KEY_1: 'safe.directory',
      GIT_CONFIG_VALUE_1: '/ws',
      GIT_CONFIG_KEY_2: 'http.https://github.com/.extraheader',
      GIT_CONFIG_VALUE_2: '',
      GIT_CONFIG_KEY_3: 'http.https://github.com/.extraheader',
      GIT_CONFIG_VALUE_3: `AUTHORIZATION: basic ${basic}`,
      GIT_TERMINAL_PROMPT: '0',
      GIT_AUTHOR_NAME: 'Bot',
      GIT_AUTHOR_EMAIL: 'bot@example.com',
      GIT_COMMITTER_NAME: 'Bot',
      GIT_COMMITTER_EMAIL: 'bot@example.com',
    });
    // The token itself is in no value but the (masked) header.
    expect(Object.values(env).filter((v) => v.includes(basic))).toHaveLength(1);
    expect(Object.values(env).some((v) => v.includes(TOKEN))).toBe(false);
  });

  it('appends to GIT_CONFIG_* already set', () => {
    const { env } = gitEnv('https://github.com/acme/shop', TOKEN, author, { GIT_CONFIG_COUNT: '2' }, []);
    expect(env.GIT_CONFIG_COUNT).toBe('5');
    expect(env.GIT_CONFIG_KEY_2).toBe('commit.gpgsign');
    expect(env.GIT_CONFIG_KEY_4).toBe('http.https://github.com/.extraheader');
  });

  it.each(['git@github.com:acme/shop.git', '/srv/git/shop.git', 'ssh://git@github.com/acme/shop'])('no header for %s', (url) => {
    const { env, header } = gitEnv(url, TOKEN, author, {}, []);
    expect(header).toBeUndefined();
    expect(Object.keys(env).filter((k) => env[k]!.includes('extraheader'))).toEqual([]);
  });

  it('no header without a token', () => {
    expect(gitEnv('https://github.com/acme/shop', '', author, {}, []).header).toBeUndefined();
  });
});

describe('pull request text', () => {
  it('names the releases, the range and each commit', () => {
    const { title, body } = pullRequestText(
      {
        fromSha: 'a'.repeat(40),
        toSha: 'b'.repeat(40),
        releaseId: '20261122-060000-aaaaaaa-001',
        environment: 'production',
        rolledBackId: '20261122-050000-bbbbbbb-002',
        targetId: '20261122-040000-aaaaaaa-003',
        gitRef: 'refs/heads/main',
      },
      {
        branch: 'main',
        commits: [
          { sha: 'b'.repeat(40), subject: 'fix: second' },
          { sha: 'c'.repeat(40), subject: 'feature: first' },
        ],
      },
    );
    expect(title).toBe('Revert 2 commit(s) rolled back in production');
    expect(body).toContain(
      '`production` was rolled back from release 20261122-050000-bbbbbbb-002 (bbbbbbb) to 20261122-040000-aaaaaaa-003 (aaaaaaa) by rollback release 20261122-060000-aaaaaaa-001',
    );
    expect(body).toContain('aaaaaaa..bbbbbbb on `main`');
    expect(body).toContain('- bbbbbbb fix: second\n- ccccccc feature: first');
  });
});
