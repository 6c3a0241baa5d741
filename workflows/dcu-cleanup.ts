import { ApplicationFailure, log, patched, proxyActivities } from '@temporalio/workflow';
import type { ControlActivities } from '../activities/control-activities.js';
import type { HostActivities } from '../activities/host-activities.js';
import type { DcuCleanupInput, DcuGzipCleanupResult, DcuObjectCleanupResult } from '../contracts/dcu-cleanup.js';
import { FailureType, rootCause } from '../core/failures.js';
import { host, sweepDatabase } from './activity-profiles.js';
import { PATCHES } from './patches.js';

const DAY_MS = 86_400_000;

const db = proxyActivities<ControlActivities>(sweepDatabase);

/** A host's sweeps: a host that is down must not hold the sweep of the others. */
const sweeper = (hostId: string) => proxyActivities<HostActivities>(host.sweep(hostId));

/** The registered hosts, the most recently alive first; runs started before the rename list them under the old name. */
const hostIds = (patch: { id: string }) => (patched(patch.id) ? db.listHostIds() : db.dcuListHosts());

/**
 * The `berth-dcu-gzip-cleanup` schedule's workflow: every registered host sweeps its archive
 * directory; what they removed is audited (users' archives, removed by the system).
 */
export async function dcuGzipCleanup(input: DcuCleanupInput): Promise<DcuGzipCleanupResult> {
  const cutoffMs = Date.now() - input.retentionDays * DAY_MS;
  const ids = await hostIds(PATCHES.dcuGzipCleanupListHostIds);
  const settled = await Promise.allSettled(ids.map((hostId) => sweeper(hostId).dcuSweepGzipDir(cutoffMs)));
  if (patched(PATCHES.dcuGzipCleanupAudit.id)) {
    const swept = settled.flatMap((result) => (result.status === 'fulfilled' && result.value.deleted.length > 0 ? [{ hostId: result.value.hostId, deleted: result.value.deleted }] : []));
    if (swept.length > 0) await db.dcuAuditGzipCleanup({ hosts: swept });
  }
  const result = {
    cutoff: new Date(cutoffMs).toISOString(),
    hosts: settled.map((result, i) =>
      result.status === 'fulfilled'
        ? { hostId: result.value.hostId, deleted: result.value.deleted, kept: result.value.kept }
        : { hostId: ids[i]!, error: rootCause(result.reason).message },
    ),
  };
  log.info('local DCU archives swept', {
    cutoff: result.cutoff,
    hosts: result.hosts.map((h) => ('error' in h ? { hostId: h.hostId, error: h.error } : { hostId: h.hostId, deleted: h.deleted.length, kept: h.kept })),
  });
  return result;
}

/**
 * The `berth-dcu-object-cleanup` schedule's workflow: removes the objects of tasks that
 * ended before the cutoff and any object older than it (one host that is up does the
 * MinIO work), then marks those tasks' artifacts expired.
 */
export async function dcuObjectCleanup(input: DcuCleanupInput): Promise<DcuObjectCleanupResult> {
  const cutoffMs = Date.now() - input.retentionDays * DAY_MS;
  const tasks = await db.dcuTasksEndedBefore(cutoffMs);
  const objectNames = tasks.flatMap((t) => (t.minioObjectName ? [t.minioObjectName] : []));
  const errors: string[] = [];
  for (const hostId of await hostIds(PATCHES.dcuObjectCleanupListHostIds)) {
    try {
      const { deleted } = await sweeper(hostId).dcuSweepObjects({ cutoffMs, objectNames });
      const expiredTasks = await db.dcuMarkArtifactsExpired({ taskIds: tasks.map((t) => t.id), objectNames: deleted });
      log.info('DCU objects swept', { cutoff: new Date(cutoffMs).toISOString(), hostId, deleted: deleted.length, expiredTasks });
      return { cutoff: new Date(cutoffMs).toISOString(), hostId, deleted, expiredTasks };
    } catch (error) {
      errors.push(`${hostId}: ${rootCause(error).message}`);
      log.warn('a host could not sweep the DCU bucket', { hostId, reason: rootCause(error).message });
    }
  }
  throw ApplicationFailure.nonRetryable(`no host could sweep the bucket: ${errors.join('; ') || 'no host is registered'}`, FailureType.DcuCleanupFailed);
}
