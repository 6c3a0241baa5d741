/**
 * A worker's /metrics, in this process, as workers/run-worker.ts assembles it: the Runtime with
 * the SDK's Prometheus exporter (workers/sdk-runtime.ts), the ops server relaying it, and a real
 * worker on a task queue of this file's own (the stack's dev Temporal) running Berth's workflows
 * with the control activities, the metrics interceptor and its sink. Pulls and a DCU task run
 * through it (host activities: the stack's host-a worker for the pulls; a host of this file's
 * own, in this process, for the DCU), so every count asserted here is this file's alone.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { DefaultLogger, NativeConnection, Worker } from '@temporalio/worker';
import type { Client } from '@temporalio/client';
import { collectProcessMetrics, metricsRegistry } from '../../core/metrics.js';
import { parseImageReference } from '../../core/image-ref.js';
import { connectTemporal, temporalConnectionOptions } from '../../core/temporal.js';
import { dcuTasks } from '../../db/schema.js';
import { createControlActivities } from '../../activities/control-activities.js';
import { pullId as newPullId, pullImageWorkflow, type PullImageInput, type PullImageResult } from '../../contracts/pull-image.js';
import { dcuWorkflow, dcuWorkflowId, type DcuInput, type DcuWorkflowStatus } from '../../contracts/dcu.js';
import { installRuntime } from '../../workers/sdk-runtime.js';
import { startOpsServer, type OpsServer } from '../../workers/ops-server.js';
import { berthWorkerOptions } from '../../workers/run-worker.js';
import { WORKFLOWS_PATH } from '../../workers/workflow-code.js';
import { baseConfig, buildTestApp, createUser, testDb } from '../support/app.js';
import { pushUniqueImage } from '../support/images.js';
import { hostConfig, minio, removedAfterAll, startOwnHost } from '../support/dcu.js';
import { freePort } from '../support/ports.js';
import { metricValue, parseMetrics, type Samples } from '../support/metrics.js';

// As a worker process does it: once, before any connection, with the SDK's exporter.
const sdkMetricsUrl = await installRuntime({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] }, true);
collectProcessMetrics();

const taskQueue = `metrics-test-${randomUUID().slice(0, 8)}`;
const { pulled, taskIds } = removedAfterAll();
let ops: OpsServer;
let temporal: Client;
let stopWorker: () => Promise<void>;

before(async () => {
  ops = (await startOpsServer({
    config: { host: '127.0.0.1', port: await freePort() },
    checks: new Map(),
    logger: pino({ level: 'silent' }),
    metrics: { registry: metricsRegistry, sdkMetricsUrl },
  }))!;
  temporal = await connectTemporal(baseConfig.temporal);
  const connection = await NativeConnection.connect(temporalConnectionOptions(baseConfig.temporal));
  const worker = await Worker.create({
    connection,
    namespace: baseConfig.temporal.namespace,
    // Berth's interceptors and sinks (the metrics' sink; tracing's, off), as runWorker gives every worker.
    ...berthWorkerOptions(
      {
        taskQueue,
        workflowsPath: WORKFLOWS_PATH,
        activities: createControlActivities({ db: testDb().db, pricePerMb: baseConfig.pulls.pricePerMb, temporal }),
      },
      null,
    ),
  });
  const running = worker.run();
  stopWorker = async () => {
    worker.shutdown();
    await running;
    await connection.close();
  };
});

after(async () => {
  await stopWorker?.();
  await ops?.close();
  await temporal?.connection.close();
});

async function scrape(): Promise<Samples> {
  const res = await fetch(`${ops.url}/metrics`);
  assert.equal(res.status, 200);
  return parseMetrics(await res.text());
}

/** Runs pullImage on this file's queue, as the API would start it; its result, or the failure it ended with. */
async function pull(userId: string, image: string): Promise<PullImageResult | Error> {
  const ref = parseImageReference(image);
  const pullId = newPullId(randomUUID());
  const input: PullImageInput = {
    pullId,
    userId,
    hostId: 'host-a',
    reference: ref.reference,
    repository: ref.repository,
    tag: ref.tag ?? null,
    digest: ref.digest ?? null,
    pricePerMb: 1,
  };
  const handle = await temporal.workflow.start(pullImageWorkflow.type, { taskQueue, workflowId: pullId, args: [input] });
  try {
    return (await handle.result()) as PullImageResult;
  } catch (error) {
    return error as Error;
  }
}

test('/metrics: the Temporal SDK\'s own metrics for this worker\'s queue, and process metrics under their standard names', async () => {
  let samples = await scrape();
  // The pollers start polling once the worker runs: give them a moment.
  for (let i = 0; i < 50 && metricValue(samples, 'temporal_num_pollers', { task_queue: taskQueue }) === undefined; i++) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    samples = await scrape();
  }
  assert.ok((metricValue(samples, 'temporal_num_pollers', { task_queue: taskQueue, poller_type: 'workflow_task' }) ?? 0) >= 1, 'workflow pollers');
  assert.ok(metricValue(samples, 'temporal_worker_task_slots_available', { task_queue: taskQueue }) !== undefined, 'task slots');
  assert.ok((metricValue(samples, 'process_cpu_user_seconds_total') ?? 0) > 0);
  assert.ok((metricValue(samples, 'process_resident_memory_bytes') ?? 0) > 0);
  assert.ok(metricValue(samples, 'nodejs_heap_size_used_bytes') !== undefined);
  assert.ok(![...samples.keys()].some((name) => name.startsWith('berth_api_')), 'no prefixed default metrics');
});

test('pulls by outcome (pulled, deduped, failed with its reason) and their durations; the charge counted once', async (t) => {
  const app = await buildTestApp(t);
  const rich = await createUser(app, { balance: 100_000 });
  const poor = await createUser(app, { balance: 0 });
  const image = await pushUniqueImage('metrics');
  pulled.add(`host-a ${image}`);
  const before = await scrape();
  const count = (s: Samples, outcome: string, reason = '') => metricValue(s, 'berth_pulls_total', { outcome, reason }) ?? 0;
  const durations = (s: Samples, outcome: string) => metricValue(s, 'berth_pull_duration_seconds_count', { outcome }) ?? 0;
  const charged = (s: Samples) => metricValue(s, 'berth_money_charged_minor_units_total', { kind: 'image_charge' }) ?? 0;

  const first = await pull(rich.id, image);
  if (first instanceof Error) throw first;
  assert.equal(first.pulled, true);
  const again = await pull(rich.id, image);
  assert.ok(!(again instanceof Error) && again.deduped, 'the same user again: deduped');
  const refused = await pull(poor.id, image);
  assert.ok(refused instanceof Error, 'a balance of 0 cannot pay');

  const afterwards = await scrape();
  assert.equal(count(afterwards, 'pulled') - count(before, 'pulled'), 1);
  assert.equal(count(afterwards, 'deduped') - count(before, 'deduped'), 1);
  assert.equal(count(afterwards, 'failed', 'insufficient_funds') - count(before, 'failed', 'insufficient_funds'), 1);
  assert.equal(durations(afterwards, 'pulled') - durations(before, 'pulled'), 1);
  assert.equal(durations(afterwards, 'failed') - durations(before, 'failed'), 1);
  // Charged once (the deduped pull and the refused one write no entry), by the image's price.
  assert.equal(charged(afterwards) - charged(before), first.image.charged);
  assert.ok(first.image.charged > 0);
  // The SDK saw this queue's workflows complete and fail.
  assert.ok((metricValue(afterwards, 'temporal_workflow_completed_total', { task_queue: taskQueue, workflow_type: 'pullImage' }) ?? 0) >= 2);
  assert.ok((metricValue(afterwards, 'temporal_workflow_failed_total', { task_queue: taskQueue, workflow_type: 'pullImage' }) ?? 0) >= 1);
});

test('a DCU task: succeeded, and the duration and bytes of its download, compress and upload', { timeout: 600_000 }, async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 1_000 });
  const image = await pushUniqueImage('metrics-dcu', 512);
  const { hostId, stop } = await startOwnHost('metrics', `metrics-${randomUUID().slice(0, 8)}`, {
    registryCredentials: {},
    pullStallTimeoutMs: hostConfig.pullStallTimeoutMs,
    minio,
    dcu: hostConfig.dcu,
  });
  t.after(stop);
  pulled.add(`host-a ${image}`);
  const taskId = randomUUID();
  taskIds.push(taskId);
  const before = await scrape();

  // What POST /api/dcu/start does (free: no price), on this file's queue and host.
  const reference = parseImageReference(image).reference;
  await testDb().db.insert(dcuTasks).values({ id: taskId, userId: user.id, username: user.username, hostId, dockerImageName: image, state: 'idle' });
  const input: DcuInput = { taskId, userId: user.id, username: user.username, hostId, reference };
  const handle = await temporal.workflow.start(dcuWorkflow.type, { taskQueue, workflowId: dcuWorkflowId(taskId), args: [input] });
  const status = (await handle.result()) as DcuWorkflowStatus;
  assert.equal(status.state, 'completed');

  const afterwards = await scrape();
  const delta = (name: string, labels: Record<string, string> = {}) => (metricValue(afterwards, name, labels) ?? 0) - (metricValue(before, name, labels) ?? 0);
  assert.equal(delta('berth_dcu_tasks_total', { outcome: 'succeeded' }), 1);
  for (const phase of ['download', 'compress', 'upload']) {
    assert.equal(delta('berth_dcu_phase_duration_seconds_count', { phase }), 1, `${phase}: one duration`);
    assert.ok(delta('berth_dcu_phase_duration_seconds_sum', { phase }) > 0, `${phase}: took some time`);
  }
  assert.ok(delta('berth_dcu_phase_bytes_total', { phase: 'download' }) > 512 * 1024 * 0.5, 'the pull downloaded the image\'s random layer');
  assert.equal(delta('berth_dcu_phase_bytes_total', { phase: 'compress' }), status.compressedBytes);
  assert.equal(delta('berth_dcu_phase_bytes_total', { phase: 'upload' }), status.compressedBytes);
});
