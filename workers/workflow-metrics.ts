/**
 * The control worker's side of workflows/metrics-interceptor.ts: the `berthMetrics` sink, which
 * records a pull's, a DCU task's or a nightly release's end in this process's metrics
 * (core/metrics.ts), timed from the execution chain's start to now.
 */
import type { InjectedSinks } from '@temporalio/worker';
import type { MetricsSinks, WorkflowEnd } from '../workflows/metrics-interceptor.js';
import { recordDcuTask, recordPull, recordRelease } from '../core/metrics.js';

/** Records one execution's end; `seconds` since its chain started. */
export function recordWorkflowEnd(end: WorkflowEnd, seconds: number): void {
  switch (end.kind) {
    case 'pull':
      return recordPull(end.outcome, seconds, end.reason);
    case 'dcu':
      return recordDcuTask(end.outcome);
    case 'release':
      return recordRelease(end.outcome, seconds, end.counts);
  }
}

/** The sinks a worker running Berth's workflows is given (with the interceptor module in its workflow code). */
export function workflowMetricsSinks(): InjectedSinks<MetricsSinks> {
  return {
    berthMetrics: {
      workflowEnded: {
        fn: (info, end) => recordWorkflowEnd(end, Math.max(0, Date.now() - info.startTime.getTime()) / 1000),
        callDuringReplay: false,
      },
    },
  };
}
