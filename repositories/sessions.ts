/**
 * Sessions (the `tokens` table) and API keys: the bearer credentials of the users aggregate.
 * Only hashes of secrets are stored. A credential works while it is neither expired nor revoked
 * and its user is not disabled. Last use is written at most once a minute per credential.
 *
 * Whatever ends a credential or changes what it may do (a revocation here, a user disabled or
 * their role changed in ./users.ts) notifies CREDENTIALS_CHANNEL with the user's id in the same
 * transaction, so every API process drops what it cached of that user's credentials once it
 * commits (services/credential-cache.ts).
 */
import { and, desc, eq, gt, isNull, lt, ne, or, sql } from 'drizzle-orm';
import type { Executor } from '../db/client.js';
import { apiKeys, tokens, users } from '../db/schema.js';
import type { PublicUser } from './users.js';
import { notifyCredentialsChanged } from './credential-changes.js';

export type SessionRow = typeof tokens.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;

const publicUser = { id: users.id, username: users.username, role: users.role, balance: users.balance, createdAt: users.createdAt };
const TOUCH_EVERY = sql`interval '1 minute'`;
/** How often a credential's last use is written, at most. */
export const TOUCH_EVERY_MS = 60_000;

export async function insertSession(db: Executor, row: { userId: string; tokenHash: string; expiresAt: Date; clientIp: string | null; userAgent: string | null }): Promise<string> {
  const [inserted] = await db.insert(tokens).values({ ...row, lastUsedAt: new Date() }).returning({ id: tokens.id });
  return inserted!.id;
}

/** The live session a token hash names, with its user (who is not disabled). */
export async function findSession(
  db: Executor,
  tokenHash: string,
  now: Date,
): Promise<{ user: PublicUser; sessionId: string; lastUsedAt: Date | null; expiresAt: Date } | undefined> {
  const [row] = await db
    .select({ user: publicUser, sessionId: tokens.id, lastUsedAt: tokens.lastUsedAt, expiresAt: tokens.expiresAt })
    .from(tokens)
    .innerJoin(users, eq(users.id, tokens.userId))
    .where(and(eq(tokens.tokenHash, tokenHash), gt(tokens.expiresAt, now), isNull(tokens.revokedAt), eq(users.disabled, false)));
  return row;
}

/** Records a use of the session, unless one was recorded within the minute. */
export async function touchSession(db: Executor, id: string): Promise<void> {
  await db
    .update(tokens)
    .set({ lastUsedAt: sql`now()` })
    .where(and(eq(tokens.id, id), or(isNull(tokens.lastUsedAt), lt(tokens.lastUsedAt, sql`now() - ${TOUCH_EVERY}`))));
}

/** The user's live sessions, the most recently used first. */
export function listSessions(db: Executor, userId: string, now: Date): Promise<SessionRow[]> {
  return db
    .select()
    .from(tokens)
    .where(and(eq(tokens.userId, userId), gt(tokens.expiresAt, now), isNull(tokens.revokedAt)))
    .orderBy(desc(tokens.lastUsedAt), desc(tokens.createdAt));
}

/** Revokes one of the user's sessions; false when they have no such live session. */
export async function revokeSession(db: Executor, userId: string, id: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    const rows = await tx
      .update(tokens)
      .set({ revokedAt: sql`now()` })
      .where(and(eq(tokens.id, id), eq(tokens.userId, userId), isNull(tokens.revokedAt)))
      .returning({ id: tokens.id });
    if (rows.length > 0) await notifyCredentialsChanged(tx, userId);
    return rows.length > 0;
  });
}

/** Revokes every live session of the user but `exceptId`; returns how many. */
export async function revokeSessions(db: Executor, userId: string, exceptId?: string): Promise<number> {
  return db.transaction(async (tx) => {
    const rows = await tx
      .update(tokens)
      .set({ revokedAt: sql`now()` })
      .where(and(eq(tokens.userId, userId), isNull(tokens.revokedAt), exceptId ? ne(tokens.id, exceptId) : undefined))
      .returning({ id: tokens.id });
    if (rows.length > 0) await notifyCredentialsChanged(tx, userId);
    return rows.length;
  });
}

/** Deletes the user's sessions that expired or were revoked before `before`. */
export async function deleteDeadSessions(db: Executor, userId: string, before: Date): Promise<void> {
  await db.delete(tokens).where(and(eq(tokens.userId, userId), or(lt(tokens.expiresAt, before), lt(tokens.revokedAt, before))));
}

export async function insertApiKey(db: Executor, row: { userId: string; name: string; prefix: string; keyHash: string; scopes: string[]; expiresAt: Date | null }): Promise<ApiKeyRow> {
  const [inserted] = await db.insert(apiKeys).values(row).returning();
  return inserted!;
}

/** The live key a hash names, with its user (who is not disabled). */
export async function findApiKey(
  db: Executor,
  keyHash: string,
  now: Date,
): Promise<{ user: PublicUser; keyId: string; scopes: string[]; lastUsedAt: Date | null; expiresAt: Date | null } | undefined> {
  const [row] = await db
    .select({ user: publicUser, keyId: apiKeys.id, scopes: apiKeys.scopes, lastUsedAt: apiKeys.lastUsedAt, expiresAt: apiKeys.expiresAt })
    .from(apiKeys)
    .innerJoin(users, eq(users.id, apiKeys.userId))
    .where(and(eq(apiKeys.keyHash, keyHash), isNull(apiKeys.revokedAt), or(isNull(apiKeys.expiresAt), gt(apiKeys.expiresAt, now)), eq(users.disabled, false)));
  return row;
}

/** Records a use of the key, unless one was recorded within the minute. */
export async function touchApiKey(db: Executor, id: string): Promise<void> {
  await db
    .update(apiKeys)
    .set({ lastUsedAt: sql`now()` })
    .where(and(eq(apiKeys.id, id), or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, sql`now() - ${TOUCH_EVERY}`))));
}

/** The user's keys that are not revoked (expired ones too: they say so), newest first. */
export function listApiKeys(db: Executor, userId: string): Promise<ApiKeyRow[]> {
  return db.select().from(apiKeys).where(and(eq(apiKeys.userId, userId), isNull(apiKeys.revokedAt))).orderBy(desc(apiKeys.createdAt), desc(apiKeys.id));
}

/** Revokes one of the user's keys; false when they have no such key. */
export async function revokeApiKey(db: Executor, userId: string, id: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    const rows = await tx
      .update(apiKeys)
      .set({ revokedAt: sql`now()` })
      .where(and(eq(apiKeys.id, id), eq(apiKeys.userId, userId), isNull(apiKeys.revokedAt)))
      .returning({ id: apiKeys.id });
    if (rows.length > 0) await notifyCredentialsChanged(tx, userId);
    return rows.length > 0;
  });
}
