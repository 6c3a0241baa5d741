/**
 * Pull slots: one row per pull a user has in flight, taken before its workflow starts and freed
 * when the API sees it end (services/pulls.ts holds the rule). Each function takes the executor
 * to run on, so the caller's transaction can be passed.
 */
import { and, count, eq, inArray, isNull, lt, sql } from 'drizzle-orm';
import type { Executor } from '../db/client.js';
import { pullSlots } from '../db/schema.js';

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
