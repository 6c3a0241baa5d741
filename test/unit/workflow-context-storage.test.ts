/**
 * The control worker's memory per cached workflow does not grow with its cache
 * (workflows/otel-context-storage.ts): container workflows run, as the worker runs them, in one
 * reusable V8 context with Berth's bundle (its interceptor and preloaded modules:
 * test/support/workflow-vm.ts), and each one's pending promises carry the tracing context's
 * storage once, not once per cached workflow (on Node 20 every enabled AsyncLocalStorage adds a
 * property to every promise). Tracing still works: the trace a workflow was started in goes on,
 * in each workflow its own, to the activity it schedules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DefaultLogger } from '@temporalio/worker';
import { defaultPayloadConverter } from '@temporalio/common';
import { bundleWorkflows } from '../../workers/workflow-code.js';
import { TRACE_HEADER, pendingPromises, runningState, startContainer, workflowContext, type Workflow } from '../support/workflow-vm.js';

const CACHED = 20;

const context = await workflowContext(await bundleWorkflows({ logger: new DefaultLogger('WARN') }), ['chargeContainerPeriod']);

const traceparent = (i: number) => `00-${String(i + 1).padStart(32, '0')}-b7ad6b7169203331-01`;

test(`with ${CACHED} container workflows cached, a pending promise carries the tracing storage once`, async () => {
  const cached: Workflow[] = [];
  for (let i = 0; i < CACHED; i++) {
    const { workflow, commands } = await startContainer(context, i, { state: runningState(), traceparent: traceparent(i) });
    // Settled: a running container waits for its next billing period.
    assert.deepEqual(Array.from(commands, (c) => Object.keys(c)[0]), ['startTimer']);
    cached.push(workflow);
  }
  const promises = pendingPromises(cached.at(-1)!);
  assert.ok(promises.length > 0);
  // One property per enabled AsyncLocalStorage: the SDK's own and the shared tracing storage, whatever the cache holds.
  const storages = promises.map((p) => Object.getOwnPropertySymbols(p).filter((s) => s.description === 'kResourceStore').length);
  assert.ok(Math.max(...storages) <= 3, `a pending promise carries ${Math.max(...storages)} storages with ${CACHED} workflows cached`);
  for (const workflow of cached) await workflow.dispose();
});

test('each workflow’s activity continues the trace that workflow was started in', async () => {
  const started = [await startContainer(context, 100, { traceparent: traceparent(100) }), await startContainer(context, 101, { traceparent: traceparent(101) })];
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
