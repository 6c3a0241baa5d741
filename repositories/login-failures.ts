/**
 * Failed logins, per username and per client address, for login throttling. Kept in PostgreSQL
 * so that the count survives an API restart and is shared by every API replica.
 */
import { and, count, eq, gt, lt, min, or } from 'drizzle-orm';
import type { Executor } from '../db/client.js';
import { loginFailures } from '../db/schema.js';

export interface FailureCount {
  count: number;
  /** The oldest failure counted: the window frees a slot when it leaves. */
  oldest: Date | null;
}

/** Failures since `since` for the username and for the address. */
export async function failuresSince(db: Executor, m: { username: string; clientIp: string; since: Date }): Promise<{ user: FailureCount; address: FailureCount }> {
  const of = async (where: ReturnType<typeof eq>) => {
    const [row] = await db
      .select({ count: count(), oldest: min(loginFailures.at) })
      .from(loginFailures)
      .where(and(where, gt(loginFailures.at, m.since)));
    return { count: row?.count ?? 0, oldest: row?.oldest ? new Date(row.oldest) : null };
  };
  const [user, address] = await Promise.all([of(eq(loginFailures.username, m.username)), of(eq(loginFailures.clientIp, m.clientIp))]);
  return { user, address };
}

/** Records a failure, and forgets this username's and this address's failures older than `before`. */
export async function recordFailure(db: Executor, m: { username: string; clientIp: string; before: Date }): Promise<void> {
  await db.insert(loginFailures).values({ username: m.username, clientIp: m.clientIp });
  await db
    .delete(loginFailures)
    .where(and(lt(loginFailures.at, m.before), or(eq(loginFailures.username, m.username), eq(loginFailures.clientIp, m.clientIp))));
}

/** A successful login forgets the username's failures (not the address's). */
export async function clearUserFailures(db: Executor, username: string): Promise<void> {
  await db.delete(loginFailures).where(eq(loginFailures.username, username));
}
