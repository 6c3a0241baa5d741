/**
 * Turns what Docker and registries say into Temporal failures: client mistakes
 * (unknown image, unauthorized) are non-retryable; the rest is left to retry policies.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { FailureType } from '../core/failures.js';

interface DockerHttpError {
  statusCode?: number;
  json?: { message?: string } | null;
  reason?: string;
  message?: string;
}

export function dockerMessage(error: unknown): string {
  const e = error as DockerHttpError;
  return (e.json?.message ?? e.message ?? String(error)).trim();
}

const UNAUTHORIZED = /unauthorized|authentication required|no basic auth credentials|denied|incorrect username or password/i;
const NOT_FOUND = /manifest unknown|name unknown|manifest for .* not found|repository .* not found|no such image/i;
/** Something answered that is not a registry (a web server, MinIO, a gRPC port): its body is not for users. */
const NOT_A_REGISTRY = /error parsing HTTP|response body|malformed HTTP|invalid character|unexpected EOF|http: server gave HTTP response|tls: first record/i;
const UNREACHABLE: Array<[RegExp, string]> = [
  [/connection refused/i, 'connection refused'],
  [/no such host|server misbehaving|name resolution/i, 'its name does not resolve'],
  [/timeout|deadline exceeded|i\/o timeout/i, 'timed out'],
  [/connection reset|broken pipe|EOF/i, 'connection lost'],
  [/no route to host|network is unreachable/i, 'unreachable'],
];

/**
 * Classifies a failed pull, from the HTTP call or from inside the stream, and says so in
 * Berth's words: a registry's (or whatever answered's) raw body never reaches the user.
 * Docker's own text goes to the host worker's log instead, by the caller.
 */
export function pullFailure(error: unknown, reference: string): Error {
  const message = dockerMessage(error);
  const status = (error as DockerHttpError).statusCode;
  const registry = registryOf(reference);
  if (NOT_A_REGISTRY.test(message)) {
    return ApplicationFailure.nonRetryable(`pull of ${reference} failed: ${registry} did not answer as a registry`, FailureType.RegistryError);
  }
  if (UNAUTHORIZED.test(message) || status === 401 || status === 403) {
    return ApplicationFailure.nonRetryable(`unauthorized: ${registry} refused to serve ${reference}`, FailureType.RegistryUnauthorized);
  }
  if (NOT_FOUND.test(message) || status === 404) {
    return ApplicationFailure.nonRetryable(`not found: ${reference} is not in ${registry}`, FailureType.ImageNotFound);
  }
  const unreachable = UNREACHABLE.find(([pattern]) => pattern.test(message));
  if (unreachable) return ApplicationFailure.retryable(`pull of ${reference} failed: ${registry} could not be reached (${unreachable[1]})`, FailureType.RegistryUnreachable);
  return ApplicationFailure.retryable(`pull of ${reference} failed: ${registry} answered with an error`, FailureType.DockerError);
}

/** The registry part of a normalized reference ("docker.io/library/busybox:1" → "docker.io"). */
function registryOf(reference: string): string {
  const slash = reference.indexOf('/');
  return slash > 0 ? reference.slice(0, slash) : 'the registry';
}

export const isNotFound = (error: unknown) => (error as DockerHttpError).statusCode === 404;
export const isConflict = (error: unknown) => (error as DockerHttpError).statusCode === 409;

/**
 * Docker's reason in words fit for users: a host's paths (cgroup files, the data root,
 * runtime state) say nothing to them and tell them about the machine, so they are cut out.
 */
export function publicDockerMessage(error: unknown): string {
  const message = dockerMessage(error);
  if (/cgroup/i.test(message)) {
    // e.g. "... write /sys/fs/cgroup/cpu,cpuacct/docker/<id>/cpu.cfs_quota_us: invalid argument"
    const cause = /:\s*([a-z][a-z ]{2,40})\s*(?:: unknown)?$/i.exec(message)?.[1];
    return `the host refused the container's resource limits${cause ? ` (${cause.trim()})` : ''}`;
  }
  return message.replace(HOST_PATH, '<host path>');
}

/** An absolute path of two segments or more, not part of a URL or an image reference. */
const HOST_PATH = /(?<![\w.:/-])\/[^\s/:"'()[\]]+(?:\/[^\s:"'()[\]]*)+/g;
