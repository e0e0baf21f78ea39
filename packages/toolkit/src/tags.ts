import { isValidTag, sanitizeTag, validateTag } from './image-ref';

/**
 * Tag and label rules users know from docker/metadata-action, decided from the git context:
 *  - `sha-<7 hex>` always;
 *  - a branch push: the branch name, sanitised (`feature/x` -> `feature-x`), and `latest`
 *    when it is the default branch;
 *  - a pull request: `pr-<number>`;
 *  - a git tag: the tag name, sanitised; a SemVer tag (v1.2.3) also gives 1.2.3, 1.2 and 1
 *    (no 1.2 / 1 for pre-releases, no major for 0.x), a PEP 440 one (1.2.3rc1, 2024.1.post2)
 *    gives its normalised version and, for final releases, major.minor and major;
 *  - custom tags, validated as given.
 */
export interface GitContext {
  sha: string;
  /** refs/heads/main, refs/tags/v1.2.3, refs/pull/12/merge */
  ref: string;
  defaultBranch: string;
}

export interface Version {
  version: string;
  /** Extra, less specific tags (1.2, 1) for final releases. */
  rollups: string[];
  prerelease: boolean;
}

const SEMVER =
  /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

export function parseSemver(text: string): Version | undefined {
  const m = SEMVER.exec(text);
  if (!m) return undefined;
  const [, major, minor, patch, pre] = m;
  const core = `${major}.${minor}.${patch}`;
  // build metadata (+x) is not valid in a tag's charset as is; metadata-action drops '+'
  const version = pre ? `${core}-${pre}` : core;
  const rollups = pre ? [] : [`${major}.${minor}`, ...(major === '0' ? [] : [major!])];
  return { version: sanitizeTag(version), rollups, prerelease: Boolean(pre) };
}

// PEP 440 (public versions), case-insensitive, with its accepted spellings.
const PEP440 =
  /^v?(?:(\d+)!)?(\d+(?:\.\d+)*)(?:[-_.]?(a|b|c|rc|alpha|beta|pre|preview)[-_.]?(\d*))?(?:-(\d+)|[-_.]?(post|rev|r)[-_.]?(\d*))?(?:[-_.]?(dev)[-_.]?(\d*))?(?:\+([a-z0-9]+(?:[-_.][a-z0-9]+)*))?$/i;
const PRE_NORMAL: Record<string, string> = { a: 'a', alpha: 'a', b: 'b', beta: 'b', c: 'rc', rc: 'rc', pre: 'rc', preview: 'rc' };

/** The normalised form of a PEP 440 version (1.0RC1 -> 1.0rc1, 1.0-1 -> 1.0.post1). */
export function parsePep440(text: string): Version | undefined {
  const m = PEP440.exec(text.trim());
  if (!m) return undefined;
  const [, epoch, release, preL, preN, postImplicit, postL, postN, dev, devN, local] = m;
  const parts = release!.split('.').map((p) => String(Number(p)));
  let version = (epoch ? `${Number(epoch)}!` : '') + parts.join('.');
  if (preL) version += `${PRE_NORMAL[preL.toLowerCase()]!}${Number(preN || 0)}`;
  if (postImplicit !== undefined) version += `.post${Number(postImplicit)}`;
  else if (postL) version += `.post${Number(postN || 0)}`;
  if (dev) version += `.dev${Number(devN || 0)}`;
  if (local) version += `+${local.toLowerCase().replace(/[-_]/g, '.')}`;
  const prerelease = Boolean(preL || dev);
  const rollups = prerelease || epoch || local ? [] : [parts.slice(0, 2).join('.'), ...(parts[0] === '0' ? [] : [parts[0]!])];
  return { version: sanitizeTag(version.replace('!', '-').replace('+', '-')), rollups: [...new Set(rollups)], prerelease };
}

export interface TagDecision {
  tags: string[];
  /** The version label: the release version, else the branch / PR / short sha. */
  version: string;
}

export function automaticTags(git: GitContext): TagDecision {
  const short = `sha-${git.sha.slice(0, 7).toLowerCase()}`;
  const tags: string[] = [];
  let version = short;
  const branch = /^refs\/heads\/(.+)$/.exec(git.ref)?.[1];
  const gitTag = /^refs\/tags\/(.+)$/.exec(git.ref)?.[1];
  const pr = /^refs\/pull\/(\d+)\//.exec(git.ref)?.[1];
  if (branch) {
    const tag = sanitizeTag(branch);
    if (tag) tags.push(tag);
    version = tag || short;
    if (branch === git.defaultBranch) tags.push('latest');
  } else if (pr) {
    tags.push(`pr-${pr}`);
    version = `pr-${pr}`;
  } else if (gitTag) {
    const semver = parseSemver(gitTag);
    const pep = semver ? undefined : parsePep440(gitTag);
    const parsed = semver ?? pep;
    if (parsed) {
      tags.push(parsed.version, ...parsed.rollups);
      version = parsed.version;
    }
    const asIs = sanitizeTag(gitTag);
    if (asIs) tags.push(asIs);
    if (!parsed) version = asIs || short;
  }
  if (git.sha) tags.push(short);
  return { tags: unique(tags.filter(isValidTag)), version };
}

/** Automatic tags plus the custom ones (validated: a custom tag is never silently changed). */
export function decideTags(git: GitContext, custom: readonly string[], opts: { automatic?: boolean } = {}): TagDecision {
  const auto = opts.automatic === false ? { tags: [], version: '' } : automaticTags(git);
  const tags = unique([...auto.tags, ...custom.map((t) => validateTag(t))]);
  return { tags, version: auto.version || tags[0] || '' };
}

export interface LabelContext {
  serverUrl: string;
  repository: string;
  sha: string;
  version: string;
  created: Date;
  title?: string;
}

/** OCI annotation keys as image labels. */
export function ociLabels(ctx: LabelContext): Record<string, string> {
  const source = ctx.repository ? `${ctx.serverUrl.replace(/\/$/, '')}/${ctx.repository}` : '';
  const labels: Record<string, string> = {
    'org.opencontainers.image.title': ctx.title || ctx.repository.split('/').pop() || '',
    'org.opencontainers.image.source': source,
    'org.opencontainers.image.url': source,
    'org.opencontainers.image.revision': ctx.sha,
    'org.opencontainers.image.version': ctx.version,
    'org.opencontainers.image.created': ctx.created.toISOString(),
  };
  return Object.fromEntries(Object.entries(labels).filter(([, v]) => v !== ''));
}

function unique(items: string[]): string[] {
  return [...new Set(items)];
}
