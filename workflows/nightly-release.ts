import { ParentClosePolicy, continueAsNew, executeChild, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { ControlActivities } from '../activities/control-activities.js';
import type { ReleaseFailure, ReleaseItem, ReleaseReport } from '../activities/release.js';
import type { HostActivities } from '../activities/host-activities.js';
import { CONTROL_TASK_QUEUE, workflowIds } from '../core/temporal-names.js';
import { onHost } from './activity-options.js';
import { removeImage } from './remove-image.js';

export interface NightlyReleaseInput {
  /** Removals in flight per host at most. */
  concurrency: number;
  /** Items listed per batch (default 50). */
  batchSize?: number;
  /** History events after which the run continues as new, between batches (default 4000). */
  historyLimit?: number;
  /** Carried across continue-as-new. */
  carry?: { releaseId: string; phase: 'containers' | 'images'; report: ReleaseReport };
}

const BATCH = 50;
/** patched() id of the sweep of users' networks, a step releases started before it did not take. */
const NETWORK_SWEEP_PATCH = 'release-user-networks';
const HISTORY_LIMIT = 4000;

const db = proxyActivities<ControlActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 10 },
});
// A container's removal waits for its workflow's update (Docker stop and remove).
const containerRelease = proxyActivities<ControlActivities>({
  startToCloseTimeout: '3m',
  retry: { initialInterval: '2s', maximumInterval: '30s', maximumAttempts: 3, nonRetryableErrorTypes: ['ContainerOrphaned', 'ContainerRemoveFailed'] },
});

const reasonOf = (error: unknown): string => {
  let e = error as { message?: string; cause?: unknown } | undefined;
  let message = e?.message ?? String(error);
  while (e?.cause) {
    e = e.cause as { message?: string; cause?: unknown };
    if (e.message) message = e.message;
  }
  return message;
};

/** Runs `work` on every item, at most `concurrency` at once per host, hosts side by side. */
async function perHost<T extends ReleaseItem>(items: T[], concurrency: number, work: (item: T) => Promise<void>) {
  const byHost = new Map<string, T[]>();
  for (const item of items) byHost.set(item.hostId, [...(byHost.get(item.hostId) ?? []), item]);
  await Promise.all(
    [...byHost.values()].map(async (queue) => {
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
  if (!input.carry) await db.recordReleaseStart(releaseId);

  const failed = (p: ReleaseFailure['phase']) => report.failures.filter((f) => f.phase === p).map((f) => f.id);
  const fail = (phase: ReleaseFailure['phase'], item: ReleaseItem, error: unknown) => {
    report[phase].failed += 1;
    report.failures.push({ phase, id: item.id, hostId: item.hostId, reason: reasonOf(error) });
  };
  const maybeContinue = async () => {
    if (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > (input.historyLimit ?? HISTORY_LIMIT)) {
      await continueAsNew<typeof nightlyRelease>({ ...input, carry: { releaseId, phase, report } });
    }
  };

  /**
   * Containers that carry Berth's label but have no live record (their record was
   * removed while Docker kept them): removed directly on their host, so that none is left.
   */
  const removeOrphans = async () => {
    await Promise.all((await db.dcuListHosts()).map(async (hostId) => {
      const host = proxyActivities<HostActivities>({ ...onHost(hostId), scheduleToStartTimeout: '30s', startToCloseTimeout: '1m' });
      let found: Array<{ id: string; dockerId: string }>;
      try {
        found = await host.listBerthContainers();
      } catch (error) {
        fail('containers', { id: `host ${hostId}`, hostId }, error);
        return;
      }
      const live = new Set(await db.liveContainerIds(found.map((c) => c.id)));
      const orphans = found.filter((c) => !live.has(c.id)).map((c) => ({ id: c.id || c.dockerId, hostId, dockerId: c.dockerId }));
      await perHost(orphans, input.concurrency, async (item) => {
        try {
          await host.removeDockerContainer(item.dockerId);
          report.containers.removed += 1;
        } catch (error) {
          fail('containers', item, error);
        }
      });
      // With the containers gone, their users' networks go too (one whose container failed to go stays).
      if (patched(NETWORK_SWEEP_PATCH)) {
        try {
          // One removal after another: thousands of networks take minutes.
          await proxyActivities<HostActivities>({ ...onHost(hostId), scheduleToStartTimeout: '30s', startToCloseTimeout: '15m' }).removeUnusedUserNetworks();
        } catch (error) {
          fail('containers', { id: `networks on ${hostId}`, hostId }, error);
        }
      }
    }));
  };

  if (phase === 'containers') {
    for (;;) {
      const batch = await db.listReleasableContainers(failed('containers'), input.batchSize ?? BATCH);
      if (batch.length === 0) break;
      await perHost(batch, input.concurrency, async (item) => {
        try {
          await containerRelease.removeContainerForRelease(item.id);
          report.containers.removed += 1;
        } catch (error) {
          fail('containers', item, error);
        }
      });
      await maybeContinue();
    }
    await removeOrphans();
    phase = 'images';
  }

  for (;;) {
    const batch = await db.listReleasableImages(failed('images'), input.batchSize ?? BATCH);
    if (batch.length === 0) break;
    await perHost(batch, input.concurrency, async (item) => {
      try {
        const result = await executeChild(removeImage, {
          workflowId: workflowIds.removeImage(item.id),
          taskQueue: CONTROL_TASK_QUEUE,
          args: [{ imageId: item.id, hostId: item.hostId, reference: item.reference!, reason: `nightly release ${releaseId}` }],
          parentClosePolicy: ParentClosePolicy.ABANDON,
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
  return report;
}
