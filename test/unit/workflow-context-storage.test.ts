/**
 * The control worker's memory per cached workflow does not grow with its cache
 * (workflows/otel-context-storage.ts): container workflows run, as the worker runs them, in one
 * reusable V8 context (the SDK's ReusableVMWorkflowCreator, with Berth's bundle: its interceptor
 * and preloaded modules), and each one's pending promises carry the tracing context's storage
 * once, not once per cached workflow (on Node 20 every enabled AsyncLocalStorage adds a property
 * to every promise). Tracing still works: the trace a workflow was started in goes on, in each
 * workflow its own, to the activity it schedules.
 *
 * The creator and the activator's promise store are the SDK's internals (no public API shows a
 * workflow's promises); the test asserts it found them, so an SDK that moves them fails it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReusableVMWorkflowCreator } from '@temporalio/worker/lib/workflow/reusable-vm.js';
import { parseWorkflowCode } from '@temporalio/worker/lib/worker.js';
import type { Workflow } from '@temporalio/worker/lib/workflow/interface.js';
import { DefaultLogger } from '@temporalio/worker';
import { TypedSearchAttributes, defaultPayloadConverter } from '@temporalio/common';
import proto from '@temporalio/proto';
import { createUnsafeRandomSource } from '@temporalio/workflow/lib/random-helpers.js';
import { bundleWorkflows } from '../../workers/workflow-code.js';
import type { ContainerInput, ContainerState } from '../../contracts/container.js';

const CACHED = 20;
const TRACE_HEADER = '_tracer-data';

const bundle = parseWorkflowCode(await bundleWorkflows(new DefaultLogger('WARN')));
const creator = await ReusableVMWorkflowCreator.create(bundle, 5000, new Set(['chargeContainerPeriod']));

function containerInput(i: number, state?: ContainerState): ContainerInput {
  const id = `ctx-${i}`;
  return {
    id,
    userId: 'u-1',
    hostId: 'host-a',
    pricePerPeriod: 10,
    billingPeriodMs: 3_600_000,
    spec: { id, userId: 'u-1', image: 'busybox:1.35', hostIp: '127.0.0.1', hostPort: 20_000 + i, containerPort: 80, memoryMb: 8, cpuMillis: 100, env: [], cmd: null },
    ...(state ? { state } : {}),
  };
}

const traceparent = (i: number) => `00-${String(i + 1).padStart(32, '0')}-b7ad6b7169203331-01`;

/** A container workflow in the worker's context, given its first activation; resolves to it and its commands. */
async function startContainer(i: number, state?: ContainerState): Promise<{ workflow: Workflow; commands: proto.coresdk.workflow_commands.IWorkflowCommand[] }> {
  const now = Date.now();
  const runId = `run-${i}`;
  const workflow = await creator.createWorkflow({
    info: {
      workflowId: `container-ctx-${i}`, runId, workflowType: 'container', searchAttributes: {}, typedSearchAttributes: new TypedSearchAttributes(),
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
        workflowId: `container-ctx-${i}`, workflowType: 'container', randomnessSeed: 1234 + i, firstExecutionRunId: runId, attempt: 1, startTime: timestamp,
        arguments: [defaultPayloadConverter.toPayload(containerInput(i, state))],
        headers: { [TRACE_HEADER]: defaultPayloadConverter.toPayload({ traceparent: traceparent(i) }) },
      },
    }],
  });
  const completion = await workflow.activate(activation);
  await workflow.getAndResetSinkCalls();
  assert.ok(completion.successful, JSON.stringify(completion.failed));
  return { workflow, commands: completion.successful.commands ?? [] };
}

test(`with ${CACHED} container workflows cached, a pending promise carries the tracing storage once`, async () => {
  const running: ContainerState = { status: 'running', reason: null, reasonCode: null, dockerId: 'd', exitCode: null, charged: 10, segment: 1, segmentStartedAt: Date.now(), periodsCharged: 1 };
  const cached: Workflow[] = [];
  for (let i = 0; i < CACHED; i++) {
    const { workflow, commands } = await startContainer(i, running);
    // Settled: a running container waits for its next billing period.
    assert.deepEqual(Array.from(commands, (c) => Object.keys(c)[0]), ['startTimer']);
    cached.push(workflow);
  }
  const store = (cached.at(-1) as unknown as { activator?: { promiseStackStore?: { promiseToStack?: Map<object, unknown> } } }).activator?.promiseStackStore?.promiseToStack;
  assert.ok(store && store.size > 0, "the SDK's store of a workflow's pending promises was not found");
  // One property per enabled AsyncLocalStorage: the SDK's own and the shared tracing storage, whatever the cache holds.
  const storages = [...store.keys()].map((p) => Object.getOwnPropertySymbols(p).filter((s) => s.description === 'kResourceStore').length);
  assert.ok(Math.max(...storages) <= 3, `a pending promise carries ${Math.max(...storages)} storages with ${CACHED} workflows cached`);
  for (const workflow of cached) await workflow.dispose();
});

test('each workflow’s activity continues the trace that workflow was started in', async () => {
  const started = [await startContainer(100), await startContainer(101)];
  for (const [k, { commands, workflow }] of started.entries()) {
    const schedule = commands.find((c) => c.scheduleLocalActivity)?.scheduleLocalActivity;
    assert.equal(schedule?.activityType, 'chargeContainerPeriod');
    const header = schedule.headers?.[TRACE_HEADER];
    assert.ok(header, 'the activity carries no trace header');
    const carried = defaultPayloadConverter.fromPayload<{ traceparent?: string }>(header).traceparent ?? '';
    const [, traceId, spanId] = traceparent(100 + k).split('-');
    // The same trace, under a span of this workflow's own.
    assert.match(carried, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    assert.notEqual(carried.split('-')[2], spanId);
    await workflow.dispose();
  }
});
