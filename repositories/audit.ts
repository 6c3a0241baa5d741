/**
 * The audit log's data access: appends, pages for admins and for a user, and the retention job's
 * purge (the only DELETE the table's trigger lets through, and only of rows older than its setting).
 */
import { and, desc, eq, gte, ilike, inArray, lte, or, sql, type SQL } from 'drizzle-orm';
import type { Database, Executor, Transaction } from '../db/client.js';
import { auditLog } from '../db/schema.js';
import { pageOf, type Page, type PageRequest } from './paging.js';

export type AuditRow = typeof auditLog.$inferSelect;
export type AuditEntry = typeof auditLog.$inferInsert;

export async function appendAudit(db: Executor, entries: AuditEntry[]): Promise<void> {
  if (entries.length > 0) await db.insert(auditLog).values(entries);
}

/** What the system did to a user's things, from a workflow (actor `system`). */
export interface SystemAction {
  /** `release.removeContainer`, `container.suspend`, ... (README: Audit log). */
  action: string;
  targetType: string | null;
  targetId: string | null;
  /** The owner of the thing acted on (they read the entry in their own audit); null when unknown. */
  subjectUserId: string | null;
  /** The workflow that took the action. */
  workflowId: string | null;
  outcome?: 'success' | 'failure';
  detail?: Record<string, unknown>;
}

export const systemEntry = (a: SystemAction): AuditEntry => ({
  actorType: 'system',
  action: a.action,
  targetType: a.targetType,
  targetId: a.targetId,
  subjectUserId: a.subjectUserId,
  outcome: a.outcome ?? 'success',
  workflowId: a.workflowId,
  ...(a.detail ? { detail: a.detail } : {}),
});

/** A system entry that carries its own idempotency key (`detail.key`). */
export type KeyedSystemAction = SystemAction & { key: string };

/**
 * Appends system entries at most once per key, for writes that no state change of their own
 * makes idempotent (an activity retried after its transaction committed writes its entries again
 * otherwise). Inside `tx`: each key is locked (a transaction-scoped advisory lock, keys in order),
 * then the entries whose key is already in the log since `since` are left out. `since` bounds the
 * search (the `at` index): the first attempt's scheduled time of the activity writing them, less
 * a margin. The key is kept in `detail.key`. Answers how many were written.
 */
export async function appendAuditOnce(tx: Transaction, entries: KeyedSystemAction[], since: Date): Promise<number> {
  const byKey = new Map(entries.map((e) => [e.key, e]));
  if (byKey.size === 0) return 0;
  const keys = [...byKey.keys()].sort();
  for (const key of keys) await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`);
  const present = await tx
    .select({ key: sql<string>`${auditLog.detail}->>'key'` })
    .from(auditLog)
    .where(and(gte(auditLog.at, since), inArray(sql`${auditLog.detail}->>'key'`, keys)));
  for (const { key } of present) byKey.delete(key);
  const fresh = [...byKey.values()].map(({ key, ...a }) => systemEntry({ ...a, detail: { ...a.detail, key } }));
  await appendAudit(tx, fresh);
  return fresh.length;
}

export interface AuditFilter {
  actor?: string;
  action?: string;
  target?: string;
  outcome?: 'success' | 'failure';
  from?: Date;
  to?: Date;
}

function conditions(f: AuditFilter): SQL[] {
  const where: SQL[] = [];
  if (f.actor) {
    // A user id, an API key id, or an actor type (system, anonymous, ...).
    const byType = sql`${auditLog.actorType} = ${f.actor}`;
    const uuid = /^[0-9a-f-]{36}$/i.test(f.actor);
    where.push(uuid ? or(eq(auditLog.actorUserId, f.actor), eq(auditLog.apiKeyId, f.actor), byType)! : byType);
  }
  if (f.action) where.push(ilike(auditLog.action, `${f.action.replace(/[\\%_]/g, (c) => `\\${c}`)}%`));
  if (f.target) where.push(eq(auditLog.targetId, f.target));
  if (f.outcome) where.push(eq(auditLog.outcome, f.outcome));
  if (f.from) where.push(gte(auditLog.at, f.from));
  if (f.to) where.push(lte(auditLog.at, f.to));
  return where;
}

const NEWEST_FIRST = [desc(auditLog.at), desc(auditLog.id)];

/** Every entry matching the filter, newest first (admins). */
export function auditPage(db: Executor, filter: AuditFilter, page: PageRequest): Promise<Page<AuditRow>> {
  return pageOf(db, auditLog, and(...conditions(filter)), NEWEST_FIRST, page);
}

/** A user's own entries: what they did, and what anyone (the system, an admin) did to their things. */
export function userAuditPage(db: Executor, userId: string, filter: AuditFilter, page: PageRequest): Promise<Page<AuditRow>> {
  const mine = or(eq(auditLog.actorUserId, userId), eq(auditLog.subjectUserId, userId))!;
  return pageOf(db, auditLog, and(mine, ...conditions(filter)), NEWEST_FIRST, page);
}

/** Deletes entries older than `days` (at least 1), in the transaction the trigger lets through. */
export async function purgeOlderThan(db: Database, days: number): Promise<number> {
  const whole = Math.max(1, Math.floor(days));
  return db.transaction(async (tx) => {
    await tx.execute(sql`select set_config('berth.audit_retention_days', ${String(whole)}, true)`);
    const rows = await tx.delete(auditLog).where(sql`${auditLog.at} < now() - make_interval(days => ${whole})`).returning({ id: auditLog.id });
    return rows.length;
  });
}
