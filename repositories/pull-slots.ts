/**
 * Pull slots: one row per pull a user has in flight, taken before its workflow starts and freed
 * when the API sees it end (services/pulls.ts holds the rule). Each function takes the executor
 * to run on, so the caller's transaction can be passed.
 */
import { and, count, eq, inArray, isNotNull, isNull, lt, sql } from 'drizzle-orm';
import type { Executor } from '../db/client.js';
import { pullSlots } from '../db/schema.js';
import type { ImageView } from '../contracts/pull-image.js';

export type PullSlotRow = typeof pullSlots.$inferSelect;

const open = (userId: string) => and(eq(pullSlots.userId, userId), isNull(pullSlots.releasedAt));

/** How many slots the user holds. */
export async function countOpen(db: Executor, userId: string): Promise<number> {
  const [row] = await db.select({ n: count() }).from(pullSlots).where(open(userId));
  return row?.n ?? 0;
}

/** The pull ids of the user's slots taken before `before`. */
export async function openTakenBefore(db: Executor, userId: string, before: Date): Promise<string[]> {
  const rows = await db
    .select({ pullId: pullSlots.pullId })
    .from(pullSlots)
    .where(and(open(userId), lt(pullSlots.createdAt, before)));
  return rows.map((r) => r.pullId);
}

export async function take(db: Executor, userId: string, pullId: string): Promise<void> {
  await db.insert(pullSlots).values({ pullId, userId });
}

/** Frees the slots of these pulls (idempotent: a slot freed already keeps its time). */
export async function release(db: Executor, pullIds: string[]): Promise<void> {
  if (pullIds.length === 0) return;
  await db
    .update(pullSlots)
    .set({ releasedAt: sql`now()` })
    .where(and(inArray(pullSlots.pullId, pullIds), isNull(pullSlots.releasedAt)));
}

/**
 * Keeps a pull the API answered from the user's record without a workflow (a dedup): released at
 * once (it holds no slot), with the image answered, for GET of the pull.
 */
export async function recordDeduped(db: Executor, userId: string, pullId: string, image: ImageView): Promise<void> {
  await db.insert(pullSlots).values({ pullId, userId, releasedAt: sql`now()`, dedupedImage: image });
}

/** A pull the API answered as a dedup: whose it is and the image answered; undefined for any other pull. */
export async function findDeduped(db: Executor, pullId: string): Promise<{ userId: string; image: ImageView } | undefined> {
  const [row] = await db
    .select({ userId: pullSlots.userId, image: pullSlots.dedupedImage })
    .from(pullSlots)
    .where(and(eq(pullSlots.pullId, pullId), isNotNull(pullSlots.dedupedImage)));
  return row?.image ? { userId: row.userId, image: row.image } : undefined;
}
