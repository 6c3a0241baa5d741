/**
 * The users aggregate's data access: users, their bearer tokens and their ledger entries (read
 * here; written only by billing/ledger.ts, which moves money). Functions take the pool or the
 * caller's transaction (`Executor`). "Visible to this user": a user sees their own row and
 * entries; an admin sees any user (the route decides, by role).
 */
import { and, desc, eq, gt, lt } from 'drizzle-orm';
import type { Executor } from '../db/client.js';
import { ledgerEntries, tokens, users } from '../db/schema.js';
import { pageOf, type Page, type PageRequest } from './paging.js';

export type Role = 'admin' | 'user';

/** A user as the API shows them: never the password hash. */
export interface PublicUser {
  id: string;
  username: string;
  role: Role;
  balance: number;
  createdAt: Date;
}

/** Who is reading: the user's id and role (each repository's visibility rule takes it). */
export type Viewer = Pick<PublicUser, 'id' | 'role'>;

export type LedgerEntryRow = typeof ledgerEntries.$inferSelect;

const publicColumns = {
  id: users.id,
  username: users.username,
  role: users.role,
  balance: users.balance,
  createdAt: users.createdAt,
};

export async function findUser(db: Executor, id: string): Promise<PublicUser | undefined> {
  const [user] = await db.select(publicColumns).from(users).where(eq(users.id, id));
  return user;
}

export async function findUserIdByName(db: Executor, username: string): Promise<string | undefined> {
  const [user] = await db.select({ id: users.id }).from(users).where(eq(users.username, username));
  return user?.id;
}

/** A user with the password hash, for a login. */
export async function findCredentials(db: Executor, username: string): Promise<(PublicUser & { passwordHash: string }) | undefined> {
  const [user] = await db.select({ ...publicColumns, passwordHash: users.passwordHash }).from(users).where(eq(users.username, username));
  return user;
}

/** Inserts a user with a balance of zero; undefined when the username is taken. */
export async function insertUser(db: Executor, row: { username: string; passwordHash: string; role: Role }): Promise<PublicUser | undefined> {
  const [user] = await db
    .insert(users)
    .values({ ...row, balance: 0 })
    .onConflictDoNothing({ target: users.username })
    .returning(publicColumns);
  return user;
}

export async function insertToken(db: Executor, row: { userId: string; tokenHash: string; expiresAt: Date }): Promise<void> {
  await db.insert(tokens).values(row);
}

/** Deletes the user's tokens that expired before `now`. */
export async function deleteExpiredTokens(db: Executor, userId: string, now: Date): Promise<void> {
  await db.delete(tokens).where(and(eq(tokens.userId, userId), lt(tokens.expiresAt, now)));
}

/** The user a token (by its hash) belongs to, while it is valid at `now`. */
export async function findUserByToken(db: Executor, tokenHash: string, now: Date): Promise<PublicUser | undefined> {
  const [row] = await db
    .select(publicColumns)
    .from(tokens)
    .innerJoin(users, eq(users.id, tokens.userId))
    .where(and(eq(tokens.tokenHash, tokenHash), gt(tokens.expiresAt, now)));
  return row;
}

/** A user's ledger entries, newest first. */
export function ledgerPage(db: Executor, userId: string, page: PageRequest): Promise<Page<LedgerEntryRow>> {
  return pageOf(db, ledgerEntries, eq(ledgerEntries.userId, userId), [desc(ledgerEntries.createdAt), desc(ledgerEntries.id)], page);
}

/**
 * Locks the user's row until the end of `tx`: one user's admissions (containers, pulls, DCU
 * tasks) and movements of money are serialised on it, so concurrent requests cannot overshoot a
 * limit. False when there is no such user.
 */
export async function lockUser(tx: Executor, userId: string): Promise<boolean> {
  const [row] = await tx.select({ id: users.id }).from(users).where(eq(users.id, userId)).for('update');
  return row !== undefined;
}
