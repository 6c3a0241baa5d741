/**
 * core/metrics.ts and what feeds it without a stack: a workflow's end as the interceptor reads it
 * (workflows/metrics-interceptor.ts) and as the worker's sink records it (workers/workflow-metrics.ts),
 * the ledger's kinds, the default metrics' names, and the schedules the API's gauges describe.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ActivityFailure, ApplicationFailure, CancelledFailure, RetryState, TimeoutFailure } from '@temporalio/common';
import { collectProcessMetrics, metricsRegistry, recordMoney } from '../../core/metrics.js';
import { FailureType } from '../../core/failures.js';
import { pullFailureReason, workflowEnd } from '../../workflows/metrics-interceptor.js';
import { recordWorkflowEnd } from '../../workers/workflow-metrics.js';
import { SCHEDULE_IDS } from '../../services/gauges.js';
import { auditRetentionScheduleDefinition, dcuScheduleDefinitions, releaseScheduleDefinition } from '../../workers/schedules.js';

/** A sample's value in the registry (0 when it has none). */
async function sample(name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await metricsRegistry.getMetricsAsJSON()).find((m) => m.name === name);
  assert.ok(metric, `${name} is registered`);
  const found = metric.values.find(
    (v) => (v as { metricName?: string }).metricName === undefined && Object.entries(labels).every(([k, value]) => String(v.labels[k] ?? '') === value),
  );
  return found?.value ?? 0;
}

const activityFailure = (cause: Error) => new ActivityFailure('activity failed', 'dockerPull', '1', RetryState.NON_RETRYABLE_FAILURE, 'worker', cause);

test('a pull ends deduped, present or pulled by its result, failed by a short reason from its cause chain', () => {
  const result = (r: { deduped: boolean; pulled: boolean }) => workflowEnd('pullImage', { result: { ...r, image: {}, progress: null } });
  assert.deepEqual(result({ deduped: true, pulled: false }), { kind: 'pull', outcome: 'deduped' });
  assert.deepEqual(result({ deduped: false, pulled: false }), { kind: 'pull', outcome: 'present' });
  assert.deepEqual(result({ deduped: false, pulled: true }), { kind: 'pull', outcome: 'pulled' });

  const cases: Array<[Error, string]> = [
    [ApplicationFailure.nonRetryable('no money', FailureType.InsufficientFunds), 'insufficient_funds'],
    [ApplicationFailure.nonRetryable('manifest unknown', FailureType.ImageNotFound), 'not_found'],
    [activityFailure(ApplicationFailure.nonRetryable('denied', FailureType.RegistryUnauthorized)), 'unauthorized'],
    [activityFailure(ApplicationFailure.retryable('daemon', FailureType.DockerError)), 'docker_error'],
    [activityFailure(new TimeoutFailure('no worker', undefined, 'SCHEDULE_TO_START')), 'host_unreachable'],
    [activityFailure(new TimeoutFailure('no heartbeat', undefined, 'HEARTBEAT')), 'timeout'],
    [new CancelledFailure('cancelled'), 'cancelled'],
    [ApplicationFailure.nonRetryable('something new', 'SomethingNew'), 'other'],
    [new Error('plain'), 'other'],
  ];
  for (const [error, reason] of cases) {
    assert.equal(pullFailureReason(error), reason, error.message);
    assert.deepEqual(workflowEnd('pullImage', { failure: error }), { kind: 'pull', outcome: 'failed', reason });
  }
});

test('a DCU task ends succeeded, cancelled (the cancel signal, or the workflow cancelled) or failed', () => {
  assert.deepEqual(workflowEnd('dcu', { result: { state: 'completed' } }), { kind: 'dcu', outcome: 'succeeded' });
  assert.deepEqual(workflowEnd('dcu', { failure: ApplicationFailure.nonRetryable('cancelled', FailureType.DcuCancelled) }), { kind: 'dcu', outcome: 'cancelled' });
  assert.deepEqual(workflowEnd('dcu', { failure: new CancelledFailure('cancelled') }), { kind: 'dcu', outcome: 'cancelled' });
  assert.deepEqual(workflowEnd('dcu', { failure: ApplicationFailure.nonRetryable('disk', FailureType.DcuDiskFull) }), { kind: 'dcu', outcome: 'failed' });
});

test('a nightly release ends completed with its report\'s counts, or failed; other workflows are not followed', () => {
  const report = { containers: { removed: 3, failed: 1 }, images: { removed: 2, failed: 0 }, refundedTotal: 40, failures: [] };
  assert.deepEqual(workflowEnd('nightlyRelease', { result: report }), {
    kind: 'release',
    outcome: 'completed',
    counts: { containers: { removed: 3, failed: 1 }, images: { removed: 2, failed: 0 } },
  });
  assert.deepEqual(workflowEnd('nightlyRelease', { failure: ApplicationFailure.nonRetryable('boom') }), { kind: 'release', outcome: 'failed' });
  assert.equal(workflowEnd('container', { result: {} }), null);
  assert.equal(workflowEnd('pingHost', { failure: ApplicationFailure.nonRetryable('down') }), null);
});

test('the sink records each end in the process registry', async () => {
  const pulled = await sample('berth_pulls_total', { outcome: 'pulled', reason: '' });
  const funds = await sample('berth_pulls_total', { outcome: 'failed', reason: 'insufficient_funds' });
  const pullCount = await sample('berth_pull_duration_seconds', { outcome: 'pulled' });
  recordWorkflowEnd({ kind: 'pull', outcome: 'pulled' }, 1.5);
  recordWorkflowEnd({ kind: 'pull', outcome: 'failed', reason: 'insufficient_funds' }, 0.2);
  assert.equal(await sample('berth_pulls_total', { outcome: 'pulled', reason: '' }), pulled + 1);
  assert.equal(await sample('berth_pulls_total', { outcome: 'failed', reason: 'insufficient_funds' }), funds + 1);
  const histogram = (await metricsRegistry.getMetricsAsJSON()).find((m) => m.name === 'berth_pull_duration_seconds')!;
  const count = histogram.values.find((v) => (v as { metricName?: string }).metricName === 'berth_pull_duration_seconds_count' && v.labels.outcome === 'pulled');
  assert.ok(count && count.value >= pullCount + 1);

  const cancelled = await sample('berth_dcu_tasks_total', { outcome: 'cancelled' });
  recordWorkflowEnd({ kind: 'dcu', outcome: 'cancelled' }, 3);
  assert.equal(await sample('berth_dcu_tasks_total', { outcome: 'cancelled' }), cancelled + 1);

  const removed = await sample('berth_release_items_removed_total', { kind: 'image' });
  const failures = await sample('berth_release_failures_total', { kind: 'container' });
  recordWorkflowEnd({ kind: 'release', outcome: 'completed', counts: { containers: { removed: 0, failed: 2 }, images: { removed: 5, failed: 0 } } }, 60);
  assert.equal(await sample('berth_release_items_removed_total', { kind: 'image' }), removed + 5);
  assert.equal(await sample('berth_release_failures_total', { kind: 'container' }), failures + 2);
  assert.equal(await sample('berth_release_runs_total', { outcome: 'completed' }), 1);
});

test('money: a charge by its kind, a refund by its kind, a credit by an admin or at sign-up', async () => {
  recordMoney('image_charge', -120);
  recordMoney('dcu_charge', -10);
  recordMoney('release_refund', 120);
  recordMoney('credit', 500);
  recordMoney('opening_balance', 1000);
  assert.equal(await sample('berth_money_charged_minor_units_total', { kind: 'image_charge' }), 120);
  assert.equal(await sample('berth_money_charged_minor_units_total', { kind: 'dcu_charge' }), 10);
  assert.equal(await sample('berth_money_refunded_minor_units_total', { kind: 'release_refund' }), 120);
  assert.equal(await sample('berth_money_credited_minor_units_total', { kind: 'credit' }), 500);
  assert.equal(await sample('berth_money_credited_minor_units_total', { kind: 'opening_balance' }), 1000);
  assert.equal(await sample('berth_money_refunded_minor_units_total', { kind: 'credit' }), 0);
});

test('default process metrics keep their standard names; bounded label values start at 0', async () => {
  collectProcessMetrics();
  collectProcessMetrics(); // once per process: a second call is a no-op, not a duplicate registration
  const page = await metricsRegistry.metrics();
  assert.match(page, /^process_cpu_user_seconds_total \d/m);
  assert.match(page, /^process_resident_memory_bytes \d/m);
  assert.match(page, /^nodejs_eventloop_lag_seconds \d/m);
  assert.doesNotMatch(page, /berth_api_|berth_http_request_errors_total/);
  for (const limit of ['rate_limit', 'login_throttle', 'pull_concurrency', 'stream_limit', 'dcu_in_flight', 'dcu_quota', 'container_quota']) {
    assert.match(page, new RegExp(`^berth_requests_limited_total\\{limit="${limit}"\\} \\d`, 'm'));
  }
  assert.match(page, /^berth_dcu_tasks_total\{outcome="failed"\} \d/m);
});

test('the API describes exactly the schedules the control worker keeps', () => {
  const dcu = { gzipCleanupCron: '0 0 * * *', objectCleanupCron: '0 0 * * 0', gzipRetentionDays: 1, objectRetentionDays: 7 };
  const ids = [
    ...dcuScheduleDefinitions(dcu),
    releaseScheduleDefinition({ cron: '0 2 * * *', timezone: 'UTC', concurrency: 2 }),
    auditRetentionScheduleDefinition({ retentionDays: 90 }),
  ].map((d) => d.scheduleId);
  assert.deepEqual([...SCHEDULE_IDS].sort(), ids.sort());
});
