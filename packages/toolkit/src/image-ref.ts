import { UserError } from './errors';

/**
 * Image references as the distribution spec defines them: `[host[:port]/]path[:tag][@digest]`.
 * Names are lower-cased before validation (GHCR and Docker Hub refuse upper case; a GitHub
 * owner often has some), tags are checked or sanitised, digests are sha256.
 */

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::\d{1,5})?$|^\[[0-9a-fA-F:]+\](?::\d{1,5})?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

export const DOCKER_HUB = 'docker.io';

export interface ImageName {
  /** Registry host (with port), `docker.io` when the name has none. */
  registry: string;
  /** The path within the registry, e.g. `acme/shop` (`library/` added for Docker Hub singles). */
  repository: string;
  /** The name as given, lower-cased: what tags are appended to. */
  name: string;
}

/** A first component is a host when it has a dot or a port, or is `localhost` (docker's rule). */
function isHost(part: string): boolean {
  return part.includes('.') || part.includes(':') || part === 'localhost';
}

/** Parses an image name without tag or digest; `input` names the input in the error. */
export function parseImageName(value: string, input = 'image'): ImageName {
  const raw = value.trim();
  const bad = (why: string): UserError =>
    new UserError(`Input \`${input}\` ${JSON.stringify(value)} is not a valid image name: ${why} (e.g. ghcr.io/acme/shop).`);
  if (!raw) throw bad('it is empty');
  const noTag = 'give the name without a tag or digest; put tags in `tags`';
  if (raw.includes('@')) throw bad(noTag);
  const parts = raw.split('/');
  let registry = DOCKER_HUB;
  const hostGiven = parts.length > 1 && isHost(parts[0]!);
  if (hostGiven) {
    registry = parts.shift()!.toLowerCase();
    if (!HOST.test(registry)) throw bad(`${registry} is not a registry host`);
  }
  if (parts.some((p) => p.includes(':'))) throw bad(noTag);
  const path = parts.map((p) => p.toLowerCase());
  for (const part of path) {
    if (!COMPONENT.test(part)) {
      throw bad(`${JSON.stringify(part)} may only hold lower-case letters, digits and single . _ __ or - separators`);
    }
  }
  const repository = registry === DOCKER_HUB && path.length === 1 ? `library/${path[0]!}` : path.join('/');
  if (repository.length + registry.length + 1 > 255) throw bad('it is longer than 255 characters');
  const name = hostGiven ? `${registry}/${path.join('/')}` : path.join('/');
  return { registry, repository, name };
}

export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

/** Fails with one line naming the input when a tag is not valid as given. */
export function validateTag(tag: string, input = 'tags'): string {
  if (!isValidTag(tag)) {
    throw new UserError(
      `Input \`${input}\` has an invalid tag ${JSON.stringify(tag)}: a tag is 1-128 letters, digits, _ . - and may not start with . or -.`,
    );
  }
  return tag;
}

/** Makes any text a valid tag the way docker/metadata-action does for branch names. */
export function sanitizeTag(text: string): string {
  const cleaned = text
    .replace(/[^\w.-]+/g, '-')
    .replace(/^[.-]+/, '')
    .slice(0, 128);
  return cleaned.replace(/[.-]+$/, (m) => (cleaned.length === m.length ? '' : m));
}

export function isDigest(value: string): boolean {
  return DIGEST.test(value);
}

/** `name@sha256:…` — the immutable reference. */
export function withDigest(name: string, digest: string): string {
  if (!isDigest(digest)) throw new Error(`not a sha256 digest: ${digest}`);
  return `${name}@${digest}`;
}

/** Splits `name[:tag][@digest]`; the tag's colon is the last one after the last slash. */
export function splitReference(ref: string): { name: string; tag?: string; digest?: string } {
  let rest = ref.trim();
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  let tag: string | undefined;
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  return { name: rest, tag, digest };
}

/**
 * The `name@sha256:…` among `docker inspect`'s RepoDigests that belongs to `name` (an image
 * pushed to several registries has one entry per repository).
 */
export function repoDigestFor(repoDigests: readonly string[], name: string): string | undefined {
  const wanted = normalizeName(name);
  return repoDigests.find((rd) => normalizeName(splitReference(rd).name) === wanted);
}

/** docker.io/library/x, docker.io/x and x are one repository. */
function normalizeName(name: string): string {
  const parts = name.toLowerCase().split('/');
  if (parts.length === 1 || !isHost(parts[0]!)) parts.unshift(DOCKER_HUB);
  if (parts[0] === 'index.docker.io') parts[0] = DOCKER_HUB;
  if (parts[0] === DOCKER_HUB && parts.length === 2) parts.splice(1, 0, 'library');
  return parts.join('/');
}
