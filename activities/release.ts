/**
 * Nightly release activities (control worker): what is left to release, each
 * container's removal through its own workflow, and the run's record. What the release
 * did to users' things is audited (actor system, the release's workflow id): each
 * container removed through its workflow here, each image removed with its refund in the
 * refund's transaction (images-db.ts), and the orphans removed and every removal that
 * failed with the run's end, in its transaction.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { Database, Executor } from '../db/client.js';
import { FailureType } from '../core/failures.js';
import { containerWorkflowId, releasedSignal, removeUpdate } from '../contracts/container.js';
import { IllegalContainerTransitionError } from '../core/container-state.js';
import { pool } from '../core/pool.js';
import type { ReleaseItem, ReleaseReport } from '../contracts/nightly-release.js';
import * as containers from '../repositories/containers.js';
import * as imageRepo from '../repositories/images.js';
import * as repo from '../repositories/releases.js';
import { heartbeating } from './heartbeat.js';
import { appendAudit, appendAuditOnce, systemEntry, type SystemAction } from '../repositories/audit.js';
import { auditOrigin } from './audit-db.js';

export type { ReleaseFailure, ReleaseItem, ReleaseReport } from '../contracts/nightly-release.js';

/** Container ids are UUIDs; a release failure may name a host instead ("host host-a"), and Docker labels may hold anything. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const uuids = (ids: string[]) => ids.filter((id) => UUID.test(id));

/** Signals to container workflows in flight at once (each a short call to Temporal). */
const SIGNALS_IN_FLIGHT = 16;

/**
 * The audit entries of a run's end: every orphan it removed from a host (the owner its record
 * names, else its label) and every container or image removal that failed, with the reason
 * (failures about a host rather than a container or an image, "host host-a", stay in the report).
 */
async function releaseEndEntries(db: Executor, releaseId: string, report: ReleaseReport): Promise<SystemAction[]> {
  const orphans = report.orphans ?? [];
  const failedContainers = report.failures.filter((f) => f.phase === 'containers' && UUID.test(f.id));
  const failedImages = report.failures.filter((f) => f.phase === 'images' && UUID.test(f.id));
  const containerOwners = new Map(
    (await containers.ownersOf(db, uuids([...orphans.map((o) => o.id), ...failedContainers.map((f) => f.id)]))).map((c) => [c.id, c]),
  );
  const imageOwners = new Map((await imageRepo.ownersOf(db, failedImages.map((f) => f.id))).map((i) => [i.id, i]));
  const base = { workflowId: releaseId };
  return [
    ...orphans.map((o): SystemAction => {
      const known = containerOwners.get(o.id);
      const labelled = o.userId && UUID.test(o.userId) ? o.userId : null;
      return {
        ...base,
        action: 'release.removeContainer',
        ...(UUID.test(o.id) ? { targetType: 'container', targetId: o.id } : { targetType: 'docker_container', targetId: o.dockerId }),
        subjectUserId: known?.userId ?? labelled,
        detail: { releaseId, hostId: o.hostId, dockerId: o.dockerId, orphan: true },
      };
    }),
    ...failedContainers.map((f): SystemAction => ({
      ...base,
      action: 'release.removeContainer',
      targetType: 'container',
      targetId: f.id,
      subjectUserId: containerOwners.get(f.id)?.userId ?? null,
      outcome: 'failure',
      detail: { releaseId, hostId: f.hostId, reason: f.reason },
    })),
    ...failedImages.map((f): SystemAction => {
      const image = imageOwners.get(f.id);
      return {
        ...base,
        action: 'release.removeImage',
        targetType: 'image',
        targetId: f.id,
        subjectUserId: image?.userId ?? null,
        outcome: 'failure',
        detail: { releaseId, hostId: f.hostId, ...(image ? { reference: image.reference } : {}), refunded: 0, reason: f.reason },
      };
    }),
  ];
}

export function createReleaseActivities(deps: { db: Database; temporal: Client }) {
  const { db, temporal } = deps;
  return {
    /** Live containers, on every host and in every state (saying which are still being created), but the ones that already failed this run. */
    listReleasableContainers: async (skip: string[], limit: number): Promise<ReleaseItem[]> =>
      (await containers.listLive(db, uuids(skip), limit)).map(({ id, hostId, state }) => ({ id, hostId, ...(state === 'creating' ? { creating: true } : {}) })),

    /** Of these Berth container ids, the ones with a live record (the others are orphans in Docker). */
    liveContainerIds: (ids: string[]): Promise<string[]> => containers.liveIdsAmong(db, uuids(ids)),

    /** Private images, but the ones that already failed this run; public ones are never released. */
    listReleasableImages: (skip: string[], limit: number): Promise<ReleaseItem[]> => repo.releasableImages(db, skip, limit),

    /**
     * The next batch of private images (but the ones that already failed this run), each saying
     * whether Docker keeps its reference: another record outside the batch uses it on that host
     * (another user's, a public image), or another image of the batch removes it there already.
     */
    async listReleasableImageBatch(skip: string[], limit: number): Promise<ReleaseItem[]> {
      const batch = await repo.releasableImages(db, skip, limit);
      const usedOutside = await repo.referencesUsedOutside(db, batch.map((i) => ({ hostId: i.hostId, reference: i.reference! })), batch.map((i) => i.id));
      const removing = new Set<string>();
      return batch.map((item) => {
        const key = repo.hostReference({ hostId: item.hostId, reference: item.reference! });
        const keep = usedOutside.has(key) || removing.has(key);
        removing.add(key);
        return keep ? { ...item, keepOnHost: true } : item;
      });
    },

    /**
     * The nightly release's batch of containers, before their removal from Docker: in one
     * transaction, each live record is released (removed: its port, name and slot are free) and
     * audited (`release.removeContainer`: once, as a retry finds the record released); then each
     * container's workflow is told (`released`), and ends without charging anything more. A retry
     * finds the records released and tells the workflows again (a workflow that ended is skipped).
     * A record that ended meanwhile (its creation failed) is left as it is.
     */
    releaseContainerRecords: (ids: string[]): Promise<void> => heartbeating(async () => {
      const origin = auditOrigin();
      // The release's workflow id is its releaseId (continue-as-new keeps it).
      const releaseId = origin.workflowId ?? 'none';
      await db.transaction(async (tx) => {
        const entries: SystemAction[] = [];
        // One lock order for every batch.
        for (const id of [...ids].sort()) {
          let released;
          try {
            released = await containers.release(tx, id, 'removed', null, null);
          } catch (error) {
            if (error instanceof IllegalContainerTransitionError) continue;
            throw error;
          }
          if (!released) continue;
          entries.push({
            action: 'release.removeContainer',
            targetType: 'container',
            targetId: id,
            subjectUserId: released.userId,
            workflowId: origin.workflowId,
            detail: { releaseId: origin.workflowId, hostId: released.hostId, image: released.imageReference },
          });
        }
        await appendAudit(tx, entries.map(systemEntry));
      });
      await pool(ids, SIGNALS_IN_FLIGHT, async (id) => {
        try {
          await temporal.workflow.getHandle(containerWorkflowId(id)).signal(releasedSignal, { releaseId });
        } catch (error) {
          if (!(error instanceof WorkflowNotFoundError || (error as Error).name === 'WorkflowNotFoundError')) throw error;
        }
      });
    }),

    /**
     * Removes a container through its own workflow, so its billing ends and its port is freed by
     * its owner, and audits the removal (`release.removeContainer`, keyed by the release and the
     * container: a retry writes it once). A removal that fails is audited with the run's end.
     */
    removeContainerForRelease: (id: string): Promise<void> => heartbeating(async () => {
      const origin = auditOrigin();
      const audit = async () => {
        // The release's workflow id is its releaseId (continue-as-new keeps it).
        const releaseId = origin.workflowId;
        const [owner] = await containers.ownersOf(db, uuids([id]));
        await db.transaction((tx) =>
          appendAuditOnce(
            tx,
            [
              {
                key: `release.removeContainer:${releaseId ?? 'none'}:${id}`,
                action: 'release.removeContainer',
                targetType: 'container',
                targetId: id,
                subjectUserId: owner?.userId ?? null,
                workflowId: releaseId,
                detail: { releaseId, ...(owner ? { hostId: owner.hostId, image: owner.imageReference } : {}) },
              },
            ],
            origin.since,
          ),
        );
      };
      try {
        await temporal.workflow.getHandle(containerWorkflowId(id)).executeUpdate(removeUpdate);
      } catch (error) {
        if (error instanceof WorkflowNotFoundError || (error as Error).name === 'WorkflowNotFoundError') {
          // Its workflow has ended: it is released if its record says so.
          if (await containers.isLive(db, id)) {
            throw ApplicationFailure.nonRetryable(`container ${id} has no running workflow`, FailureType.ContainerOrphaned);
          }
          // A retry: the earlier attempt's update removed it (and may have failed to audit it).
          if (origin.attempt > 1) await audit();
          return;
        }
        if (error instanceof WorkflowUpdateFailedError) {
          throw ApplicationFailure.nonRetryable(error.cause?.message ?? error.message, FailureType.ContainerRemoveFailed);
        }
        throw error;
      }
      await audit();
    }),

    recordReleaseStart: (releaseId: string): Promise<void> => repo.insertRun(db, releaseId),

    /**
     * Records the run's end with its report and, in the same transaction, audits the orphans it
     * removed and the removals that failed. A retry after the commit finds the run completed and
     * writes nothing again.
     */
    async recordReleaseEnd(releaseId: string, report: ReleaseReport): Promise<void> {
      await db.transaction(async (tx) => {
        if ((await repo.lockRun(tx, releaseId)) === 'completed') return;
        await appendAudit(tx, (await releaseEndEntries(tx, releaseId, report)).map(systemEntry));
        await repo.completeRun(tx, releaseId, report);
      });
    },
  };
}

export type ReleaseActivities = ReturnType<typeof createReleaseActivities>;
