/**
 * The audit log's data access: appends, pages for admins and for a user, and the retention job's
 * purge (the only DELETE the table's trigger lets through, and only of rows older than its setting).
 */
import { and, desc, eq, gte, ilike, lte, or, sql, type SQL } from 'drizzle-orm';
import type { Database, Executor } from '../db/client.js';
import { auditLog } from '../db/schema.js';
import { pageOf, type Page, type PageRequest } from './paging.js';

export type AuditRow = typeof auditLog.$inferSelect;
export type AuditEntry = typeof auditLog.$inferInsert;

export async function appendAudit(db: Executor, entries: AuditEntry[]): Promise<void> {
  if (entries.length > 0) await db.insert(auditLog).values(entries);
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
