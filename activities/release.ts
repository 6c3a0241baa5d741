/**
 * Nightly release activities (control worker): what is left to release, each
 * container's removal through its own workflow, and the run's record.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { and, asc, eq, inArray, isNull, notInArray, sql } from 'drizzle-orm';
import type { Database } from '../db/client.js';
import { containers, images, releaseRuns } from '../db/schema.js';
import { workflowIds } from '../core/temporal-names.js';
import { removeUpdate } from '../workflows/container-api.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface ReleaseItem {
  id: string;
  hostId: string;
  reference?: string;
}

export interface ReleaseFailure {
  phase: 'containers' | 'images';
  id: string;
  hostId: string;
  reason: string;
}

export interface ReleaseReport {
  containers: { removed: number; failed: number };
  images: { removed: number; failed: number };
  refundedTotal: number;
  failures: ReleaseFailure[];
}

export function createReleaseActivities(deps: { db: Database; temporal: Client }) {
  const { db, temporal } = deps;
  return {
    /** Live containers, on every host and in every state, but the ones that already failed this run. */
    async listReleasableContainers(skip: string[], limit: number): Promise<ReleaseItem[]> {
      skip = skip.filter((id) => UUID.test(id)); // a failure may name a host, not a container
      return db
        .select({ id: containers.id, hostId: containers.hostId })
        .from(containers)
        .where(and(isNull(containers.removedAt), skip.length ? notInArray(containers.id, skip) : undefined))
        .orderBy(asc(containers.createdAt), asc(containers.id))
        .limit(limit);
    },

    /** Of these Berth container ids, the ones with a live record (the others are orphans in Docker). */
    async liveContainerIds(ids: string[]): Promise<string[]> {
      const wellFormed = ids.filter((id) => UUID.test(id));
      if (wellFormed.length === 0) return [];
      const rows = await db
        .select({ id: containers.id })
        .from(containers)
        .where(and(inArray(containers.id, wellFormed), isNull(containers.removedAt)));
      return rows.map((r) => r.id);
    },

    /** Private images; public ones are never released. */
    async listReleasableImages(skip: string[], limit: number): Promise<ReleaseItem[]> {
      return db
        .select({ id: images.id, hostId: images.hostId, reference: images.reference })
        .from(images)
        .where(and(eq(images.visibility, 'private'), skip.length ? notInArray(images.id, skip) : undefined))
        .orderBy(asc(images.createdAt), asc(images.id))
        .limit(limit);
    },

    /** Removes a container through its own workflow, so its billing ends and its port is freed by its owner. */
    async removeContainerForRelease(id: string): Promise<void> {
      try {
        await temporal.workflow.getHandle(workflowIds.container(id)).executeUpdate(removeUpdate);
      } catch (error) {
        if (error instanceof WorkflowNotFoundError || (error as Error).name === 'WorkflowNotFoundError') {
          // Its workflow has ended: it is released if its record says so.
          const [row] = await db.select({ removedAt: containers.removedAt }).from(containers).where(eq(containers.id, id));
          if (row && !row.removedAt) {
            throw ApplicationFailure.nonRetryable(`container ${id} has no running workflow`, 'ContainerOrphaned');
          }
          return;
        }
        if (error instanceof WorkflowUpdateFailedError) {
          throw ApplicationFailure.nonRetryable(error.cause?.message ?? error.message, 'ContainerRemoveFailed');
        }
        throw error;
      }
    },

    async recordReleaseStart(releaseId: string): Promise<void> {
      await db.insert(releaseRuns).values({ id: releaseId, status: 'running' }).onConflictDoNothing();
    },

    async recordReleaseEnd(releaseId: string, report: ReleaseReport): Promise<void> {
      await db
        .update(releaseRuns)
        .set({
          status: 'completed',
          endedAt: sql`now()`,
          refundedTotal: report.refundedTotal,
          report: report as unknown as Record<string, unknown>,
        })
        .where(eq(releaseRuns.id, releaseId));
    },
  };
}

export type ReleaseActivities = ReturnType<typeof createReleaseActivities>;
