/**
 * Logs that connect (issue 15, item 5): the API's request id travels into the workflow it starts
 * (a `berth-request-id` header set by the client's interceptor), on to the activities the workflow
 * schedules (the workflow interceptors), and onto their structured log lines (the activity
 * interceptor, the SDK logger over pino).
 *
 * - Through the in-process API: the started workflow's first event carries the request id.
 * - A worker of the test's own (on a task queue of its own, with the worker's interceptors and the
 *   SDK logger capturing pino's lines): a host ping started for a request gives an activity log
 *   line carrying the request id, the workflow id and run id, the activity type and attempt.
 * - The stack's own workers (needs them running this code): every activity of a pull started
 *   through the API carries the header, and the host worker's log file has the pull's lines with it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Headers } from '@temporalio/common';
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createLogger } from '../../core/logger.js';
import { connectTemporal, temporalConnectionOptions } from '../../core/temporal.js';
import { runWithRequestId } from '../../core/request-context.js';
import { REQUEST_ID_HEADER, requestIdOf } from '../../core/request-id-header.js';
import { hostTaskQueue } from '../../core/temporal-names.js';
import { createEngineActivities } from '../../activities/engine.js';
import { pingHostWorkflow } from '../../contracts/ping-host.js';
import { coreLogForwarding, sdkLogger } from '../../workers/sdk-logger.js';
import { berthWorkerOptions } from '../../workers/run-worker.js';
import { WORKFLOWS_PATH } from '../../workers/workflow-code.js';
import { baseConfig, bearer, buildTestApp, createUser } from '../support/app.js';
import { pushUniqueImage } from '../support/images.js';
import { dockerFor, stateDir } from '../support/stack.js';
import { eventually } from '../support/wait.js';

type Line = Record<string, unknown>;

// The SDK's lines of this process (the worker below), as pino writes them, captured.
const lines: Line[] = [];
const logger = createLogger('request-id-test', { level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Line) });
Runtime.install({ logger: sdkLogger(logger), telemetryOptions: { logging: coreLogForwarding(logger) }, shutdownSignals: [] });

const temporal = await connectTemporal(baseConfig.temporal);
test.after(() => temporal.connection.close());

const history = async (workflowId: string) => (await temporal.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
const headerOf = (fields: unknown) => requestIdOf((fields ?? {}) as Headers);

test('a workflow started through the API carries the request id in its start header: the caller’s X-Request-Id, or the one the API made', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 100_000 });
  for (const sent of [`req-${randomUUID()}`, 'not a plain id!']) {
    // An image of its own each time: the same user's second pull of one would be a dedup, which starts no workflow.
    const image = await pushUniqueImage('reqid', 16);
    const res = await app.inject({ method: 'POST', url: '/api/v1/images/pull', headers: { ...bearer(user.token), 'x-request-id': sent }, payload: { image, host: 'host-a' } });
    assert.equal(res.statusCode, 202, res.body);
    const requestId = String(res.headers['x-request-id']);
    if (sent.startsWith('req-')) assert.equal(requestId, sent);
    else assert.match(requestId, /^[0-9a-f-]{36}$/, 'a request id the API does not take is replaced by its own');
    const { pullId } = res.json<{ pullId: string }>();
    const [started] = await history(pullId);
    assert.equal(headerOf(started?.workflowExecutionStartedEventAttributes?.header?.fields), requestId, `${pullId} started for request ${requestId}`);
  }
  // Outside a request (a worker's own client, a script), a start carries none.
  const workflowId = `reqid-outside-${randomUUID()}`;
  await temporal.workflow.start(pingHostWorkflow.type, { taskQueue: `reqid-nobody-${randomUUID()}`, workflowId, args: ['none'], workflowExecutionTimeout: '1s' });
  const [started] = await history(workflowId);
  assert.ok(started?.workflowExecutionStartedEventAttributes);
  assert.equal(headerOf(started.workflowExecutionStartedEventAttributes.header?.fields), undefined);
});

test('in a worker with Berth’s interceptors and SDK logger, an activity’s log line carries the request id, the workflow id and run id, the activity type and attempt', { timeout: 120_000 }, async () => {
  // A host of the test's own, known to no database: its queue is polled by this worker only, which
  // runs the ping workflow and its engine activity against host-a's daemon.
  const hostId = `reqid-${randomUUID().slice(0, 8)}`;
  const taskQueue = hostTaskQueue(hostId);
  const connection = await NativeConnection.connect(temporalConnectionOptions(baseConfig.temporal));
  // Berth's interceptors and sinks (tracing's off), as runWorker gives every worker.
  const worker = await Worker.create({
    connection,
    namespace: baseConfig.temporal.namespace,
    ...berthWorkerOptions({ taskQueue, workflowsPath: WORKFLOWS_PATH, activities: createEngineActivities({ docker: dockerFor('host-a'), hostId }) }, null),
  });
  const requestId = `req-${randomUUID()}`;
  const workflowId = `reqid-ping-${randomUUID()}`;
  try {
    await worker.runUntil(async () => {
      // As the API starts it: inside the request's context (api/app.ts), through Berth's client.
      const handle = await runWithRequestId(requestId, () => temporal.workflow.start(pingHostWorkflow.type, { taskQueue, workflowId, args: [hostId] }));
      assert.equal((await handle.result()).hostId, hostId);
      // The workflow's log lines reach the logger through a sink, Core's after a buffer of 100 ms.
      await eventually('the workflow’s log line', async () => lines.some((l) => l.msg === 'host answered' && l.workflowId === workflowId), 10);
    });
  } finally {
    await connection.close();
  }
  const runId = (await temporal.workflow.getHandle(workflowId).describe()).runId;

  const activity = lines.find((l) => l.msg === 'engine answered' && l.workflowId === workflowId);
  assert.ok(activity, `an activity line of ${workflowId} among ${lines.length} lines`);
  assert.deepEqual(
    { reqId: activity.reqId, workflowId: activity.workflowId, workflowRunId: activity.workflowRunId, workflowType: activity.workflowType, activityType: activity.activityType, attempt: activity.attempt, sdkComponent: activity.sdkComponent, hostId: activity.hostId },
    { reqId: requestId, workflowId, workflowRunId: runId, workflowType: 'pingHost', activityType: 'engineInfo', attempt: 1, sdkComponent: 'activity', hostId },
  );
  assert.equal(activity.taskToken, undefined, 'no task token in the line');
  assert.equal(activity.name, 'request-id-test', "pino's line: the process's logger");

  const workflow = lines.find((l) => l.msg === 'host answered' && l.workflowId === workflowId)!;
  assert.deepEqual(
    { reqId: workflow.reqId, runId: workflow.runId, workflowType: workflow.workflowType, sdkComponent: workflow.sdkComponent },
    { reqId: requestId, runId, workflowType: 'pingHost', sdkComponent: 'workflow' },
  );
  // The activity was scheduled with the header the workflow passed on.
  const scheduled = (await history(workflowId)).find((e) => e.activityTaskScheduledEventAttributes);
  assert.equal(headerOf(scheduled?.activityTaskScheduledEventAttributes?.header?.fields), requestId);
  // Every line of this run that the SDK wrote about it (activity completed, ...) carries it too.
  const ofRun = lines.filter((l) => l.workflowId === workflowId);
  assert.ok(ofRun.length >= 2 && ofRun.every((l) => l.reqId === requestId), JSON.stringify(ofRun));
});

test('(needs the stack’s workers on this code) a pull started through the API: each activity carries the request id, and the host worker logs the Docker pull with it', { timeout: 180_000 }, async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 100_000 });
  const requestId = `req-${randomUUID()}`;
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/images/pull?wait=true',
    headers: { ...bearer(user.token), 'x-request-id': requestId },
    payload: { image: await pushUniqueImage('reqid', 16), host: 'host-a' },
  });
  assert.equal(res.statusCode, 201, res.body);
  const { pullId } = res.json<{ pullId: string }>();
  const activities = (await history(pullId)).flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes] : []));
  // The host's one step (the database steps are local activities: markers, not scheduled tasks).
  assert.deepEqual(activities.map((a) => a.activityType?.name), ['ensureImage']);
  for (const a of activities) assert.equal(headerOf(a.header?.fields), requestId, `${a.activityType?.name} scheduled with ${REQUEST_ID_HEADER}`);

  const logged = async (file: string, msg: string) =>
    (await readFile(join(stateDir, 'logs', file), 'utf8'))
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Line)
      .find((l) => l.msg === msg && l.workflowId === pullId);
  const pulled = await eventually('the host worker’s line', () => logged('worker-host-a.log', 'docker pull done'), 15);
  assert.equal(pulled.reqId, requestId);
  assert.equal(pulled.activityType, 'ensureImage');
  assert.equal(pulled.attempt, 1);
  const charged = await eventually('the control worker’s workflow line', () => logged('worker-control.log', 'image charged and recorded'), 15);
  assert.equal(charged.reqId, requestId);
  assert.equal(charged.sdkComponent, 'workflow');
});
