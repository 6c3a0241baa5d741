/**
 * DCU activities on the control worker: the persisted state machine (one transition per call,
 * refused when core/dcu-state says it is illegal), the archives a task may reuse, the balance
 * check and the charge (billing/ledger.ts), and what the cleanup workflows read and mark. The
 * queries are repositories/dcu-tasks.ts's.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Database, Executor } from '../db/client.js';
import { FailureType } from '../core/failures.js';
import { mb } from '../core/sizes.js';
import { billing, InsufficientFundsError } from '../billing/ledger.js';
import { dcuCharge } from '../billing/prices.js';
import * as tasks from '../repositories/dcu-tasks.js';
import { findUserIdByName } from '../repositories/users.js';
import { appendAuditOnce, type KeyedSystemAction } from '../repositories/audit.js';
import { auditOrigin } from './audit-db.js';
import type { DcuReusable, DcuTransitionInput, DcuTransitionPatch, DcuTransitionResult } from '../repositories/dcu-tasks.js';

export type { DcuReusable, DcuTransitionInput, DcuTransitionPatch, DcuTransitionResult } from '../repositories/dcu-tasks.js';

export interface DcuChargeInput {
  taskId: string;
  userId: string;
  reference: string;
  /** Minor units per started GB, as the task was started with. */
  pricePerGb: number;
  /** What the `completed` transition records, made in the charge's transaction. */
  complete: DcuTransitionPatch;
}

const taskNotFound = (taskId: string) => ApplicationFailure.nonRetryable(`DCU task ${taskId} does not exist`, FailureType.DcuTaskNotFound);

/** The transition, inside `tx`; a missing task or an illegal transition is a non-retryable failure. */
async function transitionOrFail(tx: Executor, input: DcuTransitionInput): Promise<DcuTransitionResult> {
  const outcome = await tasks.transition(tx, input);
  if (outcome.ok) return { from: outcome.from, to: outcome.to, changed: outcome.changed };
  if (outcome.reason === 'not-found') throw taskNotFound(input.taskId);
  throw ApplicationFailure.nonRetryable(`DCU task ${input.taskId}: illegal transition ${outcome.from} → ${input.to}`, FailureType.IllegalTransition);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The task a local archive (or its partial file) belongs to: archives are named
 * `<task id>_<object's file name>` (core/dcu-names.ts dcuGzipFileName), partial files
 * `<archive>.<attempt>.partial`. Undefined for a file not named so.
 */
export function taskIdOfArchive(fileName: string): string | undefined {
  const archive = fileName.replace(/(\.\d+)?\.partial$/, '');
  const id = archive.slice(0, 36);
  return UUID.test(id) && archive[36] === '_' ? id.toLowerCase() : undefined;
}

/** The owner an object's name gives (`<username>/...`, core/dcu-names.ts dcuObjectName), when that user exists. */
async function ownerOfObjectName(db: Executor, objectName: string): Promise<string | null> {
  const username = objectName.split('/')[0];
  return (username ? await findUserIdByName(db, username) : undefined) ?? null;
}

export function createDcuDbActivities(deps: { db: Database }) {
  const { db } = deps;

  return {
    /**
     * Before any work: can the user's balance pay what packaging this image will cost (its
     * size as the daemon reports it, close to the tar's)? Otherwise the task fails now
     * (InsufficientFundsError: the non-retryable InsufficientFunds failure) instead of pulling,
     * compressing and uploading for nothing. The charge itself is still taken when the upload
     * completes (dcuChargeAndComplete).
     */
    async dcuCheckBalance(input: { userId: string; imageBytes: number; pricePerGb: number }): Promise<void> {
      const expected = dcuCharge(input.imageBytes, input.pricePerGb);
      await db.transaction((tx) =>
        billing.assertCanPay(tx, {
          userId: input.userId,
          amount: expected,
          what: 'packaging this image',
          refusal: (balance) => `insufficient balance: packaging this image (${mb(input.imageBytes)} MB) costs ${expected}, the balance is ${balance}`,
        }),
      );
    },

    /**
     * Moves a task to `to` in one transaction, with the row locked: legal transitions only (a
     * non-retryable IllegalTransition otherwise), start_time on the first working state,
     * end_time on a terminal one. Already in `to`: a no-op, so a retry is safe.
     */
    async dcuTransition(input: DcuTransitionInput): Promise<DcuTransitionResult> {
      return db.transaction((tx) => transitionOrFail(tx, input));
    },

    /**
     * The archive of the newest task of this user that failed uploading the same object on
     * this host (compressed, so its sha256 is recorded; not cancelled); the file may be gone.
     */
    async dcuKeptArchive(input: { taskId: string; userId: string; hostId: string; minioObjectName: string }) {
      return tasks.keptArchive(db, input);
    },

    /**
     * Objects of completed, unexpired tasks (any user's) of the same image id whose object has
     * this task's file name (same repository and tag, so the same tar): the user's own object of
     * that name first, then the newest. The host's copy checks each against MinIO.
     */
    async dcuReusableObjects(input: { taskId: string; imageId: string; objectName: string }): Promise<DcuReusable[]> {
      return tasks.reusableObjects(db, input);
    },

    /**
     * Charges a task whose object is in MinIO and completes it, in one transaction (charged if
     * and only if completed): every started GB of its tar at the price it was started with, once
     * (billing.chargeDcu), recorded in dcu_tasks.charged. A balance that cannot pay is an
     * InsufficientFundsError (non-retryable) and changes nothing. A retry is a no-op.
     */
    async dcuChargeAndComplete(input: DcuChargeInput): Promise<{ amount: number; applied: boolean }> {
      return db.transaction(async (tx) => {
        const sizeBytes = await tasks.tarSizeOf(tx, input.taskId);
        if (sizeBytes === undefined) throw taskNotFound(input.taskId);
        if (sizeBytes === null) throw ApplicationFailure.nonRetryable(`DCU task ${input.taskId} has no tar size to charge`, FailureType.DcuNotPackaged);
        const amount = dcuCharge(sizeBytes, input.pricePerGb);
        // The task row first (as every transition), then the user's (the ledger's lock).
        await transitionOrFail(tx, { taskId: input.taskId, to: 'completed', patch: input.complete });
        if (amount === 0) return { amount: 0, applied: false };
        const what = `packaging ${input.reference} (${mb(sizeBytes)} MB of tar)`;
        try {
          const { applied } = await billing.chargeDcu(tx, { userId: input.userId, taskId: input.taskId, amount, reason: `DCU of ${input.reference} (${mb(sizeBytes)} MB of tar)`.slice(0, 500) });
          await tasks.recordCharge(tx, input.taskId, amount);
          return { amount, applied };
        } catch (error) {
          // The same refusal, in the words the task's error_message has always had.
          if (error instanceof InsufficientFundsError) throw new InsufficientFundsError(`insufficient balance: ${what} costs ${amount}; ${error.message}`);
          throw error;
        }
      });
    },

    /** Completed tasks that ended before the cutoff and still have their artifacts. */
    async dcuTasksEndedBefore(cutoffMs: number): Promise<Array<{ id: string; minioObjectName: string | null }>> {
      return tasks.completedEndedBefore(db, new Date(cutoffMs));
    },

    /**
     * Marks the tasks' artifacts expired: by id, and by the object names the sweep removed; and,
     * in the same transaction, audits the cleanup (`dcu.cleanupObject`, actor system, the
     * cleanup's workflow id): one entry per task marked or whose object was removed (target the
     * task, subject its user), one per removed object no completed task names (target the object,
     * subject the user its name starts with). Each entry is keyed by the run and the task (or
     * object): a retry writes none twice.
     */
    async dcuMarkArtifactsExpired(input: { taskIds: string[]; objectNames: string[] }): Promise<number> {
      const origin = auditOrigin();
      const run = origin.workflowId ?? 'none';
      return db.transaction(async (tx) => {
        const marked = await tasks.markArtifactsExpired(tx, input);
        const removed = new Set(input.objectNames);
        const naming = await tasks.tasksNamingObjects(tx, input.objectNames);
        const affected = new Map([...marked, ...naming.filter((t) => t.state === 'completed')].map((t) => [t.id, t]));
        const entries: KeyedSystemAction[] = [...affected.values()].map((t) => ({
          key: `dcu.cleanupObject:${run}:${t.id}`,
          action: 'dcu.cleanupObject',
          targetType: 'dcu_task',
          targetId: t.id,
          subjectUserId: t.userId,
          workflowId: origin.workflowId,
          detail: { objectName: t.minioObjectName, objectRemoved: t.minioObjectName !== null && removed.has(t.minioObjectName), artifactsExpired: true },
        }));
        const covered = new Set([...affected.values()].flatMap((t) => (t.minioObjectName ? [t.minioObjectName] : [])));
        for (const name of removed) {
          if (covered.has(name)) continue;
          // No completed task names it: a failed task's, or one no task knows.
          const task = naming.find((t) => t.minioObjectName === name);
          entries.push({
            key: `dcu.cleanupObject:${run}:${name}`,
            action: 'dcu.cleanupObject',
            targetType: task ? 'dcu_task' : 'dcu_object',
            targetId: task ? task.id : name,
            subjectUserId: task?.userId ?? (await ownerOfObjectName(tx, name)),
            workflowId: origin.workflowId,
            detail: { objectName: name, objectRemoved: true },
          });
        }
        await appendAuditOnce(tx, entries, origin.since);
        return marked.length;
      });
    },

    /**
     * Audits what the gzip cleanup removed from each host's archive directory
     * (`dcu.cleanupArchive`, actor system, the cleanup's workflow id): one entry per file, whose
     * target is the task its name gives (subject the task's user), or the file when no task has
     * that id. Keyed by the run, the host and the file: a retry writes none twice.
     */
    async dcuAuditGzipCleanup(input: { hosts: Array<{ hostId: string; deleted: string[] }> }): Promise<number> {
      const origin = auditOrigin();
      const run = origin.workflowId ?? 'none';
      const files = input.hosts.flatMap(({ hostId, deleted }) => deleted.map((file) => ({ hostId, file, taskId: taskIdOfArchive(file) })));
      const owners = new Map((await tasks.ownersOfTasks(db, [...new Set(files.flatMap((f) => (f.taskId ? [f.taskId] : [])))])).map((t) => [t.id, t]));
      const entries: KeyedSystemAction[] = files.map(({ hostId, file, taskId }) => {
        const task = taskId ? owners.get(taskId) : undefined;
        return {
          key: `dcu.cleanupArchive:${run}:${hostId}:${file}`,
          action: 'dcu.cleanupArchive',
          ...(task ? { targetType: 'dcu_task', targetId: task.id } : { targetType: 'dcu_archive', targetId: file }),
          subjectUserId: task?.userId ?? null,
          workflowId: origin.workflowId,
          detail: { hostId, fileName: file, partial: file.endsWith('.partial') },
        };
      });
      return db.transaction((tx) => appendAuditOnce(tx, entries, origin.since));
    },
  };
}

export type DcuDbActivities = ReturnType<typeof createDcuDbActivities>;
