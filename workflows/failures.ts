/**
 * Workflow-side failure helpers (deterministic: only @temporalio/workflow). To read a failure's
 * type, use core/failures.ts failureTypeOf (the one walk of a cause chain).
 */
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';

/**
 * An activity's client-facing failure, raised as the workflow's own with the same type and
 * message (non-retryable), so that callers (the API, the CLI, a parent workflow) read the reason
 * directly; any other error is returned as it is. For workflows whose failure is their caller's
 * answer (pullImage, removeImage; the DCU and container workflows may use it too):
 * `catch (error) { throw asWorkflowFailure(error); }`.
 */
export function asWorkflowFailure(error: unknown): unknown {
  if (error instanceof ActivityFailure && error.cause instanceof ApplicationFailure) {
    return ApplicationFailure.create({ message: error.cause.message, type: error.cause.type ?? undefined, nonRetryable: true });
  }
  return error;
}
