/** Workflow failures as HTTP problems: a failure's type says whose mistake it was. */
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { AppError } from '../core/errors.js';
import { FailureType } from '../core/failures.js';

const STATUS: Record<string, [number, string, string]> = {
  [FailureType.InvalidReference]: [400, 'invalid-reference', 'Invalid Image Reference'],
  [FailureType.ImageNotFound]: [422, 'image-not-found', 'Image Not Found In Registry'],
  [FailureType.RegistryUnauthorized]: [422, 'registry-unauthorized', 'Registry Unauthorized'],
  [FailureType.InsufficientFunds]: [409, 'insufficient-funds', 'Insufficient Funds'],
  [FailureType.ImageInUse]: [409, 'image-in-use', 'Image In Use'],
  [FailureType.RegistryError]: [502, 'registry-error', 'Registry Error'],
};

/** The innermost ApplicationFailure of a failed workflow, with its type and message. */
export function rootFailure(error: unknown): { type?: string; message: string } {
  let cause: unknown = error instanceof WorkflowFailedError ? error.cause : error;
  while (cause instanceof Error) {
    if (cause instanceof ApplicationFailure) return { type: cause.type ?? undefined, message: cause.message };
    if (!(cause as Error & { cause?: unknown }).cause) break;
    cause = (cause as Error & { cause?: unknown }).cause;
  }
  return { message: error instanceof Error ? error.message : String(error) };
}

/** The problem for a failure of a known type (the STATUS table), else undefined. */
export function problemForFailureType(type: string | undefined, message: string): AppError | undefined {
  const known = type ? STATUS[type] : undefined;
  return known ? new AppError(known[0], known[1], known[2], message) : undefined;
}

export function problemForWorkflowFailure(error: unknown): AppError {
  const { type, message } = rootFailure(error);
  return problemForFailureType(type, message) ?? new AppError(502, 'workflow-failed', 'Workflow Failed', message);
}
