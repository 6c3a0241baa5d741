/**
 * Failure types carried by Temporal ApplicationFailures: activities raise them, workflows pass
 * them on, the API maps them to HTTP (services/workflow-failures.ts). Every type Berth raises is
 * a member here; nothing else spells one. Only @temporalio/common is imported, so workflows may
 * use this module.
 */
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';

export const FailureType = {
  ImageNotFound: 'ImageNotFound',
  RegistryUnauthorized: 'RegistryUnauthorized',
  InsufficientFunds: 'InsufficientFunds',
  ImageInUse: 'ImageInUse',
  /** The record a pull would answer is still being removed after the waits of one attempt: retried. */
  ImageBeingRemoved: 'ImageBeingRemoved',
  /** What answered at the registry's address is not a registry, or it never answered. */
  RegistryError: 'RegistryError',
  /** A Docker call failed in a way another attempt may mend (a network that vanished, a daemon error): retried. */
  DockerError: 'DockerError',
  /** The registry could not be reached (DNS, connection): retried. */
  RegistryUnreachable: 'RegistryUnreachable',
  /** A Docker user network of that name exists on the host but is not Berth's network of this user. */
  NetworkConflict: 'NetworkConflict',
  /** Docker refused the container's specification (bad command, bad limits): retrying cannot help. */
  ContainerInvalid: 'ContainerInvalid',
  /** The release found a live record whose workflow is gone. */
  ContainerOrphaned: 'ContainerOrphaned',
  /** The container's workflow could not remove it. */
  ContainerRemoveFailed: 'ContainerRemoveFailed',
  /** A state change the state machine does not allow (a bug or a stale retry): never retried. */
  IllegalTransition: 'IllegalTransition',
  DcuCancelled: 'DcuCancelled',
  DcuFailed: 'DcuFailed',
  DcuTaskNotFound: 'DcuTaskNotFound',
  DcuNotPackaged: 'DcuNotPackaged',
  DcuCleanupFailed: 'DcuCleanupFailed',
  /** The host's archive disk has less free than BERTH_DCU_MIN_FREE_MB: it refuses new DCU work (non-retryable). */
  DcuDiskFull: 'DcuDiskFull',
  /** `docker save | gzip` failed: retried. */
  CompressFailed: 'CompressFailed',
  /** An archive file name or object name that is not one safe name (a crafted input): never retried. */
  InvalidArchiveName: 'InvalidArchiveName',
  InvalidObjectName: 'InvalidObjectName',
  /** The archive to upload is no longer on the host (swept): never retried. */
  ArchiveMissing: 'ArchiveMissing',
  /** The archive's bytes changed since it was compressed: never retried. */
  ChecksumMismatch: 'ChecksumMismatch',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

/** Retrying these cannot help. */
export const NON_RETRYABLE: FailureType[] = [
  FailureType.ImageNotFound,
  FailureType.RegistryUnauthorized,
  FailureType.InsufficientFunds,
  FailureType.ImageInUse,
  FailureType.RegistryError,
  FailureType.ContainerInvalid,
  FailureType.IllegalTransition,
  FailureType.DcuTaskNotFound,
  FailureType.DcuNotPackaged,
];

/** What went wrong, at the root of an error's cause chain. */
export interface RootCause {
  message: string;
  /** The failure type of the first ApplicationFailure in the chain, if any. */
  type?: string;
}

/**
 * The one walk of a cause chain. An ApplicationFailure (an activity's or a workflow's own
 * failure) is the reason: its type and message, not "Activity task failed" or "Workflow
 * execution failed". Without one, the innermost error's message: the driver's "connect
 * ECONNREFUSED" rather than drizzle's "Failed query".
 */
export function rootCause(error: unknown): RootCause {
  let e: unknown = error;
  for (let depth = 0; depth < 32; depth++) {
    if (e instanceof ApplicationFailure) return { message: e.message, type: e.type ?? undefined };
    const cause = (e as { cause?: unknown } | null | undefined)?.cause;
    if (!(cause instanceof Error)) break;
    e = cause;
  }
  return { message: e instanceof Error ? e.message : String(e) };
}

/** An error and its causes, outermost first (at most 8: a chain is never that deep). */
export function* causeChain(error: unknown): Generator<object> {
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 8; e = (e as { cause?: unknown }).cause, depth++) yield e;
}

/** The failure type at the root of an error (an activity's ApplicationFailure), if any. */
export const failureTypeOf = (error: unknown): string | undefined => rootCause(error).type;

/**
 * An activity's client-facing failure, raised as the workflow's own with the same type and
 * message (non-retryable), so that callers (the API, the CLI, a parent workflow) read the reason
 * directly; any other error is returned as it is. For workflows whose failure is their caller's
 * answer (pullImage, removeImage): `catch (error) { throw asWorkflowFailure(error); }`.
 */
export function asWorkflowFailure(error: unknown): unknown {
  if (error instanceof ActivityFailure && error.cause instanceof ApplicationFailure) {
    return ApplicationFailure.create({ message: error.cause.message, type: error.cause.type ?? undefined, nonRetryable: true });
  }
  return error;
}
