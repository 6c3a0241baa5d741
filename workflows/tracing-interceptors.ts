/**
 * Not a workflow: the workflow interceptors of tracing, bundled with the workflows
 * (workers/workflow-code.ts WORKFLOW_INTERCEPTOR_MODULES) so that every workflow continues the
 * trace its starter put in its headers (core/tracing.ts): a RunWorkflow span, and a
 * StartActivity span whose context travels in each activity's headers to the worker that runs
 * it. Spans leave the sandbox through the `exporter` sink (workers/worker-tracing.ts), which drops
 * them when the worker has no tracing: the bundle is the same either way, so turning tracing on
 * or off never changes the code a workflow replays on.
 *
 * They emit no command and touch no workflow state: the commands of a workflow are the same with
 * them as without (test/unit/replay.test.ts replays histories recorded before they existed).
 */
import type { WorkflowInterceptors } from '@temporalio/workflow';
import {
  OpenTelemetryInboundInterceptor,
  OpenTelemetryInternalsInterceptor,
  OpenTelemetryOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/workflow/index.js';

export const interceptors = (): WorkflowInterceptors => ({
  inbound: [new OpenTelemetryInboundInterceptor()],
  outbound: [new OpenTelemetryOutboundInterceptor()],
  internals: [new OpenTelemetryInternalsInterceptor()],
});
