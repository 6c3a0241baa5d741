/**
 * A start's failure classified as definite or ambiguous, and an ambiguous one resolved by
 * starting again with the same id (services/workflow-start-outcome.ts, services/workflow-runs.ts),
 * against a fake of the narrow client interface workflow-runs uses: which calls are made, with
 * which policies and update id, and what the caller is answered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ServiceError,
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  NamespaceNotFoundError,
  ApplicationFailure,
} from '@temporalio/client';
import { classifyStartFailure, resolveStart } from '../../services/workflow-start-outcome.js';
import { createWorkflowRuns, type WorkflowStarter } from '../../services/workflow-runs.js';
import { AppError } from '../../core/errors.js';
import { defineWorkflow } from '../../contracts/workflow.js';
import { defineUpdate } from '@temporalio/workflow';

/** A gRPC status as the client wraps it: a ServiceError whose cause carries the code. */
const grpc = (code: number, details: string) =>
  new ServiceError('Failed to start Workflow', { cause: Object.assign(new Error(`${code} ${details}`), { code, details, metadata: {} }) });
const DEADLINE = () => grpc(4, 'context deadline exceeded');
const already = () => new WorkflowExecutionAlreadyStartedError('Workflow execution already started', 'w-1', 'demo');

test('a start failure is definite or ambiguous by what it says of the request', () => {
  for (const [code, kind] of [
    [4, 'ambiguous'], // DEADLINE_EXCEEDED
    [1, 'ambiguous'], // CANCELLED
    [2, 'ambiguous'], // UNKNOWN
    [13, 'ambiguous'], // INTERNAL
    [14, 'ambiguous'], // UNAVAILABLE
    [3, 'refused'], // INVALID_ARGUMENT
    [5, 'refused'], // NOT_FOUND
    [7, 'refused'], // PERMISSION_DENIED
    [8, 'refused'], // RESOURCE_EXHAUSTED
    [9, 'refused'], // FAILED_PRECONDITION
    [16, 'refused'], // UNAUTHENTICATED
    [6, 'exists'], // ALREADY_EXISTS, as the multi-operation failure passes it on
  ] as const) {
    assert.equal(classifyStartFailure(grpc(code, 'x')), kind, `code ${code}`);
  }
  assert.equal(classifyStartFailure(already()), 'exists');
  assert.equal(classifyStartFailure(new NamespaceNotFoundError('nope')), 'refused');
  assert.equal(classifyStartFailure(new WorkflowUpdateRPCTimeoutOrCancelledError('timed out')), 'ambiguous');
  // The client's wrapper of a call that broke without a status was sent; a converter's error was not.
  assert.equal(classifyStartFailure(new ServiceError('Unexpected error while making gRPC request')), 'ambiguous');
  assert.equal(classifyStartFailure(new TypeError('cannot encode')), 'refused');
});

test('resolveStart: an ambiguous first attempt is retried; "already started" then is ours; a refusal then leaves it unknown', async () => {
  const noWait = async () => undefined;
  const policy = { backoffMs: [1, 1, 1], attemptTimeoutMs: 100 };
  const script = (...steps: Array<() => unknown>) => {
    const calls: number[] = [];
    return {
      calls,
      attempt: async (n: number) => {
        calls.push(n);
        return steps[n]!();
      },
    };
  };
  const throws = (e: unknown) => () => {
    throw e;
  };

  let s = script(() => 'run');
  assert.deepEqual(await resolveStart(s.attempt, policy, noWait), { kind: 'started', value: 'run', attempts: 1 });

  s = script(throws(DEADLINE()), throws(already()));
  assert.equal((await resolveStart(s.attempt, policy, noWait)).kind, 'startedEarlier');
  assert.deepEqual(s.calls, [0, 1]);

  s = script(throws(DEADLINE()), throws(DEADLINE()), () => 'run');
  assert.deepEqual(await resolveStart(s.attempt, policy, noWait), { kind: 'started', value: 'run', attempts: 3 });

  s = script(throws(grpc(3, 'bad')));
  assert.equal((await resolveStart(s.attempt, policy, noWait)).kind, 'refused');
  assert.deepEqual(s.calls, [0]);

  s = script(throws(already()));
  assert.equal((await resolveStart(s.attempt, policy, noWait)).kind, 'exists');

  const first = DEADLINE();
  s = script(throws(first), throws(grpc(8, 'busy')));
  const refusedLater = await resolveStart(s.attempt, policy, noWait);
  assert.equal(refusedLater.kind, 'unknown');
  assert.equal((refusedLater as { error: unknown }).error, first, 'the first failure is the one reported');

  s = script(throws(DEADLINE()), throws(DEADLINE()), throws(DEADLINE()), throws(DEADLINE()), () => 'never');
  const waits: number[] = [];
  const unknown = await resolveStart(s.attempt, { backoffMs: [10, 20, 30], attemptTimeoutMs: 100 }, async (ms) => void waits.push(ms));
  assert.equal(unknown.kind, 'unknown');
  assert.deepEqual(s.calls, [0, 1, 2, 3], 'one attempt and three more, no more');
  assert.deepEqual(waits, [10, 20, 30]);
});

// -------------------------------------------------------------------------------------------
// workflow-runs over a fake client

const demo = defineWorkflow<[string], string>('demo', 'demo-queue');
const goUpdate = defineUpdate<string>('go');
const startArgs = { workflowId: 'w-1', args: ['x'] as [string], subject: { userId: 'u-1' } };

interface Call {
  method: string;
  options: Record<string, unknown>;
  deadline: boolean;
}

/** A fake of the client: each method answers from its script, one entry per call. */
function fakeClient(scripts: {
  start?: Array<(options: Record<string, unknown>) => unknown>;
  executeUpdateWithStart?: Array<(op: WithStartWorkflowOperation<never>) => unknown>;
  startUpdateWithStart?: Array<(op: WithStartWorkflowOperation<never>) => unknown>;
  executeUpdate?: Array<(options: Record<string, unknown>) => unknown>;
}) {
  const calls: Call[] = [];
  let inDeadline = false;
  const next = <A>(name: keyof typeof scripts, arg: A) => {
    const step = (scripts[name] as Array<(a: A) => unknown> | undefined)?.shift();
    if (!step) throw new Error(`unexpected ${name}`);
    return Promise.resolve().then(() => step(arg));
  };
  const handle = (workflowId: string) => ({
    workflowId,
    executeUpdate: (_def: unknown, options: Record<string, unknown>) => {
      calls.push({ method: 'executeUpdate', options, deadline: inDeadline });
      return next('executeUpdate', options);
    },
  });
  const client = {
    withDeadline: async <R>(_deadline: number | Date, fn: () => Promise<R>) => {
      inDeadline = true;
      try {
        return await fn();
      } finally {
        inDeadline = false;
      }
    },
    workflow: {
      start: (_type: string, options: Record<string, unknown>) => {
        calls.push({ method: 'start', options, deadline: inDeadline });
        return next('start', options);
      },
      executeUpdateWithStart: (_def: unknown, options: { startWorkflowOperation: WithStartWorkflowOperation<never>; updateId: string }) => {
        calls.push({ method: 'executeUpdateWithStart', options: { ...options.startWorkflowOperation.options, updateId: options.updateId }, deadline: inDeadline });
        return next('executeUpdateWithStart', options.startWorkflowOperation);
      },
      startUpdateWithStart: (_def: unknown, options: { startWorkflowOperation: WithStartWorkflowOperation<never>; updateId: string; waitForStage: string }) => {
        calls.push({
          method: 'startUpdateWithStart',
          options: { ...options.startWorkflowOperation.options, updateId: options.updateId, waitForStage: options.waitForStage },
          deadline: inDeadline,
        });
        return next('startUpdateWithStart', options.startWorkflowOperation);
      },
      getHandle: (workflowId: string) => handle(workflowId),
    },
  };
  return { calls, client: client as unknown as WorkflowStarter };
}

/** What the real client does once it has the start's response: settles the operation's handle (a private symbol). */
function decide(op: WithStartWorkflowOperation<never>) {
  const resolve = Object.getOwnPropertySymbols(op)
    .map((s) => (op as unknown as Record<symbol, unknown>)[s])
    .find((v): v is (h: unknown) => void => typeof v === 'function');
  resolve!({ workflowId: 'w-1' });
}

const fastRetries = { backoffMs: [1, 1, 1], attemptTimeoutMs: 1000 };
const throwing = (e: unknown) => () => {
  throw e;
};

test('start: a deadline, then "already started" on the same id: the run is ours, answered as started', async () => {
  const { calls, client } = fakeClient({ start: [throwing(DEADLINE()), throwing(already())] });
  const runs = createWorkflowRuns({ temporal: client, waitTimeoutMs: 1000, resolution: fastRetries });
  const handle = await runs.start(demo, startArgs);
  assert.equal(handle.workflowId, 'w-1');
  assert.deepEqual(
    calls.map((c) => [c.method, c.options.workflowId, c.options.workflowIdReusePolicy, c.deadline]),
    [
      ['start', 'w-1', undefined, false],
      ['start', 'w-1', 'REJECT_DUPLICATE', true],
    ],
  );
});

test('start: a refusal is a 503 at once; an outcome still unknown after the attempts is a 503 that says so', async () => {
  let fake = fakeClient({ start: [throwing(grpc(3, 'invalid search attribute'))] });
  let runs = createWorkflowRuns({ temporal: fake.client, waitTimeoutMs: 1000, resolution: fastRetries });
  await assert.rejects(runs.start(demo, startArgs), (e: unknown) => {
    assert.ok(e instanceof AppError);
    assert.equal(e.status, 503);
    assert.match(e.detail ?? '', /could not be started; try again shortly \(3 invalid search attribute\)/);
    assert.equal((e as unknown as { startOutcome: string }).startOutcome, 'refused');
    return true;
  });
  assert.equal(fake.calls.length, 1);

  fake = fakeClient({ start: [throwing(DEADLINE()), throwing(DEADLINE()), throwing(DEADLINE()), throwing(DEADLINE())] });
  runs = createWorkflowRuns({ temporal: fake.client, waitTimeoutMs: 1000, resolution: fastRetries });
  await assert.rejects(runs.start(demo, startArgs), (e: unknown) => {
    assert.ok(e instanceof AppError);
    assert.equal(e.status, 503);
    assert.match(e.detail ?? '', /could not be confirmed started; try again shortly/);
    assert.equal((e as unknown as { startOutcome: string }).startOutcome, 'unknown');
    return true;
  });
  assert.equal(fake.calls.length, 4);

  // A run of that id that existed before the request: the caller's to handle, as before.
  fake = fakeClient({ start: [throwing(already())] });
  runs = createWorkflowRuns({ temporal: fake.client, waitTimeoutMs: 1000, resolution: fastRetries });
  await assert.rejects(runs.start(demo, startArgs), WorkflowExecutionAlreadyStartedError);
});

test('startWithUpdate: an ambiguous failure is retried on the existing run with the same update id', async () => {
  const { calls, client } = fakeClient({
    executeUpdateWithStart: [throwing(new WorkflowUpdateRPCTimeoutOrCancelledError('timed out'))],
    startUpdateWithStart: [throwing(DEADLINE()), () => ({ result: async () => 'ran' })],
  });
  const runs = createWorkflowRuns({ temporal: client, waitTimeoutMs: 1000, resolution: fastRetries });
  assert.deepEqual(await runs.startWithUpdate(demo, startArgs, goUpdate, 'go-1'), { started: true, result: 'ran' });
  assert.deepEqual(
    calls.map((c) => [c.method, c.options.workflowIdConflictPolicy, c.options.workflowIdReusePolicy, c.options.updateId, c.deadline]),
    [
      ['executeUpdateWithStart', 'FAIL', undefined, 'go-1', false],
      ['startUpdateWithStart', 'USE_EXISTING', 'REJECT_DUPLICATE', 'go-1', true],
      ['startUpdateWithStart', 'USE_EXISTING', 'REJECT_DUPLICATE', 'go-1', true],
    ],
  );
  assert.equal(calls[1]!.options.waitForStage, 'ACCEPTED');
});

test('startWithUpdate: a start that was decided is followed with the same update id, not started again', async () => {
  const { calls, client } = fakeClient({
    executeUpdateWithStart: [
      (op) => {
        decide(op);
        throw new WorkflowUpdateRPCTimeoutOrCancelledError('timed out');
      },
    ],
    executeUpdate: [() => 'ran'],
  });
  const runs = createWorkflowRuns({ temporal: client, waitTimeoutMs: 1000, resolution: fastRetries });
  assert.deepEqual(await runs.startWithUpdate(demo, startArgs, goUpdate, 'go-1'), { started: true, result: 'ran' });
  assert.deepEqual(
    calls.map((c) => [c.method, c.options.updateId]),
    [
      ['executeUpdateWithStart', 'go-1'],
      ['executeUpdate', 'go-1'],
    ],
  );
});

test("startWithUpdate: the update's own failure in a run that started is the caller's; refusals and unknowns are not started", async () => {
  const failed = new WorkflowUpdateFailedError('Workflow Update failed', ApplicationFailure.create({ message: 'no' }));
  let fake = fakeClient({
    executeUpdateWithStart: [
      (op) => {
        decide(op);
        throw failed;
      },
    ],
  });
  let runs = createWorkflowRuns({ temporal: fake.client, waitTimeoutMs: 1000, resolution: fastRetries });
  assert.deepEqual(await runs.startWithUpdate(demo, startArgs, goUpdate, 'go-1'), { started: true, error: failed });
  assert.equal(fake.calls.length, 1);

  fake = fakeClient({ executeUpdateWithStart: [throwing(grpc(7, 'denied'))] });
  runs = createWorkflowRuns({ temporal: fake.client, waitTimeoutMs: 1000, resolution: fastRetries });
  let outcome = await runs.startWithUpdate(demo, startArgs, goUpdate, 'go-1');
  assert.equal(outcome.started, false);
  assert.equal(((outcome as { error: AppError }).error).status, 503);
  assert.equal(fake.calls.length, 1);

  fake = fakeClient({ executeUpdateWithStart: [throwing(DEADLINE())], startUpdateWithStart: [throwing(DEADLINE()), throwing(DEADLINE()), throwing(DEADLINE())] });
  runs = createWorkflowRuns({ temporal: fake.client, waitTimeoutMs: 1000, resolution: fastRetries });
  outcome = await runs.startWithUpdate(demo, startArgs, goUpdate, 'go-1');
  assert.equal(outcome.started, false);
  assert.equal(((outcome as { error: unknown }).error as { startOutcome: string }).startOutcome, 'unknown');
  assert.equal(fake.calls.length, 4);

  // A closed run of that id found by a further attempt is this request's run, ended already.
  fake = fakeClient({ executeUpdateWithStart: [throwing(DEADLINE())], startUpdateWithStart: [throwing(already())] });
  runs = createWorkflowRuns({ temporal: fake.client, waitTimeoutMs: 1000, resolution: fastRetries });
  outcome = await runs.startWithUpdate(demo, startArgs, goUpdate, 'go-1');
  assert.equal(outcome.started, true);
  assert.ok((outcome as { error: unknown }).error instanceof WorkflowExecutionAlreadyStartedError);
});
