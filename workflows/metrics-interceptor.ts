/**
 * How a workflow's end becomes a metric, without a command of its own: this workflow interceptor
 * (in the control worker's `interceptors.workflowModules` and in the prebuilt bundle, see
 * workers/workflow-code.ts) watches each pullImage, dcu and nightlyRelease execution end and
 * tells its worker through the `berthMetrics` sink, which records the outcome in the worker
 * process (workers/workflow-metrics.ts, core/metrics.ts). A sink call is not a command and is
 * not in the history: the workflows' commands, and their replays, are unchanged. It is not
 * called on replay (callDuringReplay false), so a query or a cache eviction never counts an end twice.
 *
 * Only an end that closes the execution counts: a result, or a TemporalFailure (which fails the
 * workflow); any other error fails the workflow task, which Temporal retries, and is not an end.
 * A continue-as-new is not an end either.
 */
import {
  ApplicationFailure,
  CancelledFailure,
  TemporalFailure,
  TimeoutFailure,
  proxySinks,
  type Sinks,
  type WorkflowExecuteInput,
  type WorkflowInboundCallsInterceptor,
  type WorkflowInterceptorsFactory,
  type Next,
  workflowInfo,
} from '@temporalio/workflow';
import type { DcuOutcome, PullOutcome, ReleaseCounts } from '../core/metrics.js';
import { FailureType, failureTypeOf } from '../core/failures.js';
import { pullImageWorkflow, type PullImageResult } from '../contracts/pull-image.js';
import { dcuWorkflow } from '../contracts/dcu.js';
import { nightlyReleaseWorkflow, type ReleaseReport } from '../contracts/nightly-release.js';

/** What the sink is told: an execution's end, as its metrics need it (small and JSON-safe). */
export type WorkflowEnd =
  | { kind: 'pull'; outcome: PullOutcome; reason?: string }
  | { kind: 'dcu'; outcome: DcuOutcome }
  | { kind: 'release'; outcome: 'completed' | 'failed'; counts?: ReleaseCounts };

export interface MetricsSinks extends Sinks {
  berthMetrics: {
    workflowEnded(end: WorkflowEnd): void;
  };
}

/** A pull's failure as `berth_pulls_total{outcome="failed",reason}` names it: a short, bounded code. */
const PULL_FAILURE_REASONS: Readonly<Record<string, string>> = {
  [FailureType.InsufficientFunds]: 'insufficient_funds',
  [FailureType.ImageNotFound]: 'not_found',
  [FailureType.RegistryUnauthorized]: 'unauthorized',
  [FailureType.RegistryError]: 'registry_error',
  [FailureType.RegistryUnreachable]: 'registry_unreachable',
  [FailureType.DockerError]: 'docker_error',
};

/**
 * The reason code of a pull's failure: the failure type of the first ApplicationFailure in its
 * cause chain; a host that never took the task (schedule-to-start timeout: its worker is down)
 * host_unreachable; another timeout, timeout; a cancellation, cancelled; else other.
 */
export function pullFailureReason(error: unknown): string {
  let e: unknown = error;
  for (let depth = 0; depth < 32 && e instanceof Error; depth++) {
    if (e instanceof ApplicationFailure) return (e.type && PULL_FAILURE_REASONS[e.type]) ?? 'other';
    if (e instanceof TimeoutFailure) return e.timeoutType === 'SCHEDULE_TO_START' ? 'host_unreachable' : 'timeout';
    if (e instanceof CancelledFailure) return 'cancelled';
    e = e.cause;
  }
  return 'other';
}

/**
 * What an execution's end means for the metrics, or null for a workflow type they do not follow.
 * Pure: `ended` is the workflow's result, or the TemporalFailure it failed with.
 */
export function workflowEnd(workflowType: string, ended: { result: unknown } | { failure: unknown }): WorkflowEnd | null {
  const failed = 'failure' in ended;
  switch (workflowType) {
    case pullImageWorkflow.type: {
      if (failed) return { kind: 'pull', outcome: 'failed', reason: pullFailureReason(ended.failure) };
      const result = ended.result as PullImageResult;
      return { kind: 'pull', outcome: result.deduped ? 'deduped' : result.pulled ? 'pulled' : 'present' };
    }
    case dcuWorkflow.type: {
      if (!failed) return { kind: 'dcu', outcome: 'succeeded' };
      const cancelled = ended.failure instanceof CancelledFailure || failureTypeOf(ended.failure) === FailureType.DcuCancelled;
      return { kind: 'dcu', outcome: cancelled ? 'cancelled' : 'failed' };
    }
    case nightlyReleaseWorkflow.type: {
      if (failed) return { kind: 'release', outcome: 'failed' };
      const report = ended.result as ReleaseReport;
      return { kind: 'release', outcome: 'completed', counts: { containers: { ...report.containers }, images: { ...report.images } } };
    }
    default:
      return null;
  }
}

const sinks = proxySinks<MetricsSinks>();

class EndMetrics implements WorkflowInboundCallsInterceptor {
  async execute(input: WorkflowExecuteInput, next: Next<WorkflowInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const { workflowType } = workflowInfo();
    let end: WorkflowEnd | null;
    let result: unknown;
    try {
      result = await next(input);
      end = workflowEnd(workflowType, { result });
    } catch (error) {
      // Only a TemporalFailure fails the execution; a continue-as-new (ContinueAsNew) or another error does not end it.
      if (!(error instanceof TemporalFailure)) throw error;
      end = workflowEnd(workflowType, { failure: error });
      if (end) sinks.berthMetrics.workflowEnded(end);
      throw error;
    }
    if (end) sinks.berthMetrics.workflowEnded(end);
    return result;
  }
}

export const interceptors: WorkflowInterceptorsFactory = () => ({ inbound: [new EndMetrics()] });
