/**
 * DCU activities on the control worker: the persisted state machine (one transition
 * per call, refused when core/dcu-state says it is illegal), the archives a task may
 * reuse, the charge, and what the cleanup workflows read and mark.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { and, asc, desc, eq, inArray, isNotNull, like, lt, ne, or, sql } from 'drizzle-orm';
import type { Database, Transaction } from '../db/client.js';
import { dcuTasks, hosts, users } from '../db/schema.js';
import { AppError } from '../core/errors.js';
import { FailureType } from '../core/failures.js';
import { DCU_CANCELLED_MESSAGE, canTransition, isTerminal, type DcuState } from '../core/dcu-state.js';
import { mb } from '../core/sizes.js';
import { dcuCharge } from '../billing/prices.js';
import { createLedger, type Ledger } from '../services/ledger.js';

export const ILLEGAL_DCU_TRANSITION = 'IllegalDcuTransition';

/** What a transition may record besides the state. */
export interface DcuTransitionPatch {
  hostId?: string;
  errorMessage?: string;
  gzipFileName?: string;
  minioObjectName?: string;
  bytesDone?: number;
  bytesTotal?: number;
  sizeBytes?: number;
  compressedBytes?: number;
  sha256?: string;
  /** Docker's id of the packaged image, once the inspect gave it. */
  imageId?: string;
}

/** A completed task's object that a task of the same image (and reference) may copy. */
export interface DcuReusable {
  taskId: string;
  objectName: string;
  sha256: string;
  sizeBytes: number;
  compressedBytes: number;
}

export interface DcuChargeInput {
  taskId: string;
  userId: string;
  reference: string;
  /** Minor units per started GB, as the task was started with. */
  pricePerGb: number;
  /** What the `completed` transition records, made in the charge's transaction. */
  complete: DcuTransitionPatch;
}

/** Candidates a reuse tries, at most. */
const REUSE_CANDIDATES = 5;
const likeLiteral = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

export interface DcuTransitionInput {
  taskId: string;
  to: DcuState;
  patch?: DcuTransitionPatch;
}

export interface DcuTransitionResult {
  from: DcuState;
  to: DcuState;
  /** False when the task was already in `to` (a retried activity): nothing changed. */
  changed: boolean;
}

/** The transition itself, inside the caller's transaction (see dcuTransition). */
async function transitionIn(tx: Transaction, input: DcuTransitionInput): Promise<DcuTransitionResult> {
  const [row] = await tx.select().from(dcuTasks).where(eq(dcuTasks.id, input.taskId)).for('update');
  if (!row) throw ApplicationFailure.nonRetryable(`DCU task ${input.taskId} does not exist`, 'DcuTaskNotFound');
  const from = row.state as DcuState;
  if (from === input.to) return { from, to: input.to, changed: false };
  if (!canTransition(from, input.to)) {
    throw ApplicationFailure.nonRetryable(`DCU task ${input.taskId}: illegal transition ${from} → ${input.to}`, ILLEGAL_DCU_TRANSITION);
  }
  const patch = input.patch ?? {};
  await tx
    .update(dcuTasks)
    .set({
      ...patch,
      state: input.to,
      updatedAt: sql`now()`,
      ...(row.startTime === null && input.to !== 'failed' ? { startTime: sql`now()` } : {}),
      ...(isTerminal(input.to) ? { endTime: sql`now()` } : {}),
    })
    .where(eq(dcuTasks.id, input.taskId));
  return { from, to: input.to, changed: true };
}

export function createDcuDbActivities(deps: { db: Database; ledger?: Ledger }) {
  const { db } = deps;
  const ledger = deps.ledger ?? createLedger(db);

  return {
    /**
     * Before any work: can the user's balance pay what packaging this image will cost (its
     * size as the daemon reports it, close to the tar's)? Otherwise the task fails now,
     * non-retryably, instead of pulling, compressing and uploading for nothing. The charge
     * itself is still taken when the upload completes (dcuChargeAndComplete).
     */
    async dcuCheckBalance(input: { userId: string; imageBytes: number; pricePerGb: number }): Promise<void> {
      const expected = dcuCharge(input.imageBytes, input.pricePerGb);
      const [row] = await db.select({ balance: users.balance }).from(users).where(eq(users.id, input.userId));
      const balance = row?.balance ?? 0;
      if (balance < expected) {
        throw ApplicationFailure.nonRetryable(
          `insufficient balance: packaging this image (${mb(input.imageBytes)} MB) costs ${expected}, the balance is ${balance}`,
          FailureType.InsufficientFunds,
        );
      }
    },

    /**
     * Moves a task to `to` in one transaction, with the row locked: legal transitions
     * only (a non-retryable IllegalDcuTransition otherwise), start_time on the first
     * working state, end_time on a terminal one. Already in `to`: a no-op, so a retry is safe.
     */
    async dcuTransition(input: DcuTransitionInput): Promise<DcuTransitionResult> {
      return db.transaction((tx) => transitionIn(tx, input));
    },

    /**
     * The archive of the newest task of this user that failed uploading the same object on
     * this host (compressed, so its sha256 is recorded; not cancelled); the file may be gone.
     */
    async dcuKeptArchive(input: { taskId: string; userId: string; hostId: string; minioObjectName: string }) {
      const [row] = await db
        .select({ keptFileName: dcuTasks.gzipFileName, sha256: dcuTasks.sha256, sizeBytes: dcuTasks.sizeBytes })
        .from(dcuTasks)
        .where(
          and(
            eq(dcuTasks.userId, input.userId),
            eq(dcuTasks.hostId, input.hostId),
            eq(dcuTasks.minioObjectName, input.minioObjectName),
            eq(dcuTasks.state, 'failed'),
            ne(dcuTasks.errorMessage, DCU_CANCELLED_MESSAGE),
            isNotNull(dcuTasks.sha256),
            ne(dcuTasks.id, input.taskId),
          ),
        )
        .orderBy(desc(dcuTasks.endTime))
        .limit(1);
      const { keptFileName, sha256, sizeBytes } = row ?? {};
      return keptFileName && sha256 && sizeBytes != null ? { keptFileName, sha256, sizeBytes } : null;
    },

    /**
     * Objects of completed, unexpired tasks (any user's) of the same image id whose object has
     * this task's file name (same repository and tag, so the same tar): the user's own object of
     * that name first, then the newest. The host's copy checks each against MinIO.
     */
    async dcuReusableObjects(input: { taskId: string; imageId: string; objectName: string }): Promise<DcuReusable[]> {
      const file = input.objectName.slice(input.objectName.indexOf('/') + 1);
      const rows = await db
        .select({
          taskId: dcuTasks.id,
          objectName: dcuTasks.minioObjectName,
          sha256: dcuTasks.sha256,
          sizeBytes: dcuTasks.sizeBytes,
          compressedBytes: dcuTasks.compressedBytes,
        })
        .from(dcuTasks)
        .where(
          and(
            eq(dcuTasks.state, 'completed'),
            eq(dcuTasks.imageId, input.imageId),
            eq(dcuTasks.artifactsExpired, false),
            ne(dcuTasks.id, input.taskId),
            isNotNull(dcuTasks.sha256),
            isNotNull(dcuTasks.sizeBytes),
            isNotNull(dcuTasks.compressedBytes),
            or(eq(dcuTasks.minioObjectName, input.objectName), like(dcuTasks.minioObjectName, `%/${likeLiteral(file)}`)),
          ),
        )
        .orderBy(sql`(${dcuTasks.minioObjectName} = ${input.objectName}) desc`, desc(dcuTasks.endTime))
        .limit(REUSE_CANDIDATES);
      return rows.flatMap((r) =>
        r.objectName && r.sha256 && r.sizeBytes != null && r.compressedBytes != null
          ? [{ taskId: r.taskId, objectName: r.objectName, sha256: r.sha256, sizeBytes: r.sizeBytes, compressedBytes: r.compressedBytes }]
          : [],
      );
    },

    /**
     * Charges a task whose object is in MinIO and completes it, in one transaction (charged if
     * and only if completed): every started GB of its tar at the price it was started with, once
     * (ledger key dcu-charge-<taskId>), recorded in dcu_tasks.charged. A balance that cannot pay
     * is a non-retryable InsufficientFunds and changes nothing. A retry is a no-op.
     */
    async dcuChargeAndComplete(input: DcuChargeInput): Promise<{ amount: number; applied: boolean }> {
      return db.transaction(async (tx) => {
        const [row] = await tx.select({ sizeBytes: dcuTasks.sizeBytes }).from(dcuTasks).where(eq(dcuTasks.id, input.taskId));
        if (!row) throw ApplicationFailure.nonRetryable(`DCU task ${input.taskId} does not exist`, 'DcuTaskNotFound');
        if (row.sizeBytes === null) throw ApplicationFailure.nonRetryable(`DCU task ${input.taskId} has no tar size to charge`, 'DcuNotPackaged');
        const amount = dcuCharge(row.sizeBytes, input.pricePerGb);
        // The task row first (as every transition), then the user's (the ledger's lock).
        await transitionIn(tx, { taskId: input.taskId, to: 'completed', patch: input.complete });
        if (amount === 0) return { amount: 0, applied: false };
        try {
          const { applied } = await ledger.applyIn(tx, {
            userId: input.userId,
            amount: -amount,
            kind: 'dcu_charge',
            reason: `DCU of ${input.reference} (${mb(row.sizeBytes)} MB of tar)`.slice(0, 500),
            idempotencyKey: `dcu-charge-${input.taskId}`,
          });
          await tx.update(dcuTasks).set({ charged: amount, updatedAt: sql`now()` }).where(eq(dcuTasks.id, input.taskId));
          return { amount, applied };
        } catch (error) {
          if (error instanceof AppError && error.type === 'insufficient-funds') {
            throw ApplicationFailure.nonRetryable(
              `insufficient balance: packaging ${input.reference} (${mb(row.sizeBytes)} MB of tar) costs ${amount}; ${error.detail}`,
              FailureType.InsufficientFunds,
            );
          }
          throw error;
        }
      });
    },

    /** Registered hosts, the most recently alive first (the order the DCU cleanup tries them; the release looks on each for orphans). */
    async dcuListHosts(): Promise<string[]> {
      const rows = await db.select({ id: hosts.id }).from(hosts).orderBy(desc(hosts.lastHeartbeatAt), asc(hosts.id));
      return rows.map((r) => r.id);
    },

    /** Completed tasks that ended before the cutoff and still have their artifacts. */
    async dcuTasksEndedBefore(cutoffMs: number): Promise<Array<{ id: string; minioObjectName: string | null }>> {
      return db
        .select({ id: dcuTasks.id, minioObjectName: dcuTasks.minioObjectName })
        .from(dcuTasks)
        .where(
          and(
            eq(dcuTasks.state, 'completed'),
            eq(dcuTasks.artifactsExpired, false),
            isNotNull(dcuTasks.endTime),
            lt(dcuTasks.endTime, new Date(cutoffMs)),
          ),
        );
    },

    /** Marks the tasks' artifacts expired: by id, and by the object names the sweep removed. */
    async dcuMarkArtifactsExpired(input: { taskIds: string[]; objectNames: string[] }): Promise<number> {
      const conditions = [];
      if (input.taskIds.length > 0) conditions.push(inArray(dcuTasks.id, input.taskIds));
      if (input.objectNames.length > 0) conditions.push(inArray(dcuTasks.minioObjectName, input.objectNames));
      if (conditions.length === 0) return 0;
      const rows = await db
        .update(dcuTasks)
        .set({ artifactsExpired: true, updatedAt: sql`now()` })
        .where(and(eq(dcuTasks.artifactsExpired, false), eq(dcuTasks.state, 'completed'), or(...conditions)))
        .returning({ id: dcuTasks.id });
      return rows.length;
    },
  };
}

export type DcuDbActivities = ReturnType<typeof createDcuDbActivities>;
