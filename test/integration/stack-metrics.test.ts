/**
 * The stack's own processes serve their metrics (scripts/stack.sh: the control worker on 9470,
 * host-a's on 9471, host-b's on 9472; the API on 8080): each worker its Temporal SDK metrics for
 * its task queue and its process metrics; a pull and a DCU task through the API are counted by
 * the workers that ran them (the control worker: the pull's and the task's end, the charge; host-a's
 * worker: the DCU phases). Other files run beside this one: counters grow by at least this file's events.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONTROL_TASK_QUEUE, hostTaskQueue } from '../../core/temporal-names.js';
import { buildTestApp, createUser } from '../support/app.js';
import { pushUniqueImage, pullRequest } from '../support/images.js';
import { removedAfterAll, startTask, waitEnded, LONG_WAIT } from '../support/dcu.js';
import { metricValue, parseMetrics, type Samples } from '../support/metrics.js';
import { eventually } from '../support/wait.js';

/** Each worker of the development stack, its metrics address and its task queue. */
const WORKERS = [
  { name: 'worker-control', url: 'http://127.0.0.1:9470/metrics', taskQueue: CONTROL_TASK_QUEUE },
  { name: 'worker-host-a', url: 'http://127.0.0.1:9471/metrics', taskQueue: hostTaskQueue('host-a') },
  { name: 'worker-host-b', url: 'http://127.0.0.1:9472/metrics', taskQueue: hostTaskQueue('host-b') },
] as const;
const API_METRICS = `http://127.0.0.1:${process.env.BERTH_API_PORT ?? 8080}/metrics`;

async function scrape(url: string): Promise<Samples> {
  const res = await fetch(url);
  assert.equal(res.status, 200, url);
  return parseMetrics(await res.text());
}

const { pulled, taskIds } = removedAfterAll();

test('every worker: the Temporal SDK\'s metrics for its queue, process metrics; the API: its gauges', async () => {
  for (const worker of WORKERS) {
    const samples = await scrape(worker.url);
    assert.ok((metricValue(samples, 'temporal_num_pollers', { task_queue: worker.taskQueue }) ?? 0) >= 1, `${worker.name} polls ${worker.taskQueue}`);
    assert.ok(metricValue(samples, 'temporal_worker_task_slots_available', { task_queue: worker.taskQueue }) !== undefined, worker.name);
    assert.ok((metricValue(samples, 'process_cpu_user_seconds_total') ?? 0) > 0, worker.name);
    assert.ok(metricValue(samples, 'nodejs_heap_size_used_bytes') !== undefined, worker.name);
  }
  const control = await scrape(WORKERS[0].url);
  // The control worker runs workflows: their task latencies and its sticky cache.
  assert.ok(metricValue(control, 'temporal_sticky_cache_size') !== undefined, 'the sticky cache');
  assert.ok((metricValue(control, 'temporal_workflow_task_execution_latency_seconds_count', { task_queue: CONTROL_TASK_QUEUE }) ?? 0) >= 1, 'workflow task latencies');
  const api = await scrape(API_METRICS);
  for (const host of ['host-a', 'host-b']) assert.equal(metricValue(api, 'berth_hosts_up', { host }), 1, host);
  assert.ok(metricValue(api, 'process_cpu_user_seconds_total') !== undefined);
});

test('a pull through the API: counted pulled and charged by the control worker', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 100_000 });
  const image = await pushUniqueImage('stack-metrics');
  pulled.add(`host-a ${image}`);
  const before = await scrape(WORKERS[0].url);
  const res = await pullRequest(app, user.token, { image, host: 'host-a' });
  assert.equal(res.statusCode, 201, res.body);
  const charged = res.json<{ charged: number }>().charged;
  // The worker records the end once it has completed the workflow's last task, which can be a
  // moment after the API has the result: scrape until it shows.
  let afterwards = await scrape(WORKERS[0].url);
  const delta = (name: string, labels: Record<string, string>) => (metricValue(afterwards, name, labels) ?? 0) - (metricValue(before, name, labels) ?? 0);
  await eventually('the pull counted', async () => {
    afterwards = await scrape(WORKERS[0].url);
    return delta('berth_pulls_total', { outcome: 'pulled', reason: '' }) >= 1;
  }, 10).catch(() => undefined);
  assert.ok(delta('berth_pulls_total', { outcome: 'pulled', reason: '' }) >= 1);
  assert.ok(delta('berth_pull_duration_seconds_count', { outcome: 'pulled' }) >= 1);
  assert.ok(delta('berth_money_charged_minor_units_total', { kind: 'image_charge' }) >= charged);
});

test('a DCU task through the API: its phases counted by host-a\'s worker, its end by the control worker', { timeout: 600_000 }, async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 10_000 });
  const image = await pushUniqueImage('stack-metrics-dcu', 512);
  pulled.add(`host-a ${image}`);
  const [controlBefore, hostBefore] = [await scrape(WORKERS[0].url), await scrape(WORKERS[1].url)];
  const taskId = await startTask(app, user, image, 'host-a');
  taskIds.push(taskId);
  const data = await waitEnded(app, user.token, taskId, LONG_WAIT);
  assert.equal(data.state, 'completed', JSON.stringify(data));
  const delta = (a: Samples, b: Samples, name: string, labels: Record<string, string>) => (metricValue(b, name, labels) ?? 0) - (metricValue(a, name, labels) ?? 0);
  // As for the pull: the end is counted once the worker has completed the workflow's last task.
  let controlAfter = await scrape(WORKERS[0].url);
  await eventually('the task counted', async () => {
    controlAfter = await scrape(WORKERS[0].url);
    return delta(controlBefore, controlAfter, 'berth_dcu_tasks_total', { outcome: 'succeeded' }) >= 1;
  }, 10).catch(() => undefined);
  const hostAfter = await scrape(WORKERS[1].url);
  assert.ok(delta(controlBefore, controlAfter, 'berth_dcu_tasks_total', { outcome: 'succeeded' }) >= 1);
  assert.ok(delta(controlBefore, controlAfter, 'berth_money_charged_minor_units_total', { kind: 'dcu_charge' }) >= 1);
  for (const phase of ['download', 'compress', 'upload']) {
    assert.ok(delta(hostBefore, hostAfter, 'berth_dcu_phase_duration_seconds_count', { phase }) >= 1, phase);
    assert.ok(delta(hostBefore, hostAfter, 'berth_dcu_phase_bytes_total', { phase }) > 0, phase);
  }
});
