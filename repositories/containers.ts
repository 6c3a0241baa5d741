/**
 * Container records: every query on the containers table, the one rule of who sees a container
 * (its owner; admins all), and the recording of a state change, which the state machine
 * (core/container-state.ts) must allow. Used by services/containers.ts (admission, the API's
 * reads), activities/containers-db.ts (the workflow's states and money), the release's
 * activities and the host workers alike. Each function takes the executor to run on, so a
 * caller's transaction can be passed.
 */
import { and, asc, count, desc, eq, inArray, isNotNull, isNull, notInArray, sql, type SQL } from 'drizzle-orm';
import type { Executor } from '../db/client.js';
import { containers } from '../db/schema.js';
import { assertTransition, isEnded, type ContainerReasonCode, type ContainerStatus, type EndedStatus } from '../core/container-state.js';
import { pageOf, type Page, type PageRequest } from './paging.js';

export type ContainerRow = typeof containers.$inferSelect;
export type NewContainerRow = typeof containers.$inferInsert;

import type { Viewer } from './users.js';
export type { Viewer };

/** The one visibility rule of containers: a user sees their own; an admin sees all. */
export function visibleTo(viewer: Viewer): SQL | undefined {
  return viewer.role === 'admin' ? undefined : eq(containers.userId, viewer.id);
}

/** A record not yet released: it holds its host port, its name and one of its user's container slots. */
const live = isNull(containers.removedAt);

export async function findById(db: Executor, id: string): Promise<ContainerRow | undefined> {
  const [row] = await db.select().from(containers).where(eq(containers.id, id));
  return row;
}

/** The container `id` if `viewer` may see it. */
export async function findVisible(db: Executor, viewer: Viewer, id: string): Promise<ContainerRow | undefined> {
  const [row] = await db.select().from(containers).where(and(eq(containers.id, id), visibleTo(viewer)));
  return row;
}

export interface ContainerFilter {
  /** An admin's narrowing to one owner (ignored for users: they see their own). */
  userId?: string;
  host?: string;
  /** One state (released ones included); without it, the live containers. */
  state?: ContainerStatus;
}

/** The containers `viewer` may see, newest first. */
export function listVisible(db: Executor, viewer: Viewer, filter: ContainerFilter, page: PageRequest): Promise<Page<ContainerRow>> {
  const where = and(
    visibleTo(viewer),
    filter.userId && viewer.role === 'admin' ? eq(containers.userId, filter.userId) : undefined,
    filter.host ? eq(containers.hostId, filter.host) : undefined,
    filter.state ? eq(containers.state, filter.state) : live,
  );
  return pageOf(db, containers, where, [desc(containers.createdAt), asc(containers.id)], page);
}

// ---------------------------------------------------------------------------------------------
// Admission

/** The user's containers that are running (a disabled user's are stopped). */
export async function runningOf(db: Executor, userId: string): Promise<string[]> {
  const rows = await db
    .select({ id: containers.id })
    .from(containers)
    .where(and(eq(containers.userId, userId), eq(containers.state, 'running'), isNull(containers.removedAt)));
  return rows.map((r) => r.id);
}

/** How many live containers the user has (each holds one of their slots). */
export async function countLive(db: Executor, userId: string): Promise<number> {
  const [row] = await db.select({ n: count() }).from(containers).where(and(eq(containers.userId, userId), live));
  return row?.n ?? 0;
}

/** Live records (not released: removed and failed ones are) counted by state and host: one GROUP BY, a row per pair that has any. */
export async function countLiveByStateAndHost(db: Executor): Promise<Array<{ state: ContainerStatus; hostId: string; n: number }>> {
  return db
    .select({ state: containers.state, hostId: containers.hostId, n: count() })
    .from(containers)
    .where(live)
    .groupBy(containers.state, containers.hostId);
}

/** The host ports live containers hold on a host. */
export async function usedPorts(db: Executor, hostId: string): Promise<Set<number>> {
  const rows = await db.select({ port: containers.hostPort }).from(containers).where(and(eq(containers.hostId, hostId), live));
  return new Set(rows.map((r) => r.port));
}

/** The lowest port of `range` no live container holds on the host, if any. */
export async function freePort(db: Executor, hostId: string, range: { from: number; to: number }): Promise<number | undefined> {
  const used = await usedPorts(db, hostId);
  for (let p = range.from; p <= range.to; p++) if (!used.has(p)) return p;
  return undefined;
}

/** The unique indexes an insert may run into (a live name per user, a live port per host). */
export const CONTAINER_CONSTRAINTS = {
  userNameLive: 'containers_user_name_live_key',
  hostPortLive: 'containers_host_port_live_key',
} as const;

export async function insert(db: Executor, values: NewContainerRow): Promise<ContainerRow> {
  const [row] = await db.insert(containers).values(values).returning();
  return row!;
}

// ---------------------------------------------------------------------------------------------
// Hosts and the release

/** Live containers of a host that Docker has seen, for reconciliation on its host worker. */
export async function liveOnHost(db: Executor, hostId: string): Promise<string[]> {
  const rows = await db
    .select({ id: containers.id })
    .from(containers)
    .where(and(eq(containers.hostId, hostId), live, isNotNull(containers.dockerId)));
  return rows.map((r) => r.id);
}

/** Live containers on every host and in every state, oldest first, but those in `skip`. */
export async function listLive(db: Executor, skip: string[], limit: number): Promise<Array<{ id: string; hostId: string; state: ContainerStatus }>> {
  return db
    .select({ id: containers.id, hostId: containers.hostId, state: containers.state })
    .from(containers)
    .where(and(live, skip.length ? notInArray(containers.id, skip) : undefined))
    .orderBy(asc(containers.createdAt), asc(containers.id))
    .limit(limit);
}

/** Of these ids, those of live records. */
export async function liveIdsAmong(db: Executor, ids: string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await db.select({ id: containers.id }).from(containers).where(and(inArray(containers.id, ids), live));
  return rows.map((r) => r.id);
}

/** Whose these containers are, live or released (the audit of the nightly release's removals). */
export async function ownersOf(db: Executor, ids: string[]): Promise<Array<{ id: string; userId: string; hostId: string; imageReference: string }>> {
  if (ids.length === 0) return [];
  return db
    .select({ id: containers.id, userId: containers.userId, hostId: containers.hostId, imageReference: containers.imageReference })
    .from(containers)
    .where(inArray(containers.id, ids));
}

/** Whether the container has a live record (false when released, or when there is none). */
export async function isLive(db: Executor, id: string): Promise<boolean> {
  const [row] = await db.select({ id: containers.id }).from(containers).where(and(eq(containers.id, id), live));
  return row !== undefined;
}

// ---------------------------------------------------------------------------------------------
// States and money, as the workflow records them

export interface ContainerStatePatch {
  state: ContainerStatus;
  stateReason?: string | null;
  stateReasonCode?: ContainerReasonCode | null;
  dockerId?: string;
  exitCode?: number | null;
  /** Epoch ms of the latest start. */
  startedAt?: number;
}

/** A state recorded: the state the record was in, and whose container it is. */
export interface RecordedState {
  from: ContainerStatus;
  userId: string;
  hostId: string;
  imageReference: string;
}

/** Locks the record until the end of `tx` and answers its state and owner (undefined: no record). */
async function lockState(tx: Executor, id: string): Promise<RecordedState | undefined> {
  const [row] = await tx
    .select({ from: containers.state, userId: containers.userId, hostId: containers.hostId, imageReference: containers.imageReference })
    .from(containers)
    .where(eq(containers.id, id))
    .for('update');
  return row;
}

/**
 * Records the container's state, with the record locked: an illegal transition from the state
 * it is in throws IllegalContainerTransitionError and changes nothing. A container without a
 * record is left alone. Run it in a transaction. Answers the state it was in and the owner
 * (undefined: no record).
 */
export async function recordState(tx: Executor, id: string, patch: ContainerStatePatch): Promise<RecordedState | undefined> {
  const locked = await lockState(tx, id);
  if (locked === undefined) return undefined;
  assertTransition(locked.from, patch.state);
  await tx
    .update(containers)
    .set({
      state: patch.state,
      stateReason: patch.stateReason ?? null,
      stateReasonCode: patch.stateReasonCode ?? null,
      ...(patch.dockerId !== undefined ? { dockerId: patch.dockerId } : {}),
      ...(patch.exitCode !== undefined ? { exitCode: patch.exitCode } : {}),
      ...(patch.startedAt !== undefined ? { startedAt: new Date(patch.startedAt) } : {}),
      ...(isEnded(patch.state) ? { removedAt: sql`coalesce(${containers.removedAt}, now())` } : {}),
    })
    .where(eq(containers.id, id));
  return locked;
}

/**
 * The container is gone (removed) or never ran (failed): its port, its name and its slot are
 * free again. With the record locked; an illegal transition throws. A record already in that
 * state keeps its reason (a retried release, or a workflow ending a record the API released).
 * Run it in a transaction. Answers the state it was in and the owner when it changed it
 * (undefined: no record, or released already).
 */
export async function release(tx: Executor, id: string, state: EndedStatus, reason: string | null, reasonCode: ContainerReasonCode | null): Promise<RecordedState | undefined> {
  const locked = await lockState(tx, id);
  if (locked === undefined || locked.from === state) return undefined;
  assertTransition(locked.from, state);
  await tx
    .update(containers)
    .set({ state, stateReason: reason, stateReasonCode: reasonCode, removedAt: sql`coalesce(${containers.removedAt}, now())` })
    .where(eq(containers.id, id));
  return locked;
}

/**
 * The API's release of a record whose workflow it could not confirm started (failed,
 * start_failed): only while the record is still `creating` with nothing charged, with it locked,
 * so that it never undoes a run that has taken the record (charged its first period, or recorded
 * a state). Answers whether it released it.
 */
export async function releaseUnstarted(tx: Executor, id: string, reason: string): Promise<boolean> {
  const [row] = await tx.select({ state: containers.state, charged: containers.charged }).from(containers).where(eq(containers.id, id)).for('update');
  if (!row || row.state !== 'creating' || row.charged !== 0) return false;
  return (await release(tx, id, 'failed', reason, 'start_failed')) !== undefined;
}

/** Whether the record has ended (removed or failed), with it locked until the end of `tx` (false when there is none). */
export async function hasEndedLocked(tx: Executor, id: string): Promise<boolean> {
  const locked = await lockState(tx, id);
  return locked !== undefined && isEnded(locked.from);
}

/** Adds a signed amount to the container's running total of charges (a charge > 0, a refund < 0). */
export async function addCharged(db: Executor, id: string, delta: number): Promise<void> {
  await db
    .update(containers)
    .set({ charged: sql`${containers.charged} + ${delta}` })
    .where(eq(containers.id, id));
}

/** Containers not yet removed that run from the image record `imageId`: while any exists, the record stays. */
export async function countLiveUsingImage(db: Executor, imageId: string): Promise<number> {
  const [row] = await db
    .select({ n: count() })
    .from(containers)
    .where(and(eq(containers.imageId, imageId), isNull(containers.removedAt)));
  return row?.n ?? 0;
}
