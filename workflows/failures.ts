import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';

/** The ApplicationFailure type at the root of an activity's failure, if any. */
export function failureType(error: unknown): string | undefined {
  if (error instanceof ActivityFailure && error.cause instanceof ApplicationFailure) return error.cause.type ?? undefined;
  if (error instanceof ApplicationFailure) return error.type ?? undefined;
  return undefined;
}

/**
 * An activity's client-facing failure, raised as the workflow's own with the same
 * type and message, so that callers (the API, the CLI) read the reason directly.
 */
export function asWorkflowFailure(error: unknown): unknown {
  if (error instanceof ActivityFailure && error.cause instanceof ApplicationFailure) {
    return ApplicationFailure.create({ message: error.cause.message, type: error.cause.type ?? undefined, nonRetryable: true });
  }
  return error;
}
