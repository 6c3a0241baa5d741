/**
 * Container workflows run as the control worker runs them, without a server: in the SDK's
 * reusable V8 context (ReusableVMWorkflowCreator, the SDK's internals: no public API runs a
 * workflow and keeps it), from a bundle of Berth's workflow code, each given its first activation
 * by hand. For test/unit/workflow-context-storage.test.ts and bench/workflow-memory.ts.
 */
import { ReusableVMWorkflowCreator } from '@temporalio/worker/lib/workflow/reusable-vm.js';
import { parseWorkflowCode } from '@temporalio/worker/lib/worker.js';
import type { Workflow } from '@temporalio/worker/lib/workflow/interface.js';
import { TypedSearchAttributes, defaultPayloadConverter } from '@temporalio/common';
import { createUnsafeRandomSource } from '@temporalio/workflow/lib/random-helpers.js';
import proto from '@temporalio/proto';
import type { ContainerInput, ContainerState } from '../../contracts/container.js';

export type { Workflow };
export type Command = proto.coresdk.workflow_commands.IWorkflowCommand;

/** The header the tracing interceptors carry a trace in. */
export const TRACE_HEADER = '_tracer-data';

/** A worker's shared context for `code` (a bundle with its inline source map), knowing the activities named. */
export async function workflowContext(code: string, activities: string[]): Promise<ReusableVMWorkflowCreator> {
  return ReusableVMWorkflowCreator.create(parseWorkflowCode(code), 5000, new Set(activities));
}

/** A running container's state, as a continued run carries it: the workflow waits for its next billing period. */
export const runningState = (): ContainerState => ({
  status: 'running', reason: null, reasonCode: null, dockerId: 'd', exitCode: null, charged: 10, segment: 1, segmentStartedAt: Date.now(), periodsCharged: 1,
});

function containerInput(i: number, state?: ContainerState): ContainerInput {
  const id = `vm-${i}`;
  return {
    id,
    userId: 'u-1',
    hostId: 'host-a',
    pricePerPeriod: 10,
    billingPeriodMs: 3_600_000,
    spec: { id, userId: 'u-1', image: 'busybox:1.35', hostIp: '127.0.0.1', hostPort: 20_000 + i, containerPort: 80, memoryMb: 16, cpuMillis: 100, env: [], cmd: null },
    ...(state ? { state } : {}),
  };
}

/**
 * Container workflow `i` in `context`, given its first activation (started with `state`, or
 * created; in the trace `traceparent` when given); resolves to it and the commands it answered.
 */
export async function startContainer(
  context: ReusableVMWorkflowCreator,
  i: number,
  opts: { state?: ContainerState; traceparent?: string } = {},
): Promise<{ workflow: Workflow; commands: Command[] }> {
  const now = Date.now();
  const runId = `run-${i}`;
  const workflowId = `container-vm-${i}`;
  const workflow = await context.createWorkflow({
    info: {
      workflowId, runId, workflowType: 'container', searchAttributes: {}, typedSearchAttributes: new TypedSearchAttributes(),
      taskQueue: 'berth-control', namespace: 'default', firstExecutionRunId: runId, originalExecutionRunId: runId,
      startTime: new Date(now), runStartTime: new Date(now), taskTimeoutMs: 10_000, attempt: 1, historyLength: 3, historySize: 0,
      continueAsNewSuggested: false, suggestedContinueAsNewReasons: undefined, targetWorkerDeploymentVersionChanged: false, currentBuildId: '', priority: {},
      unsafe: { now: () => Date.now(), isReplaying: false, isReplayingHistoryEvents: false, random: createUnsafeRandomSource(Math.random) },
    },
    randomnessSeed: [1, 2, 3, 4, 5, 6, 7, 8],
    now,
    showStackTraceSources: false,
    failureExceptionTypeNames: [],
  });
  const timestamp = { seconds: Math.floor(now / 1000), nanos: 0 };
  const activation = proto.coresdk.workflow_activation.WorkflowActivation.fromObject({
    runId, timestamp, isReplaying: false, historyLength: 3,
    jobs: [{
      initializeWorkflow: {
        workflowId, workflowType: 'container', randomnessSeed: 1234 + i, firstExecutionRunId: runId, attempt: 1, startTime: timestamp,
        arguments: [defaultPayloadConverter.toPayload(containerInput(i, opts.state))],
        headers: opts.traceparent ? { [TRACE_HEADER]: defaultPayloadConverter.toPayload({ traceparent: opts.traceparent }) } : {},
      },
    }],
  });
  const completion = await workflow.activate(activation);
  await workflow.getAndResetSinkCalls();
  if (!completion.successful) throw new Error(`container workflow ${i}: ${JSON.stringify(completion.failed)}`);
  return { workflow, commands: completion.successful.commands ?? [] };
}

/** The workflow's pending promises, from the SDK's store of their stacks (throws when the SDK keeps it elsewhere). */
export function pendingPromises(workflow: Workflow): object[] {
  const store = (workflow as unknown as { activator?: { promiseStackStore?: { promiseToStack?: Map<object, unknown> } } }).activator?.promiseStackStore?.promiseToStack;
  if (!store) throw new Error("the SDK's store of a workflow's pending promises was not found");
  return [...store.keys()];
}
