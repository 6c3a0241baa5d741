/**
 * One way to page a list: every list route takes `page` and `pageSize` (api/schemas.ts
 * Pagination), every repository answers `{ items, total }` for a `PageRequest`.
 */
import { count, type SQL } from 'drizzle-orm';
import type { PgTable } from 'drizzle-orm/pg-core';
import type { Executor } from '../db/client.js';

export interface PageRequest {
  limit: number;
  offset: number;
}

export interface Page<T> {
  items: T[];
  total: number;
}

/** A route's `page` (from 1) and `pageSize` as a PageRequest. */
export const pageRequest = ({ page, pageSize }: { page: number; pageSize: number }): PageRequest => ({
  limit: pageSize,
  offset: (page - 1) * pageSize,
});

/** One page of a table's rows matching `where`, in `orderBy` order (give a unique last key), and how many match in all. */
export async function pageOf<T extends PgTable>(
  db: Executor,
  table: T,
  where: SQL | undefined,
  orderBy: SQL[],
  page: PageRequest,
): Promise<Page<T['$inferSelect']>> {
  const [items, [totals]] = await Promise.all([
    db.select().from(table as PgTable).where(where).orderBy(...orderBy).limit(page.limit).offset(page.offset),
    db.select({ n: count() }).from(table as PgTable).where(where),
  ]);
  return { items, total: totals?.n ?? 0 };
}
