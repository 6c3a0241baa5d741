/**
 * Image records: every query on the images table, and the one rule of who sees an image (their
 * own and the public ones; admins all). Used by services/images.ts (the API's reads and the
 * removal's checks) and activities/images-db.ts (the workflows' records and money) alike. Each
 * function takes the executor to run on, so a caller's transaction can be passed.
 */
import { and, count, desc, eq, inArray, ne, or, type SQL } from 'drizzle-orm';
import type { Executor } from '../db/client.js';
import { images } from '../db/schema.js';
import { sizeMb } from '../core/sizes.js';
import type { ImageView } from '../contracts/pull-image.js';
import { pageOf, type Page, type PageRequest } from './paging.js';

export type { ImageView } from '../contracts/pull-image.js';
export type ImageRow = typeof images.$inferSelect;
export type NewImageRow = typeof images.$inferInsert;

import type { Viewer } from './users.js';
export type { Viewer };

export function toImageView(row: ImageRow): ImageView {
  return {
    id: row.id,
    userId: row.userId,
    reference: row.reference,
    repository: row.repository,
    tag: row.tag,
    digest: row.digest,
    imageId: row.imageId,
    sizeBytes: row.sizeBytes,
    sizeMb: sizeMb(row.sizeBytes),
    host: row.hostId,
    ports: row.ports,
    visibility: row.visibility,
    charged: row.charged,
    pullId: row.pullId,
    createdAt: row.createdAt.toISOString(),
  };
}

/** The one visibility rule of images: a user sees their own and the public ones; an admin sees all. */
export function visibleTo(viewer: Viewer): SQL | undefined {
  return viewer.role === 'admin' ? undefined : or(eq(images.userId, viewer.id), eq(images.visibility, 'public'));
}

/** The images `viewer` may see, newest first (an admin may narrow them to one owner). */
export function listVisible(db: Executor, viewer: Viewer, filter: { userId?: string }, page: PageRequest): Promise<Page<ImageRow>> {
  const filters = [visibleTo(viewer)];
  if (filter.userId && viewer.role === 'admin') filters.push(eq(images.userId, filter.userId));
  return pageOf(db, images, and(...filters), [desc(images.createdAt), desc(images.id)], page);
}

/** The image `id` if `viewer` may see it. */
export async function findVisible(db: Executor, viewer: Viewer, id: string): Promise<ImageRow | undefined> {
  const [row] = await db.select().from(images).where(and(eq(images.id, id), visibleTo(viewer)));
  return row;
}

/** The record a user owns for a reference on a host (one at most, by a unique constraint). */
export async function findOwned(db: Executor, key: { userId: string; hostId: string; reference: string }): Promise<ImageRow | undefined> {
  const [row] = await db
    .select()
    .from(images)
    .where(and(eq(images.userId, key.userId), eq(images.hostId, key.hostId), eq(images.reference, key.reference)));
  return row;
}

/**
 * Whether a record is the user's to keep: a record whose removal has started (removeImage marks it
 * before it touches the host) is leaving, and answers no pull as owned.
 */
export const isLeaving = (row: Pick<ImageRow, 'removalStartedAt'>): boolean => row.removalStartedAt !== null;

/**
 * Marks the record `id` as being removed (removeImage's first step) and counts the other records
 * of its reference on its host, in one statement; the count is of records other than `id` even
 * when `id` is gone already.
 */
export async function markRemoval(db: Executor, id: string, hostId: string, reference: string): Promise<number> {
  // A time of millisecond precision, which clearRemoval's `since` (a Date) compares equal.
  await db.update(images).set({ removalStartedAt: new Date() }).where(eq(images.id, id));
  return countOtherRecords(db, hostId, reference, id);
}

/** Unmarks a record whose removal failed: it stays, owned again (only the mark of `since`, when given). */
export async function clearRemoval(db: Executor, id: string, since?: Date | null): Promise<void> {
  await db
    .update(images)
    .set({ removalStartedAt: null })
    .where(and(eq(images.id, id), since ? eq(images.removalStartedAt, since) : undefined));
}

/** Records an image unless the user has this reference on this host already (then undefined). */
export async function insertUnlessOwned(db: Executor, values: NewImageRow): Promise<ImageRow | undefined> {
  const [row] = await db
    .insert(images)
    .values(values)
    .onConflictDoNothing({ target: [images.userId, images.hostId, images.reference] })
    .returning();
  return row;
}

/** The record `id`, its row locked until the end of the transaction `tx`. */
export async function lockById(tx: Executor, id: string): Promise<ImageRow | undefined> {
  const [row] = await tx.select().from(images).where(eq(images.id, id)).for('update');
  return row;
}

/** Whose these records are (the audit of what the nightly release could not remove). */
export async function ownersOf(db: Executor, ids: string[]): Promise<Array<{ id: string; userId: string; hostId: string; reference: string }>> {
  if (ids.length === 0) return [];
  return db.select({ id: images.id, userId: images.userId, hostId: images.hostId, reference: images.reference }).from(images).where(inArray(images.id, ids));
}

export async function deleteById(db: Executor, id: string): Promise<void> {
  await db.delete(images).where(eq(images.id, id));
}

/** Makes an image public; undefined when there is no such image. */
export async function publish(db: Executor, id: string): Promise<ImageRow | undefined> {
  const [row] = await db.update(images).set({ visibility: 'public' }).where(eq(images.id, id)).returning();
  return row;
}

/** The records for `reference` on a host other than `exceptId`: while any exists, the host keeps the image. */
export async function countOtherRecords(db: Executor, hostId: string, reference: string, exceptId?: string): Promise<number> {
  const [row] = await db
    .select({ n: count() })
    .from(images)
    .where(and(eq(images.hostId, hostId), eq(images.reference, reference), exceptId ? ne(images.id, exceptId) : undefined));
  return row?.n ?? 0;
}

