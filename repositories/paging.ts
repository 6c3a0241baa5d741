/**
 * One way to page a list: every list route takes `page` and `pageSize` (api/schemas.ts
 * Pagination), every repository answers `{ items, total }` for a `PageRequest`.
 */
import { count, getTableColumns, sql, type SQL } from 'drizzle-orm';
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

/** The window column that carries the count of every matching row on each row of a page. */
const TOTAL = 'pageTotal__';

/**
 * One page of a table's rows matching `where`, in `orderBy` order (give a unique last key), and
 * how many match in all: one query (`count(*) over ()` beside the rows), and a second, a count,
 * only when the page is past the last row and so carries no count.
 */
export async function pageOf<T extends PgTable>(
  db: Executor,
  table: T,
  where: SQL | undefined,
  orderBy: SQL[],
  page: PageRequest,
): Promise<Page<T['$inferSelect']>> {
  const source: PgTable = table;
  const rows = (await db
    .select({ ...getTableColumns(source), [TOTAL]: sql<number>`count(*) over ()`.mapWith(Number) })
    .from(source)
    .where(where)
    .orderBy(...orderBy)
    .limit(page.limit)
    .offset(page.offset)) as Array<Record<string, unknown>>;
  if (rows.length === 0) {
    if (page.offset === 0) return { items: [], total: 0 };
    const [totals] = await db.select({ n: count() }).from(source).where(where);
    return { items: [], total: totals?.n ?? 0 };
  }
  const total = rows[0]![TOTAL] as number;
  const items = rows.map(({ [TOTAL]: _, ...row }) => row as T['$inferSelect']);
  return { items, total };
}
