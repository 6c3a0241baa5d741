import { type ActivityInterfaceFor, ParentClosePolicy, continueAsNew, executeChild, log, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { ControlActivities } from '../activities/control-activities.js';
import type { HostActivities } from '../activities/host-activities.js';
import { rootCause } from '../core/failures.js';
import { searchAttributesFor } from '../core/search-attributes.js';
import type { BatchRemovals, NightlyReleaseInput, ReleaseFailure, ReleaseItem, ReleaseReport } from '../contracts/nightly-release.js';
import { dockerName } from '../core/container-labels.js';
import { removeImageId, removeImageWorkflow } from '../contracts/remove-image.js';
import { containerUpdate, host, sweepDatabase } from './activity-profiles.js';
import { PATCHES } from './patches.js';

export type { NightlyReleaseInput } from '../contracts/nightly-release.js';

const BATCH = 50;
/** Items listed per batch when the release removes in batches (one activity per host and batch). */
const BATCHED = 100;
const HISTORY_LIMIT = 4000;

type RemoveImage = NonNullable<typeof removeImageWorkflow.signature>;

const db = proxyActivities<ControlActivities>(sweepDatabase);
// A container's removal waits for its workflow's update (Docker stop and remove).
const containerRelease = proxyActivities<ControlActivities>(containerUpdate);

/** The items by host. */
function byHost<T extends ReleaseItem>(items: T[]): Map<string, T[]> {
  const hosts = new Map<string, T[]>();
  for (const item of items) hosts.set(item.hostId, [...(hosts.get(item.hostId) ?? []), item]);
  return hosts;
}

/** Runs `work` on every item, at most `concurrency` at once per host, hosts side by side. */
async function perHost<T extends ReleaseItem>(items: T[], concurrency: number, work: (item: T) => Promise<void>) {
  await Promise.all(
    [...byHost(items).values()].map(async (queue) => {
      const lanes = Array.from({ length: Math.min(concurrency, queue.length) }, async () => {
        for (let item = queue.shift(); item; item = queue.shift()) await work(item);
      });
      await Promise.all(lanes);
    }),
  );
}

/**
 * Removes every container (through its own workflow), then every private image
 * (through removeImage, refunding), carrying on past failures, and ends with a report.
 * Safe to crash and to re-run: each pass lists only what is still there, and money
 * is keyed per image, so nothing is refunded or removed twice.
 */
export async function nightlyRelease(input: NightlyReleaseInput): Promise<ReleaseReport> {
  const releaseId = input.carry?.releaseId ?? workflowInfo().workflowId;
  const report: ReleaseReport = input.carry?.report ?? {
    containers: { removed: 0, failed: 0 },
    images: { removed: 0, failed: 0 },
    refundedTotal: 0,
    failures: [],
  };
  let phase = input.carry?.phase ?? 'containers';
  // Batches: records in one transaction and one Docker activity per host and batch (runs recorded before remove item by item).
  const batched = patched(PATCHES.releaseBatches.id);
  const batchSize = input.batchSize ?? (batched ? BATCHED : BATCH);
  if (!input.carry) await db.recordReleaseStart(releaseId);
  log.info(input.carry ? 'release continues' : 'release started', { releaseId, phase });

  const failed = (p: ReleaseFailure['phase']) => report.failures.filter((f) => f.phase === p).map((f) => f.id);
  const fail = (phase: ReleaseFailure['phase'], item: ReleaseItem, error: unknown) => {
    report[phase].failed += 1;
    log.warn('release could not remove an item', { releaseId, phase, id: item.id, hostId: item.hostId, reason: rootCause(error).message });
    report.failures.push({ phase, id: item.id, hostId: item.hostId, reason: rootCause(error).message });
  };
  const maybeContinue = async () => {
    if (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > (input.historyLimit ?? HISTORY_LIMIT)) {
      log.info('release continues as new', { releaseId, phase, historyLength: workflowInfo().historyLength });
      await continueAsNew<typeof nightlyRelease>({ ...input, carry: { releaseId, phase, report } });
    }
  };

  /** One batch activity on a host; when it fails as a whole, every item of it is reported failed (undefined). */
  const removeOnHost = async (
    hostId: string,
    run: (onHost: ActivityInterfaceFor<HostActivities>) => Promise<BatchRemovals>,
    items: ReleaseItem[],
    phase: ReleaseFailure['phase'],
  ): Promise<BatchRemovals | undefined> => {
    try {
      return await run(proxyActivities<HostActivities>(host.releaseBatch(hostId)));
    } catch (error) {
      for (const item of items) fail(phase, item, error);
      return undefined;
    }
  };

  /**
   * A batch of containers, host by host side by side: their records released in one transaction
   * (and their workflows told), then the containers removed from Docker by one activity. One that
   * Docker could not remove has no live record any more: the orphan sweep after the last batch
   * tries again, and reports it if it fails again. Containers still being created go through
   * their workflow's update, which waits for the creation.
   */
  const releaseContainerBatch = async (batch: ReleaseItem[]) => {
    const creating = batch.filter((item) => item.creating);
    await Promise.all([
      perHost(creating, input.concurrency, async (item) => {
        try {
          await containerRelease.removeContainerForRelease(item.id);
          report.containers.removed += 1;
        } catch (error) {
          fail('containers', item, error);
        }
      }),
      ...[...byHost(batch.filter((item) => !item.creating))].map(async ([hostId, items]) => {
        try {
          await db.releaseContainerRecords(items.map((item) => item.id));
        } catch (error) {
          for (const item of items) fail('containers', item, error);
          return;
        }
        const removals = await removeOnHost(hostId, (h) => h.removeContainersBatch(items.map((item) => dockerName(item.id)), input.concurrency), [], 'containers');
        const refused = new Set(removals ? removals.failed.map((f) => f.ref) : items.map((item) => dockerName(item.id)));
        report.containers.removed += items.filter((item) => !refused.has(dockerName(item.id))).length;
        if (refused.size > 0) log.warn('release could not remove containers from Docker; the orphan sweep tries again', { releaseId, hostId, count: refused.size });
      }),
    ]);
  };

  /**
   * A batch of private images, host by host side by side: the references no other record keeps
   * removed from Docker by one activity, then the records refunded (once each, keyed by the
   * image) and deleted in one transaction. An image Docker could not remove keeps its record
   * and its charge, and is reported.
   */
  const releaseImageBatch = async (batch: ReleaseItem[]) => {
    await Promise.all([...byHost(batch)].map(async ([hostId, items]) => {
      const references = [...new Set(items.filter((item) => !item.keepOnHost).map((item) => item.reference!))];
      const removals = references.length
        ? await removeOnHost(hostId, (h) => h.removeImageReferencesBatch(references, input.concurrency), items, 'images')
        : { done: [], failed: [] };
      if (!removals) return;
      const refused = new Map(removals.failed.map((f) => [f.ref, f.reason]));
      const removable: ReleaseItem[] = [];
      for (const item of items) {
        const reason = item.keepOnHost ? undefined : refused.get(item.reference!);
        if (reason === undefined) removable.push(item);
        else fail('images', item, new Error(reason));
      }
      if (removable.length === 0) return;
      try {
        const result = await db.refundAndDeleteImagesForRelease(removable, `nightly release ${releaseId}`, releaseId);
        report.images.removed += result.removed.length;
        report.refundedTotal += result.removed.reduce((sum, r) => sum + r.refunded, 0);
        for (const f of result.failed) fail('images', removable.find((item) => item.id === f.id)!, new Error(f.reason));
      } catch (error) {
        for (const item of removable) fail('images', item, error);
      }
    }));
  };

  /**
   * Containers that carry Berth's label but have no live record (their record was
   * removed while Docker kept them): removed directly on their host, so that none is left.
   */
  const removeOrphans = async () => {
    const hostIds = patched(PATCHES.releaseListHostIds.id) ? await db.listHostIds() : await db.dcuListHosts();
    await Promise.all(hostIds.map(async (hostId) => {
      const onHost = proxyActivities<HostActivities>(host.release(hostId));
      let found: Array<{ id: string; dockerId: string; userId?: string }>;
      try {
        found = await onHost.listBerthContainers();
      } catch (error) {
        fail('containers', { id: `host ${hostId}`, hostId }, error);
        return;
      }
      const live = new Set(await db.liveContainerIds(found.map((c) => c.id)));
      const orphans = found
        .filter((c) => !live.has(c.id))
        .map((c) => ({ id: c.id || c.dockerId, hostId, dockerId: c.dockerId, ...(c.userId ? { userId: c.userId } : {}) }));
      if (batched) {
        if (orphans.length > 0) {
          const removals = await removeOnHost(hostId, (h) => h.removeContainersBatch(orphans.map((o) => o.dockerId), input.concurrency), orphans, 'containers');
          for (const item of removals ? orphans : []) {
            const refused = removals!.failed.find((f) => f.ref === item.dockerId);
            if (refused) {
              fail('containers', item, new Error(refused.reason));
            } else {
              report.containers.removed += 1;
              (report.orphans ??= []).push(item);
            }
          }
        }
      } else {
        await perHost(orphans, input.concurrency, async (item) => {
          try {
            await onHost.removeDockerContainer(item.dockerId);
            report.containers.removed += 1;
            // Listed in the report, so that recordReleaseEnd audits its removal (no new command).
            (report.orphans ??= []).push(item);
          } catch (error) {
            fail('containers', item, error);
          }
        });
      }
      // With the containers gone, their users' networks go too (one whose container failed to go stays).
      if (patched(PATCHES.releaseUserNetworks.id)) {
        try {
          // One removal after another: thousands of networks take minutes.
          await proxyActivities<HostActivities>(host.networkSweep(hostId)).removeUnusedUserNetworks();
        } catch (error) {
          fail('containers', { id: `networks on ${hostId}`, hostId }, error);
        }
      }
    }));
  };

  if (phase === 'containers') {
    for (;;) {
      const batch = await db.listReleasableContainers(failed('containers'), batchSize);
      if (batch.length === 0) break;
      if (batched) {
        await releaseContainerBatch(batch);
      } else {
        await perHost(batch, input.concurrency, async (item) => {
          try {
            await containerRelease.removeContainerForRelease(item.id);
            report.containers.removed += 1;
          } catch (error) {
            fail('containers', item, error);
          }
        });
      }
      await maybeContinue();
    }
    await removeOrphans();
    log.info('release removed the containers', { releaseId, removed: report.containers.removed, failed: report.containers.failed });
    phase = 'images';
  }

  for (;;) {
    const batch = batched ? await db.listReleasableImageBatch(failed('images'), batchSize) : await db.listReleasableImages(failed('images'), batchSize);
    if (batch.length === 0) break;
    if (batched) {
      await releaseImageBatch(batch);
      await maybeContinue();
      continue;
    }
    await perHost(batch, input.concurrency, async (item) => {
      try {
        const result = await executeChild<RemoveImage>(removeImageWorkflow.type, {
          workflowId: removeImageId(item.id),
          taskQueue: removeImageWorkflow.taskQueue,
          // The release's id makes the refund a release_refund (same key as any image refund: once per image).
          args: [{ imageId: item.id, hostId: item.hostId, reference: item.reference!, reason: `nightly release ${releaseId}`, releaseId }],
          parentClosePolicy: ParentClosePolicy.ABANDON,
          // Findable by its owner, host and image, as a removal the API starts is.
          ...(patched(PATCHES.releaseRemovalSearchAttributes.id)
            ? { typedSearchAttributes: searchAttributesFor({ userId: item.userId, hostId: item.hostId, resourceId: item.id }) }
            : {}),
        });
        report.images.removed += 1;
        report.refundedTotal += result.refunded;
      } catch (error) {
        fail('images', item, error);
      }
    });
    await maybeContinue();
  }

  await db.recordReleaseEnd(releaseId, report);
  log.info('release ended', { releaseId, containers: report.containers, images: report.images, refundedTotal: report.refundedTotal });
  return report;
}
