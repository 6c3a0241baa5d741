/**
 * DCU activities on the control worker: the persisted state machine (one transition
 * per call, refused when core/dcu-state says it is illegal) and what the cleanup
 * workflows read and mark.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { and, asc, desc, eq, inArray, isNotNull, lt, ne, or, sql } from 'drizzle-orm';
import type { Database } from '../db/client.js';
import { dcuTasks, hosts } from '../db/schema.js';
import { DCU_CANCELLED_MESSAGE, canTransition, isTerminal, type DcuState } from '../core/dcu-state.js';

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
}

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

export function createDcuDbActivities(deps: { db: Database }) {
  const { db } = deps;

  return {
    /**
     * Moves a task to `to` in one transaction, with the row locked: legal transitions
     * only (a non-retryable IllegalDcuTransition otherwise), start_time on the first
     * working state, end_time on a terminal one. Already in `to`: a no-op, so a retry is safe.
     */
    async dcuTransition(input: DcuTransitionInput): Promise<DcuTransitionResult> {
      return db.transaction(async (tx) => {
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
      });
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
