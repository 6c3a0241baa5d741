/**
 * The dcu workflow's contract: Download-Compress-Upload of one image for one task (pull it on the
 * task's host, `docker save | gzip` it there, upload the archive to MinIO, charge it). Its input
 * (fixed by the API: the normalized reference and the price), the status it answers, the cancel
 * signal and status query, the workflow id and the descriptor the API starts it with. Imported
 * by the workflow, services/dcu.ts and the tests; operators use the same names from the CLI:
 *   temporal workflow signal --workflow-id dcu-<task_id> --name cancel
 *   temporal workflow query --workflow-id dcu-<task_id> --name status
 * Definitions and types only: the workflow imports it.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { DcuState } from '../core/dcu-state.js';
import { CONTROL_TASK_QUEUE } from '../core/temporal-names.js';
import { defineWorkflow } from './workflow.js';

/** The task as the API created it (row in dcu_tasks, state idle). */
export interface DcuInput {
  taskId: string;
  userId: string;
  username: string;
  hostId: string;
  /** Normalized by core/image-ref before the workflow starts. */
  reference: string;
  /** Minor units per started GB of tar, charged when the upload completes; absent on tasks started before DCU was charged (free). */
  pricePerGb?: number;
}

/** What the `status` query answers (and the workflow returns): the workflow's own view of its task. */
export interface DcuWorkflowStatus {
  taskId: string;
  hostId: string;
  reference: string;
  state: DcuState;
  cancelRequested: boolean;
  gzipFileName: string | null;
  minioObjectName: string | null;
  sizeBytes: number | null;
  compressedBytes: number | null;
  sha256: string | null;
  errorMessage: string | null;
  /** The object this task's was copied from (another task's archive of the same image), if it was. */
  reusedFrom?: string | null;
  /** Minor units charged, once charged. */
  charged?: number | null;
}

/** The signal and query names, as operators type them into the temporal CLI. */
export const DCU_SIGNALS = { cancel: 'cancel' } as const;
export const DCU_QUERIES = { status: 'status' } as const;

/** Stops the running phase, discards its partial artifacts, ends the task failed "cancelled"; the argument says who asked. */
export const dcuCancelSignal = defineSignal<[reason?: string]>(DCU_SIGNALS.cancel);
export const dcuStatusQuery = defineQuery<DcuWorkflowStatus>(DCU_QUERIES.status);

/** A task's workflow id: "dcu-<task_id>". */
export const dcuWorkflowId = (taskId: string) => `dcu-${taskId}`;

export const dcuWorkflow = defineWorkflow<[DcuInput], DcuWorkflowStatus>('dcu', CONTROL_TASK_QUEUE);
