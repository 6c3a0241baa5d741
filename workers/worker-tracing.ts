/**
 * A worker's part of tracing (core/tracing.ts): the activity interceptors that continue the trace
 * a workflow put in an activity's headers (a RunActivity span on this worker, trace and span ids
 * on the activity's log lines), and the `exporter` sink through which the workflow interceptors
 * (workflows/tracing-interceptors.ts) hand over their spans. Without tracing no interceptor is
 * installed and the sink drops what it gets: the workflow code is bundled the same either way.
 */
import type { ActivityInterceptorsFactory, InjectedSinks, WorkerOptions } from '@temporalio/worker';
import {
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  makeWorkflowExporter,
} from '@temporalio/interceptors-opentelemetry/lib/worker/index.js';
import type { OpenTelemetryWorkflowExporter } from '@temporalio/interceptors-opentelemetry/lib/workflow/definitions.js';
import type { Tracing } from '../core/tracing.js';

type TracedOptions = Pick<WorkerOptions, 'interceptors' | 'sinks'>;

/** The sink the workflow interceptors call, whether or not this worker traces. */
function workflowSpanSink(tracing: Tracing | null): InjectedSinks<{ exporter: OpenTelemetryWorkflowExporter }> {
  if (tracing) return { exporter: makeWorkflowExporter(tracing.spanProcessor, tracing.resource) };
  return { exporter: { export: { fn: () => undefined } } };
}

/** A RunActivity span per activity, in the trace of the workflow that scheduled it; its ids on the activity's log lines. */
function activitySpans(tracing: Tracing): ActivityInterceptorsFactory {
  return (ctx) => ({
    inbound: new OpenTelemetryActivityInboundInterceptor(ctx, { tracer: tracing.tracer }),
    outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
  });
}

/**
 * `options` with tracing: its activity interceptors first (outermost, so a span records an
 * activity's error as its workflow sees it, after run-worker.ts's scrubbing) and the sink.
 */
export function withTracing<O extends Partial<WorkerOptions>>(options: O, tracing: Tracing | null): O & TracedOptions {
  const own = options.interceptors?.activity ?? [];
  return {
    ...options,
    interceptors: { ...options.interceptors, activity: tracing ? [activitySpans(tracing), ...own] : own },
    sinks: { ...options.sinks, ...workflowSpanSink(tracing) },
  };
}
