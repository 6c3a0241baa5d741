/**
 * Whether a workflow start that failed started anything, and how to find out when that is not
 * known. A start's failure is either definite (Temporal refused it, or the call failed before
 * anything was sent: no run) or ambiguous (DEADLINE_EXCEEDED, CANCELLED, UNKNOWN, INTERNAL,
 * UNAVAILABLE, ... after the request was sent: the server may have started the run). An
 * ambiguous failure is resolved by issuing the same start again, with the same workflow id: it
 * either starts the run, or finds it started ("already started": the first attempt's run, since
 * the API's workflow ids are unique per request). Pure logic over the attempts the caller makes
 * (services/workflow-runs.ts): no client here, so unit tests drive it with fakes.
 */
import { NamespaceNotFoundError, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ServiceError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { causeChain } from '../core/failures.js';

/** The gRPC status codes a start's failure can carry (numbers as gRPC defines them). */
const GRPC = {
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  ALREADY_EXISTS: 6,
  ABORTED: 10,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
} as const;

/**
 * The codes after which the server may have done what it was asked: the call timed out or was cut
 * off, or the server failed in a way that says nothing of what it did before. Every other code
 * (INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, RESOURCE_EXHAUSTED, FAILED_PRECONDITION,
 * UNAUTHENTICATED, UNIMPLEMENTED, ...) is a refusal: nothing was started.
 */
const AMBIGUOUS_CODES: ReadonlySet<number> = new Set([
  GRPC.CANCELLED,
  GRPC.UNKNOWN,
  GRPC.DEADLINE_EXCEEDED,
  GRPC.ABORTED,
  GRPC.INTERNAL,
  GRPC.UNAVAILABLE,
  GRPC.DATA_LOSS,
]);

/** `exists`: a run of that id exists; `refused`: nothing was started; `ambiguous`: a run may have been started. */
export type StartFailureKind = 'exists' | 'refused' | 'ambiguous';

/** The gRPC status code in the error or its causes (the client wraps it in a ServiceError), if any. */
export function grpcCodeOf(error: unknown): number | undefined {
  for (const e of causeChain(error)) {
    const { code, details } = e as { code?: unknown; details?: unknown };
    if (typeof code === 'number' && typeof details === 'string') return code;
  }
  return undefined;
}

/** Whether the error or one of its causes is a `type`. */
function hasInChain(error: unknown, type: abstract new (...args: never[]) => unknown): boolean {
  for (const e of causeChain(error)) if (e instanceof type) return true;
  return false;
}

/** Classifies a failed start or update-with-start (see the module's comment). */
export function classifyStartFailure(error: unknown): StartFailureKind {
  if (hasInChain(error, WorkflowExecutionAlreadyStartedError)) return 'exists';
  if (hasInChain(error, NamespaceNotFoundError)) return 'refused';
  // The client's name for an update call that hit its deadline or was cancelled.
  if (hasInChain(error, WorkflowUpdateRPCTimeoutOrCancelledError)) return 'ambiguous';
  const code = grpcCodeOf(error);
  if (code === GRPC.ALREADY_EXISTS) return 'exists';
  if (code !== undefined) return AMBIGUOUS_CODES.has(code) ? 'ambiguous' : 'refused';
  // The client's own wrapper of a call that failed without a gRPC status (the connection broke
  // during the call): it was sent. Anything else (an argument the converter refused, say) failed
  // before the request left.
  if (error instanceof ServiceError) return 'ambiguous';
  return 'refused';
}

/** How an ambiguous start is resolved: the attempts after the first, their waits and each one's deadline. */
export interface StartResolutionPolicy {
  /** Waits before each further attempt, in ms: their number is the number of further attempts. */
  backoffMs: readonly number[];
  /** The deadline of each further attempt, in ms. */
  attemptTimeoutMs: number;
}

/**
 * Three more attempts over at most about 1.75 s of waits and 3 × 4 s of calls: well within a
 * request's time, and long enough for a server that was slow to answer one start.
 */
export const START_RESOLUTION: StartResolutionPolicy = Object.freeze({ backoffMs: [250, 500, 1000], attemptTimeoutMs: 4000 });

/**
 * What became of a start:
 * - `started`: an attempt started the run (or found the run our own earlier attempt started,
 *   answered by the attempt itself: an update-with-start that uses the existing run);
 * - `startedEarlier`: after an ambiguous attempt, a further one found the run existing: ours;
 * - `exists`: the first attempt found a run of that id (the caller's to handle, as before);
 * - `refused`: nothing was started;
 * - `unknown`: still ambiguous after every attempt (the run may exist, or appear later).
 */
export type StartOutcome<T> =
  | { kind: 'started'; value: T; attempts: number }
  | { kind: 'startedEarlier'; error: unknown; attempts: number }
  | { kind: 'exists'; error: unknown; attempts: 1 }
  | { kind: 'refused'; error: unknown; attempts: number }
  | { kind: 'unknown'; error: unknown; attempts: number };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Makes the first attempt (`attempt(0)`); on an ambiguous failure, the further attempts the
 * policy allows (`attempt(n)`, n ≥ 1: the caller makes them so that they find an existing run of
 * that id, whatever its state). A further attempt that is refused leaves the first one's outcome
 * unknown: a refusal now says nothing of what the server did with the earlier request.
 */
export async function resolveStart<T>(
  attempt: (n: number) => Promise<T>,
  policy: StartResolutionPolicy = START_RESOLUTION,
  wait: (ms: number) => Promise<void> = sleep,
): Promise<StartOutcome<T>> {
  let firstError: unknown;
  for (let n = 0; ; n++) {
    try {
      return { kind: 'started', value: await attempt(n), attempts: n + 1 };
    } catch (error) {
      const kind = classifyStartFailure(error);
      if (n === 0) {
        if (kind === 'exists') return { kind: 'exists', error, attempts: 1 };
        if (kind === 'refused') return { kind: 'refused', error, attempts: 1 };
        firstError = error;
      } else {
        if (kind === 'exists') return { kind: 'startedEarlier', error, attempts: n + 1 };
        if (kind === 'refused') return { kind: 'unknown', error: firstError, attempts: n + 1 };
      }
      if (n >= policy.backoffMs.length) return { kind: 'unknown', error: firstError, attempts: n + 1 };
      await wait(policy.backoffMs[n]!);
    }
  }
}
