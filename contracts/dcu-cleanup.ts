/**
 * The DCU cleanups' contracts: dcuGzipCleanup (every registered host deletes its local archives
 * older than the retention) and dcuObjectCleanup (the bucket's objects of tasks that ended before
 * the retention, and any older object, deleted; their tasks marked expired). Each runs on a
 * Temporal Schedule the control worker creates (workers/schedules.ts); the schedule's id is also
 * its runs' workflow id prefix. Operators: `temporal schedule trigger --schedule-id berth-dcu-gzip-cleanup`.
 * Types and definitions only: the workflows import it.
 */
import { CONTROL_TASK_QUEUE } from '../core/temporal-names.js';
import { defineWorkflow } from './workflow.js';

export interface DcuCleanupInput {
  retentionDays: number;
}

export interface DcuGzipCleanupResult {
  /** ISO time: archives last modified before it were deleted. */
  cutoff: string;
  hosts: Array<{ hostId: string; deleted: string[]; kept: number } | { hostId: string; error: string }>;
}

export interface DcuObjectCleanupResult {
  cutoff: string;
  /** The host that did the MinIO work. */
  hostId: string;
  deleted: string[];
  expiredTasks: number;
}

/** The schedules' ids. */
export const DCU_SCHEDULES = {
  gzipCleanup: 'berth-dcu-gzip-cleanup',
  objectCleanup: 'berth-dcu-object-cleanup',
} as const;

export const dcuGzipCleanupWorkflow = defineWorkflow<[DcuCleanupInput], DcuGzipCleanupResult>('dcuGzipCleanup', CONTROL_TASK_QUEUE);
export const dcuObjectCleanupWorkflow = defineWorkflow<[DcuCleanupInput], DcuObjectCleanupResult>('dcuObjectCleanup', CONTROL_TASK_QUEUE);
