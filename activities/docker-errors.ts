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
const NOT_FOUND = /not found|manifest unknown|name unknown|does not exist|no such image/i;

/** Classifies a failed pull, from the HTTP call or from inside the stream. */
export function pullFailure(error: unknown, reference: string): Error {
  const message = dockerMessage(error);
  const status = (error as DockerHttpError).statusCode;
  if (UNAUTHORIZED.test(message) || status === 401 || status === 403) {
    return ApplicationFailure.nonRetryable(`unauthorized: pulling ${reference}: ${message}`, FailureType.RegistryUnauthorized);
  }
  if (NOT_FOUND.test(message) || status === 404) {
    return ApplicationFailure.nonRetryable(`not found: ${reference}: ${message}`, FailureType.ImageNotFound);
  }
  return ApplicationFailure.retryable(`pull of ${reference} failed: ${message}`, 'DockerError');
}

export const isNotFound = (error: unknown) => (error as DockerHttpError).statusCode === 404;
export const isConflict = (error: unknown) => (error as DockerHttpError).statusCode === 409;
