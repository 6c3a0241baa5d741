/**
 * The users aggregate's data access: users and their ledger entries (read
 * here; written only by billing/ledger.ts, which moves money). Functions take the pool or the
 * caller's transaction (`Executor`). "Visible to this user": a user sees their own row and
 * entries; an admin sees any user (the route decides, by role).
 */
import { and, asc, count, desc, eq, ilike } from 'drizzle-orm';
import { notifyCredentialsChanged } from './credential-changes.js';
import type { Executor } from '../db/client.js';
import { ledgerEntries, users } from '../db/schema.js';
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

/** A user with the password hash and whether they are disabled, for a login. */
export async function findCredentials(db: Executor, username: string): Promise<(PublicUser & { passwordHash: string; disabled: boolean }) | undefined> {
  const [user] = await db
    .select({ ...publicColumns, passwordHash: users.passwordHash, disabled: users.disabled })
    .from(users)
    .where(eq(users.username, username));
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

export interface UserFilter {
  /** A substring of the username. */
  q?: string;
  role?: Role;
  disabled?: boolean;
}

export type AdminUserView = PublicUser & { disabled: boolean };

/** Users matching the filter, by username (admins). */
export async function listUsers(db: Executor, filter: UserFilter, page: PageRequest): Promise<Page<AdminUserView>> {
  const where = and(
    filter.q ? ilike(users.username, `%${filter.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`) : undefined,
    filter.role ? eq(users.role, filter.role) : undefined,
    filter.disabled === undefined ? undefined : eq(users.disabled, filter.disabled),
  );
  const [items, [totals]] = await Promise.all([
    db.select({ ...publicColumns, disabled: users.disabled }).from(users).where(where).orderBy(asc(users.username)).limit(page.limit).offset(page.offset),
    db.select({ n: count() }).from(users).where(where),
  ]);
  return { items, total: totals?.n ?? 0 };
}

export async function findUserForAdmin(db: Executor, id: string): Promise<AdminUserView | undefined> {
  const [user] = await db.select({ ...publicColumns, disabled: users.disabled }).from(users).where(eq(users.id, id));
  return user;
}

/**
 * Sets a user's disabled flag and role; the row as it is then, or undefined when there is no such
 * user. What their credentials may do changed: every API process is told (notifyCredentialsChanged).
 */
export async function updateUser(db: Executor, id: string, set: { disabled?: boolean; role?: Role }): Promise<AdminUserView | undefined> {
  if (set.disabled === undefined && set.role === undefined) return findUserForAdmin(db, id);
  return db.transaction(async (tx) => {
    const [user] = await tx
      .update(users)
      .set({ ...(set.disabled === undefined ? {} : { disabled: set.disabled }), ...(set.role === undefined ? {} : { role: set.role }) })
      .where(eq(users.id, id))
      .returning({ ...publicColumns, disabled: users.disabled });
    if (user) await notifyCredentialsChanged(tx, id);
    return user;
  });
}

export async function setPasswordHash(db: Executor, id: string, passwordHash: string): Promise<boolean> {
  const rows = await db.update(users).set({ passwordHash }).where(eq(users.id, id)).returning({ id: users.id });
  return rows.length > 0;
}

/** A user's password hash, by id (a password change checks the current one). */
export async function findPasswordHash(db: Executor, id: string): Promise<string | undefined> {
  const [row] = await db.select({ passwordHash: users.passwordHash }).from(users).where(eq(users.id, id));
  return row?.passwordHash;
}
