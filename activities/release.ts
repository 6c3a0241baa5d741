/**
 * Nightly release activities (control worker): what is left to release, each
 * container's removal through its own workflow, and the run's record.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { Database } from '../db/client.js';
import { FailureType } from '../core/failures.js';
import { containerWorkflowId, removeUpdate } from '../contracts/container.js';
import type { ReleaseItem, ReleaseReport } from '../contracts/nightly-release.js';
import * as containers from '../repositories/containers.js';
import * as repo from '../repositories/releases.js';
import { heartbeating } from './heartbeat.js';

export type { ReleaseFailure, ReleaseItem, ReleaseReport } from '../contracts/nightly-release.js';

/** Container ids are UUIDs; a release failure may name a host instead ("host host-a"), and Docker labels may hold anything. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const uuids = (ids: string[]) => ids.filter((id) => UUID.test(id));

export function createReleaseActivities(deps: { db: Database; temporal: Client }) {
  const { db, temporal } = deps;
  return {
    /** Live containers, on every host and in every state, but the ones that already failed this run. */
    listReleasableContainers: (skip: string[], limit: number): Promise<ReleaseItem[]> => containers.listLive(db, uuids(skip), limit),

    /** Of these Berth container ids, the ones with a live record (the others are orphans in Docker). */
    liveContainerIds: (ids: string[]): Promise<string[]> => containers.liveIdsAmong(db, uuids(ids)),

    /** Private images, but the ones that already failed this run; public ones are never released. */
    listReleasableImages: (skip: string[], limit: number): Promise<ReleaseItem[]> => repo.releasableImages(db, skip, limit),

    /** Removes a container through its own workflow, so its billing ends and its port is freed by its owner. */
    removeContainerForRelease: (id: string): Promise<void> => heartbeating(async () => {
      try {
        await temporal.workflow.getHandle(containerWorkflowId(id)).executeUpdate(removeUpdate);
      } catch (error) {
        if (error instanceof WorkflowNotFoundError || (error as Error).name === 'WorkflowNotFoundError') {
          // Its workflow has ended: it is released if its record says so.
          if (await containers.isLive(db, id)) {
            throw ApplicationFailure.nonRetryable(`container ${id} has no running workflow`, FailureType.ContainerOrphaned);
          }
          return;
        }
        if (error instanceof WorkflowUpdateFailedError) {
          throw ApplicationFailure.nonRetryable(error.cause?.message ?? error.message, FailureType.ContainerRemoveFailed);
        }
        throw error;
      }
    }),

    recordReleaseStart: (releaseId: string): Promise<void> => repo.insertRun(db, releaseId),

    recordReleaseEnd: (releaseId: string, report: ReleaseReport): Promise<void> => repo.completeRun(db, releaseId, report),
  };
}

export type ReleaseActivities = ReturnType<typeof createReleaseActivities>;
