/**
 * Docker image references, parsed and normalized the way Docker itself does it
 * (github.com/distribution/reference: ParseNormalizedNamed followed by
 * TagNameOnly, with go-digest's validation of the digest).
 *
 * This is THE one place that understands image references. It imports nothing
 * on purpose: Temporal workflow code uses it too, and workflow code may not
 * touch Node built-ins.
 *
 * Grammar (reference.go):
 *
 *   reference        := name [ ":" tag ] [ "@" digest ]
 *   name             := [domain '/'] remote-name
 *   domain           := host [':' port-number]
 *   host             := domain-name | IPv4address | '[' IPv6address ']'
 *   domain-name      := domain-component ['.' domain-component]*
 *   domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
 *   port-number      := /[0-9]+/
 *   path-component   := alpha-numeric [separator alpha-numeric]*
 *   remote-name      := path-component ['/' path-component]*
 *   alpha-numeric    := /[a-z0-9]+/
 *   separator        := /[_.]|__|[-]*\/
 *   tag              := /[\w][\w.-]{0,127}/
 *   digest           := algorithm ":" hex   (algorithm components /[A-Za-z][A-Za-z0-9]*\/
 *                                            joined by [-_+.], hex /[0-9a-fA-F]{32,}/)
 *
 * Normalization (normalize.go): the first '/'-separated component is the
 * registry domain if it is "localhost", contains '.' or ':', or contains an
 * uppercase letter; otherwise the domain is docker.io. "index.docker.io" becomes
 * "docker.io", and a single-component name on docker.io gets the "library/"
 * prefix. A name with neither tag nor digest gets the tag "latest".
 */

export interface ImageRef {
  /** Registry domain, possibly with a port: "docker.io", "127.0.0.1:5000", "[::1]:5000". */
  domain: string;
  /** Repository path inside the registry: "library/busybox", "user/app". */
  path: string;
  /** domain + '/' + path. */
  repository: string;
  tag?: string;
  /** "<algorithm>:<lowercase hex>". */
  digest?: string;
  /** The fully normalized reference, e.g. "docker.io/library/busybox:latest". */
  reference: string;
  /** The short form Docker shows, e.g. "busybox:latest" or "user/app:1.0". */
  familiar: string;
}

export class InvalidReferenceError extends Error {
  /** Human-readable reason, without the input. */
  readonly reason: string;
  /** The rejected input (cut to 300 characters so it is safe to log). */
  readonly input: string;

  constructor(reason: string, input: string) {
    super(reason);
    this.name = 'InvalidReferenceError';
    this.reason = reason;
    this.input = input.length > 300 ? `${input.slice(0, 300)}…` : input;
  }
}

const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
const DEFAULT_TAG = 'latest';
const LOCALHOST = 'localhost';

/** Maximum length of the repository name (domain + '/' + path). */
export const NAME_TOTAL_LENGTH_MAX = 255;

/**
 * Inputs longer than this cannot be valid (255 name + ':' + 128 tag + '@' +
 * the longest supported digest, with room to spare); they are rejected before
 * any regular expression runs.
 */
const INPUT_LENGTH_MAX = 1024;

// Building blocks, kept as in regexp.go. The dash separator is written `-+`
// instead of `-*`: both accept the same language (alpha-numeric atoms are
// greedy), but `-*` makes the repetition ambiguous and open to catastrophic
// backtracking.
const ALPHANUMERIC = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|-+)';
const PATH_COMPONENT = `${ALPHANUMERIC}(?:${SEPARATOR}${ALPHANUMERIC})*`;
const REMOTE_NAME = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const DOMAIN_NAME_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_NAME = `${DOMAIN_NAME_COMPONENT}(?:\\.${DOMAIN_NAME_COMPONENT})*`;
const IPV6_ADDRESS = '\\[(?:[a-fA-F0-9:]+)\\]';
const HOST = `(?:${DOMAIN_NAME}|${IPV6_ADDRESS})`;
const DOMAIN_AND_PORT = `${HOST}(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';

const anchoredRemoteName = new RegExp(`^${REMOTE_NAME}$`);
const anchoredDomain = new RegExp(`^${DOMAIN_AND_PORT}$`);
const anchoredTag = new RegExp(`^${TAG}$`);
const anchoredDigest = new RegExp(`^${DIGEST}$`);
const anchoredIdentifier = /^[a-f0-9]{64}$/;

/** Digest algorithms Docker (go-digest) accepts, with their hex length. */
const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = {
  sha256: 64,
  sha384: 96,
  sha512: 128,
};

const invalid = (reason: string, input: string): InvalidReferenceError => new InvalidReferenceError(reason, input);

/** normalize.go splitDockerDomain: returns [domain, remainder]. */
function splitDockerDomain(name: string): [string, string] {
  const slash = name.indexOf('/');
  if (slash < 0) {
    // Familiar single-component names ("ubuntu", "ubuntu:22.04") are never a
    // domain, so "localhost:5000" is library/localhost with tag 5000, as in Docker.
    return [DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name];
  }
  const maybeDomain = name.slice(0, slash);
  const maybeRemote = name.slice(slash + 1);
  let domain: string;
  let remote: string;
  if (maybeDomain === LOCALHOST) {
    [domain, remote] = [maybeDomain, maybeRemote];
  } else if (maybeDomain === LEGACY_DEFAULT_DOMAIN) {
    [domain, remote] = [DEFAULT_DOMAIN, maybeRemote];
  } else if (maybeDomain.includes('.') || maybeDomain.includes(':')) {
    [domain, remote] = [maybeDomain, maybeRemote];
  } else if (maybeDomain.toLowerCase() !== maybeDomain) {
    // Uppercase namespaces are not allowed, so Docker treats such a first
    // component as a domain name.
    [domain, remote] = [maybeDomain, maybeRemote];
  } else {
    [domain, remote] = [DEFAULT_DOMAIN, name];
  }
  if (domain === DEFAULT_DOMAIN && !remote.includes('/')) {
    remote = OFFICIAL_REPO_PREFIX + remote;
  }
  return [domain, remote];
}

/** go-digest Parse/Validate: the algorithm must be known and the hex exact. */
function validateDigest(digest: string, input: string): void {
  if (!anchoredDigest.test(digest)) {
    throw invalid('invalid digest format', input);
  }
  const colon = digest.indexOf(':');
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  const expected = Object.prototype.hasOwnProperty.call(DIGEST_HEX_LENGTH, algorithm)
    ? DIGEST_HEX_LENGTH[algorithm]
    : undefined;
  if (expected === undefined) {
    throw invalid(`invalid digest: unsupported digest algorithm "${algorithm.slice(0, 32)}"`, input);
  }
  if (hex.length !== expected) {
    throw invalid(`invalid digest: ${algorithm} needs ${expected} hex characters`, input);
  }
  if (!/^[a-f0-9]+$/.test(hex)) {
    throw invalid(`invalid digest: ${algorithm} hex must be lowercase`, input);
  }
}

/** normalize.go familiarizeName. */
function familiarName(domain: string, path: string): string {
  if (domain !== DEFAULT_DOMAIN) return `${domain}/${path}`;
  if (path.startsWith(OFFICIAL_REPO_PREFIX)) {
    const rest = path.slice(OFFICIAL_REPO_PREFIX.length);
    if (!rest.includes('/')) return rest;
  }
  return path;
}

function suffix(tag: string | undefined, digest: string | undefined): string {
  return (tag !== undefined ? `:${tag}` : '') + (digest !== undefined ? `@${digest}` : '');
}

/**
 * Parses and normalizes an image reference exactly as `docker pull` would
 * (ParseNormalizedNamed + TagNameOnly). Throws InvalidReferenceError.
 */
export function parseImageReference(input: string): ImageRef {
  if (typeof input !== 'string' || input === '') {
    throw invalid('reference is empty', typeof input === 'string' ? input : '');
  }
  if (input.length > INPUT_LENGTH_MAX) {
    throw invalid(`reference is longer than ${INPUT_LENGTH_MAX} characters`, input);
  }
  if (/\s/.test(input)) {
    throw invalid('invalid reference format: must not contain whitespace', input);
  }
  if (anchoredIdentifier.test(input)) {
    throw invalid('invalid repository name: cannot specify 64-byte hexadecimal strings', input);
  }

  const [domain, remainder] = splitDockerDomain(input);

  // normalize.go: the remote name (everything before the tag/digest) must be
  // lowercase. Docker cuts at the first ':' only; cutting at '@' too just gives
  // a clearer message for "repo@SHA256:..." (which is rejected either way).
  const remoteEnd = remainder.search(/[:@]/);
  const remote = remoteEnd < 0 ? remainder : remainder.slice(0, remoteEnd);
  if (remote.toLowerCase() !== remote) {
    throw invalid('invalid reference format: repository name must be lowercase', input);
  }

  // reference.go Parse on "<domain>/<remainder>". Splitting by hand is
  // equivalent to the anchored ReferenceRegexp: '@' occurs only before the
  // digest, and after the last '/' a ':' can only start the tag (path
  // components never contain ':'; a port lives in the domain, before any '/').
  let nameAndTag = remainder;
  let digest: string | undefined;
  const at = remainder.indexOf('@');
  if (at >= 0) {
    nameAndTag = remainder.slice(0, at);
    digest = remainder.slice(at + 1);
    if (digest.includes('@')) throw invalid('invalid reference format', input);
  }

  let path = nameAndTag;
  let tag: string | undefined;
  const colon = nameAndTag.indexOf(':', nameAndTag.lastIndexOf('/') + 1);
  if (colon >= 0) {
    path = nameAndTag.slice(0, colon);
    tag = nameAndTag.slice(colon + 1);
  }

  if (path === '' || path.endsWith('/') || !anchoredRemoteName.test(path)) {
    throw invalid('invalid reference format', input);
  }
  if (!anchoredDomain.test(domain)) {
    // Docker would fall back to reading the whole name as a domain-less path
    // (e.g. "my_registry.local/app"); such a reference has no registry to pull
    // from, so it is rejected here.
    throw invalid('invalid reference format: invalid registry domain', input);
  }
  if (tag !== undefined && !anchoredTag.test(tag)) {
    throw invalid('invalid tag: must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}', input);
  }
  if (digest !== undefined) validateDigest(digest, input);

  const repository = `${domain}/${path}`;
  if (repository.length > NAME_TOTAL_LENGTH_MAX) {
    throw invalid(`repository name is longer than ${NAME_TOTAL_LENGTH_MAX} characters`, input);
  }

  // TagNameOnly: a bare name gets "latest"; a digest-only reference stays digest-only.
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;

  const ref: ImageRef = {
    domain,
    path,
    repository,
    reference: repository + suffix(tag, digest),
    familiar: familiarName(domain, path) + suffix(tag, digest),
  };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/**
 * The registry host used to look up credentials: "docker.io" for Docker Hub
 * (index.docker.io is already folded into it), otherwise the domain with its
 * port. Host names are case-insensitive, so the result is lowercased.
 */
export function registryHost(ref: ImageRef): string {
  return ref.domain.toLowerCase();
}

/**
 * Maps any text to a single safe object-name component: only [A-Za-z0-9._-],
 * every other UTF-16 code unit becomes '_', a leading run of dots becomes '_'
 * (so the result is never '.', '..' or hidden), never empty, at most 128
 * characters. Use it for each '/'-separated part of a MinIO object name.
 */
export function safeObjectComponent(text: string): string {
  const cleaned = String(text)
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .replace(/^\.+/, '_')
    .slice(0, 128);
  return cleaned === '' ? '_' : cleaned;
}
