/**
 * What the system audits, as pure rules: which recorded container states are the system's own
 * doing, which task a local DCU archive belongs to, and the retention schedule's definition.
 * The writes themselves are checked on the real database in test/integration/audit-system.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { containerAuditAction } from '../../activities/containers-db.js';
import { taskIdOfArchive } from '../../activities/dcu-db.js';
import { dcuGzipFileName, dcuObjectName } from '../../core/dcu-names.js';
import { AUDIT_RETENTION_CRON, AUDIT_RETENTION_SCHEDULE_ID, auditRetentionWorkflow } from '../../contracts/audit-retention.js';
import { CONTROL_TASK_QUEUE } from '../../core/temporal-names.js';
import { auditRetentionScheduleDefinition } from '../../workers/schedules.js';

test('container states: a suspension for want of money and what reconciliation records are the system’s; what users ask for is not', () => {
  assert.equal(containerAuditAction('running', { state: 'suspended', stateReasonCode: 'insufficient_funds' }), 'container.suspend');
  assert.equal(containerAuditAction('exited', { state: 'suspended', stateReasonCode: 'insufficient_funds' }), 'container.suspend');
  assert.equal(containerAuditAction('running', { state: 'exited', stateReasonCode: 'exited' }), 'container.reconcile');
  assert.equal(containerAuditAction('running', { state: 'exited', stateReasonCode: 'oom_killed' }), 'container.reconcile');
  assert.equal(containerAuditAction('stopped', { state: 'running', stateReasonCode: 'started_outside' }), 'container.reconcile');
  assert.equal(containerAuditAction('running', { state: 'removed', stateReasonCode: 'removed_outside' }), 'container.reconcile');
  // An exit at creation is the creation's outcome; a user's stop, start or removal has no reason code.
  assert.equal(containerAuditAction('creating', { state: 'exited', stateReasonCode: 'exited' }), null);
  assert.equal(containerAuditAction('running', { state: 'stopped', stateReasonCode: null }), null);
  assert.equal(containerAuditAction('stopped', { state: 'running' }), null);
  assert.equal(containerAuditAction('running', { state: 'removed', stateReasonCode: null }), null);
  assert.equal(containerAuditAction('creating', { state: 'failed', stateReasonCode: 'docker_error' }), null);
});

test('a local archive names its task: `<task id>_<file>`, partial files too; anything else names none', () => {
  const taskId = '0b7c6a52-9f3e-4d0b-8f5e-2a1c3d4e5f60';
  const archive = dcuGzipFileName(taskId, dcuObjectName('alice', { repository: 'library/httpd', tag: 'latest' }, 'sha256:0123456789abcdef'));
  assert.equal(taskIdOfArchive(archive), taskId);
  assert.equal(taskIdOfArchive(`${archive}.2.partial`), taskId);
  assert.equal(taskIdOfArchive(`${taskId.toUpperCase()}_x.tar.gz`), taskId);
  assert.equal(taskIdOfArchive('notes_x.tar.gz'), undefined);
  assert.equal(taskIdOfArchive(`${taskId}x.tar.gz`), undefined);
});

test('the audit retention schedule: its id, a daily cron, the auditRetention workflow with the configured days', () => {
  assert.deepEqual([auditRetentionWorkflow.type, auditRetentionWorkflow.taskQueue], ['auditRetention', CONTROL_TASK_QUEUE]);
  const def = auditRetentionScheduleDefinition({ retentionDays: 90 });
  assert.deepEqual([def.scheduleId, def.cron, def.workflowType, def.input], [AUDIT_RETENTION_SCHEDULE_ID, AUDIT_RETENTION_CRON, 'auditRetention', { retentionDays: 90 }]);
  assert.equal(AUDIT_RETENTION_SCHEDULE_ID, 'berth-audit-retention');
  assert.match(AUDIT_RETENTION_CRON, /^\d+ \d+ \* \* \*$/, 'once a day');
});
