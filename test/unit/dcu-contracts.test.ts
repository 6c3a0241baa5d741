/** The DCU workflows' contracts: the ids, names and schedules running tasks, operators and the API already use. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DCU_QUERIES, DCU_SIGNALS, dcuCancelSignal, dcuStatusQuery, dcuWorkflow, dcuWorkflowId } from '../../contracts/dcu.js';
import { DCU_SCHEDULES, dcuGzipCleanupWorkflow, dcuObjectCleanupWorkflow } from '../../contracts/dcu-cleanup.js';
import { CONTROL_TASK_QUEUE } from '../../core/temporal-names.js';
import { dcuScheduleDefinitions } from '../../workers/schedules.js';

test('a DCU task’s workflow id is "dcu-<task_id>"; the signal and query keep the names operators type', () => {
  assert.equal(dcuWorkflowId('0b0e'), 'dcu-0b0e');
  assert.deepEqual([DCU_SIGNALS.cancel, DCU_QUERIES.status], ['cancel', 'status']);
  assert.equal(dcuCancelSignal.name, 'cancel');
  assert.equal(dcuStatusQuery.name, 'status');
});

test('the DCU workflows run on berth-control under their registered type names', () => {
  assert.deepEqual([dcuWorkflow.type, dcuWorkflow.taskQueue], ['dcu', CONTROL_TASK_QUEUE]);
  assert.deepEqual([dcuGzipCleanupWorkflow.type, dcuGzipCleanupWorkflow.taskQueue], ['dcuGzipCleanup', CONTROL_TASK_QUEUE]);
  assert.deepEqual([dcuObjectCleanupWorkflow.type, dcuObjectCleanupWorkflow.taskQueue], ['dcuObjectCleanup', CONTROL_TASK_QUEUE]);
});

test('the cleanup schedules keep their ids and start the contracts’ workflows with the configured retention', () => {
  assert.deepEqual(DCU_SCHEDULES, { gzipCleanup: 'berth-dcu-gzip-cleanup', objectCleanup: 'berth-dcu-object-cleanup' });
  const defs = dcuScheduleDefinitions({ gzipCleanupCron: '0 0 * * *', objectCleanupCron: '0 0 * * 0', gzipRetentionDays: 1, objectRetentionDays: 7 });
  assert.deepEqual(
    defs.map((d) => [d.scheduleId, d.workflowType, d.input]),
    [
      [DCU_SCHEDULES.gzipCleanup, dcuGzipCleanupWorkflow.type, { retentionDays: 1 }],
      [DCU_SCHEDULES.objectCleanup, dcuObjectCleanupWorkflow.type, { retentionDays: 7 }],
    ],
  );
});
