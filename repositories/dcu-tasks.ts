/**
 * DCU tasks: every query on the dcu_tasks table, the one rule of who sees a task (its owner;
 * admins all), and the recording of a state change, which the state machine (core/dcu-state.ts)
 * must allow. Used by services/dcu.ts (admission, the API's reads) and activities/dcu-db.ts (the
 * workflow's states, reuse, the charge's row, the cleanups) alike. Each function takes the
 * executor to run on, so a caller's transaction can be passed.
 */
import { and, count, desc, eq, ilike, inArray, isNotNull, like, lt, ne, notInArray, or, sql, type SQL } from 'drizzle-orm';
import type { Executor } from '../db/client.js';
import { dcuTasks } from '../db/schema.js';
import { DCU_CANCELLED_MESSAGE, DCU_STATES, canTransition, isTerminal, type DcuState } from '../core/dcu-state.js';
import { pageOf, type Page, type PageRequest } from './paging.js';

export type DcuTaskRow = typeof dcuTasks.$inferSelect;
export type NewDcuTaskRow = typeof dcuTasks.$inferInsert;

/** Who is reading: the user's id and role. */
import type { Viewer } from './users.js';
export type { Viewer };

/** The one visibility rule of DCU tasks: a user sees their own; an admin sees all. */
export function visibleTo(viewer: Viewer): SQL | undefined {
  return viewer.role === 'admin' ? undefined : eq(dcuTasks.userId, viewer.id);
}

/** The task `id` if `viewer` may see it. */
export async function findVisible(db: Executor, viewer: Viewer, id: string): Promise<DcuTaskRow | undefined> {
  const [row] = await db.select().from(dcuTasks).where(and(eq(dcuTasks.id, id), visibleTo(viewer)));
  return row;
}

/** Escapes LIKE wildcards so a substring filter matches literally. */
const likeLiteral = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

export interface DcuTaskFilter {
  /** A substring of the image name, case-insensitive. */
  dockerImageName?: string;
  username?: string;
  state?: DcuState;
}

/** The tasks `viewer` may see, filtered, newest first. */
export function listVisible(db: Executor, viewer: Viewer, filter: DcuTaskFilter, page: PageRequest): Promise<Page<DcuTaskRow>> {
  const where = and(
    visibleTo(viewer),
    filter.username ? eq(dcuTasks.username, filter.username) : undefined,
    filter.state ? eq(dcuTasks.state, filter.state) : undefined,
    filter.dockerImageName ? ilike(dcuTasks.dockerImageName, `%${likeLiteral(filter.dockerImageName)}%`) : undefined,
  );
  return pageOf(db, dcuTasks, where, [desc(dcuTasks.createdAt), desc(dcuTasks.id)], page);
}

// ---------------------------------------------------------------------------------------------
// Admission (services/dcu.ts)

const TERMINAL_STATES = DCU_STATES.filter((s) => isTerminal(s));
const inFlight = (userId: string) => and(eq(dcuTasks.userId, userId), notInArray(dcuTasks.state, TERMINAL_STATES));

/** How many of the user's tasks are in flight (not in a terminal state). */
export async function countInFlight(db: Executor, userId: string): Promise<number> {
  const [row] = await db.select({ n: count() }).from(dcuTasks).where(inFlight(userId));
  return row?.n ?? 0;
}

/** The ids of the user's tasks in flight that were created before `before`. */
export async function inFlightCreatedBefore(db: Executor, userId: string, before: Date): Promise<string[]> {
  const rows = await db
    .select({ id: dcuTasks.id })
    .from(dcuTasks)
    .where(and(inFlight(userId), lt(dcuTasks.createdAt, before)));
  return rows.map((r) => r.id);
}

/**
 * Ends tasks that never reached a terminal state through their workflow (it was never started,
 * or ended without finishing them): failed with `errorMessage`. Tasks that ended meanwhile stay as they are.
 */
export async function failUnfinished(db: Executor, ids: string[], errorMessage: string): Promise<void> {
  if (ids.length === 0) return;
  await db
    .update(dcuTasks)
    .set({ state: 'failed', errorMessage, endTime: sql`now()`, updatedAt: sql`now()` })
    .where(and(inArray(dcuTasks.id, ids), notInArray(dcuTasks.state, TERMINAL_STATES)));
}

/** Bytes of the user's stored archives (the quota's usage): completed, not expired, each object once. */
export async function storedBytes(db: Executor, userId: string): Promise<number> {
  const result = await db.execute<{ used: string | null }>(sql`
    select coalesce(sum(compressed_bytes), 0)::text as used from (
      select distinct on (${dcuTasks.minioObjectName}) ${dcuTasks.compressedBytes} as compressed_bytes
      from ${dcuTasks}
      where ${dcuTasks.userId} = ${userId} and ${dcuTasks.state} = 'completed' and ${dcuTasks.artifactsExpired} = false
    ) stored`);
  return Number(result.rows[0]?.used ?? 0);
}

export async function insertTask(db: Executor, row: NewDcuTaskRow): Promise<void> {
  await db.insert(dcuTasks).values(row);
}

// ---------------------------------------------------------------------------------------------
// The workflow's states (activities/dcu-db.ts)

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

/** A transition made, or why none was: no such task, or one core/dcu-state does not allow. */
export type DcuTransitionOutcome =
  | ({ ok: true } & DcuTransitionResult)
  | { ok: false; reason: 'not-found' }
  | { ok: false; reason: 'illegal'; from: DcuState };

/**
 * Moves a task to `to`, with its row locked until the end of `tx`: legal transitions only,
 * start_time on the first working state, end_time on a terminal one. Already in `to`: nothing
 * changes (a retry is safe).
 */
export async function transition(tx: Executor, input: DcuTransitionInput): Promise<DcuTransitionOutcome> {
  const [row] = await tx.select().from(dcuTasks).where(eq(dcuTasks.id, input.taskId)).for('update');
  if (!row) return { ok: false, reason: 'not-found' };
  const from = row.state;
  if (from === input.to) return { ok: true, from, to: input.to, changed: false };
  if (!canTransition(from, input.to)) return { ok: false, reason: 'illegal', from };
  await tx
    .update(dcuTasks)
    .set({
      ...(input.patch ?? {}),
      state: input.to,
      updatedAt: sql`now()`,
      ...(row.startTime === null && input.to !== 'failed' ? { startTime: sql`now()` } : {}),
      ...(isTerminal(input.to) ? { endTime: sql`now()` } : {}),
    })
    .where(eq(dcuTasks.id, input.taskId));
  return { ok: true, from, to: input.to, changed: true };
}

/** A kept archive a task may adopt: another task's file on the same host, with what it recorded of it. */
export interface DcuKeptArchive {
  keptFileName: string;
  sha256: string;
  sizeBytes: number;
}

/**
 * The archive of the newest task of this user that failed uploading the same object on this host
 * (compressed, so its sha256 is recorded; not cancelled); the file may be gone.
 */
export async function keptArchive(
  db: Executor,
  input: { taskId: string; userId: string; hostId: string; minioObjectName: string },
): Promise<DcuKeptArchive | null> {
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
}

/** A completed task's object that a task of the same image (and reference) may copy. */
export interface DcuReusable {
  taskId: string;
  objectName: string;
  sha256: string;
  sizeBytes: number;
  compressedBytes: number;
}

/** Candidates a reuse tries, at most. */
const REUSE_CANDIDATES = 5;

/**
 * Objects of completed, unexpired tasks (any user's) of the same image id whose object has this
 * task's file name (same repository and tag, so the same tar): the object of exactly that name
 * first (the user's own), then the newest.
 */
export async function reusableObjects(db: Executor, input: { taskId: string; imageId: string; objectName: string }): Promise<DcuReusable[]> {
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
}

/** The task's tar size (what it is charged by): undefined without such a task, null before it was packaged. */
export async function tarSizeOf(db: Executor, taskId: string): Promise<number | null | undefined> {
  const [row] = await db.select({ sizeBytes: dcuTasks.sizeBytes }).from(dcuTasks).where(eq(dcuTasks.id, taskId));
  return row ? row.sizeBytes : undefined;
}

/** Records what the task was charged. */
export async function recordCharge(db: Executor, taskId: string, amount: number): Promise<void> {
  await db.update(dcuTasks).set({ charged: amount, updatedAt: sql`now()` }).where(eq(dcuTasks.id, taskId));
}

// ---------------------------------------------------------------------------------------------
// The cleanups

/** Completed tasks that ended before the cutoff and still have their artifacts. */
export function completedEndedBefore(db: Executor, cutoff: Date): Promise<Array<{ id: string; minioObjectName: string | null }>> {
  return db
    .select({ id: dcuTasks.id, minioObjectName: dcuTasks.minioObjectName })
    .from(dcuTasks)
    .where(and(eq(dcuTasks.state, 'completed'), eq(dcuTasks.artifactsExpired, false), isNotNull(dcuTasks.endTime), lt(dcuTasks.endTime, cutoff)));
}

/** A task as the cleanups' audit names it: the task, its owner, its artifacts. */
export interface DcuTaskOwner {
  id: string;
  userId: string;
  state: DcuState;
  hostId: string | null;
  minioObjectName: string | null;
  gzipFileName: string | null;
}

const ownerColumns = {
  id: dcuTasks.id,
  userId: dcuTasks.userId,
  state: dcuTasks.state,
  hostId: dcuTasks.hostId,
  minioObjectName: dcuTasks.minioObjectName,
  gzipFileName: dcuTasks.gzipFileName,
};

/** Marks completed tasks' artifacts expired: by id, and by the object names a sweep removed. The tasks it marked. */
export async function markArtifactsExpired(db: Executor, input: { taskIds: string[]; objectNames: string[] }): Promise<DcuTaskOwner[]> {
  const conditions = [];
  if (input.taskIds.length > 0) conditions.push(inArray(dcuTasks.id, input.taskIds));
  if (input.objectNames.length > 0) conditions.push(inArray(dcuTasks.minioObjectName, input.objectNames));
  if (conditions.length === 0) return [];
  return db
    .update(dcuTasks)
    .set({ artifactsExpired: true, updatedAt: sql`now()` })
    .where(and(eq(dcuTasks.artifactsExpired, false), eq(dcuTasks.state, 'completed'), or(...conditions)))
    .returning(ownerColumns);
}

/** Tasks by id, in any state (whose archives a sweep removed). */
export async function ownersOfTasks(db: Executor, ids: string[]): Promise<DcuTaskOwner[]> {
  if (ids.length === 0) return [];
  return db.select(ownerColumns).from(dcuTasks).where(inArray(dcuTasks.id, ids));
}

/** Tasks naming these objects, in any state, newest first (whose objects a sweep removed). */
export async function tasksNamingObjects(db: Executor, objectNames: string[]): Promise<DcuTaskOwner[]> {
  if (objectNames.length === 0) return [];
  return db.select(ownerColumns).from(dcuTasks).where(inArray(dcuTasks.minioObjectName, objectNames)).orderBy(desc(dcuTasks.createdAt));
}
