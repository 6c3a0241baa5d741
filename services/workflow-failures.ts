/** Workflow failures as HTTP problems: a failure's type says whose mistake it was. */
import { AppError } from '../core/errors.js';
import { FailureType, rootCause } from '../core/failures.js';
import { InsufficientFundsError } from '../billing/ledger.js';

const STATUS: Partial<Record<FailureType, (message: string) => AppError>> = {
  [FailureType.ImageNotFound]: (m) => new AppError(422, 'image-not-found', 'Image Not Found In Registry', m),
  [FailureType.RegistryUnauthorized]: (m) => new AppError(422, 'registry-unauthorized', 'Registry Unauthorized', m),
  [FailureType.InsufficientFunds]: (m) => new InsufficientFundsError(m),
  [FailureType.ImageInUse]: (m) => new AppError(409, 'image-in-use', 'Image In Use', m),
  [FailureType.RegistryError]: (m) => new AppError(502, 'registry-error', 'Registry Error', m),
};

/** The problem for a failure of a known type (the STATUS table), else undefined. */
export function problemForFailureType(type: string | undefined, message: string): AppError | undefined {
  return type ? STATUS[type as FailureType]?.(message) : undefined;
}

/** A workflow's (or an update's) failure as the problem its root cause's type says, else 502. */
export function problemForWorkflowFailure(error: unknown): AppError {
  const { type, message } = rootCause(error);
  return problemForFailureType(type, message) ?? new AppError(502, 'workflow-failed', 'Workflow Failed', message);
}
