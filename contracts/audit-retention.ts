/**
 * The auditRetention workflow's contract: deletes the audit log's entries older than the
 * retention (BERTH_AUDIT_RETENTION_DAYS), the only deletion the table's trigger allows. It runs
 * on the Temporal Schedule `berth-audit-retention`, which the control worker creates
 * (workers/schedules.ts), once a day. Operators: `temporal schedule trigger --schedule-id
 * berth-audit-retention`. Types and definitions only: the workflow imports it.
 */
import { CONTROL_TASK_QUEUE } from '../core/temporal-names.js';
import { defineWorkflow } from './workflow.js';

export interface AuditRetentionInput {
  /** Entries older than this many days are deleted (at least 1). */
  retentionDays: number;
}

export interface AuditRetentionResult {
  retentionDays: number;
  deleted: number;
}

/** The schedule's id, also its runs' workflow id prefix. */
export const AUDIT_RETENTION_SCHEDULE_ID = 'berth-audit-retention';
/** Once a day, at 03:00 UTC (away from the nightly release and the DCU cleanups). */
export const AUDIT_RETENTION_CRON = '0 3 * * *';

export const auditRetentionWorkflow = defineWorkflow<[AuditRetentionInput], AuditRetentionResult>('auditRetention', CONTROL_TASK_QUEUE);
