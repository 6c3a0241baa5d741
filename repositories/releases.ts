/**
 * The releases aggregate's data access: the nightly release's runs (release_runs) and the images
 * it has left to release (its containers are listed by repositories/containers.ts). Functions take
 * the pool or the caller's transaction (`Executor`). Releases are visible to admins only (the
 * routes check the role).
 */
import { and, asc, desc, eq, notInArray, or, sql } from 'drizzle-orm';
import type { Executor } from '../db/client.js';
import { images, releaseRuns } from '../db/schema.js';
import type { ReleaseItem, ReleaseReport } from '../contracts/nightly-release.js';
import { pageOf, type Page, type PageRequest } from './paging.js';

export type ReleaseRunRow = typeof releaseRuns.$inferSelect;

/** Records a run's start; a run that continued as new (same id) keeps its first start. */
export async function insertRun(db: Executor, releaseId: string): Promise<void> {
  await db.insert(releaseRuns).values({ id: releaseId, status: 'running' }).onConflictDoNothing();
}

/** Locks a run's record until the end of `tx` and answers its status (undefined: no record). */
export async function lockRun(tx: Executor, releaseId: string): Promise<ReleaseRunRow['status'] | undefined> {
  const [row] = await tx.select({ status: releaseRuns.status }).from(releaseRuns).where(eq(releaseRuns.id, releaseId)).for('update');
  return row?.status;
}

/** Records a run's end with its report. */
export async function completeRun(db: Executor, releaseId: string, report: ReleaseReport): Promise<void> {
  await db
    .update(releaseRuns)
    .set({
      status: 'completed',
      endedAt: sql`now()`,
      refundedTotal: report.refundedTotal,
      report: report as unknown as Record<string, unknown>,
    })
    .where(eq(releaseRuns.id, releaseId));
}

/** Runs, newest first. */
export function runsPage(db: Executor, page: PageRequest): Promise<Page<ReleaseRunRow>> {
  return pageOf(db, releaseRuns, undefined, [desc(releaseRuns.startedAt), desc(releaseRuns.id)], page);
}

export async function findRun(db: Executor, id: string): Promise<ReleaseRunRow | undefined> {
  const [row] = await db.select().from(releaseRuns).where(eq(releaseRuns.id, id));
  return row;
}

/** Private images, oldest first, but those in `skip`; public ones are never released. */
export function releasableImages(db: Executor, skip: string[], limit: number): Promise<ReleaseItem[]> {
  return db
    .select({ id: images.id, hostId: images.hostId, reference: images.reference, userId: images.userId })
    .from(images)
    .where(and(eq(images.visibility, 'private'), skip.length ? notInArray(images.id, skip) : undefined))
    .orderBy(asc(images.createdAt), asc(images.id))
    .limit(limit);
}

/**
 * Of these images' host and reference pairs, the ones a record outside `batch` (another user's,
 * a public image) also uses: Docker keeps those references when the batch's records go.
 */
export async function referencesUsedOutside(db: Executor, items: Array<{ hostId: string; reference: string }>, batch: string[]): Promise<Set<string>> {
  if (items.length === 0) return new Set();
  const rows = await db
    .selectDistinct({ hostId: images.hostId, reference: images.reference })
    .from(images)
    .where(and(or(...items.map((i) => and(eq(images.hostId, i.hostId), eq(images.reference, i.reference)))), batch.length ? notInArray(images.id, batch) : undefined));
  return new Set(rows.map((r) => hostReference(r)));
}

/** The key of an image reference on a host. */
export const hostReference = (i: { hostId: string; reference: string }) => `${i.hostId}\n${i.reference}`;
