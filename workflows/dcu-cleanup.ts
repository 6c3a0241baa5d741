import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { ControlActivities } from '../activities/control-activities.js';
import type { HostActivities } from '../activities/host-activities.js';
import { hostTaskQueue } from '../core/temporal-names.js';
import { reasonOf } from './dcu.js';

const DAY_MS = 86_400_000;

export interface DcuCleanupInput {
  retentionDays: number;
}

export interface DcuGzipCleanupResult {
  cutoff: string;
  hosts: Array<{ hostId: string; deleted: string[]; kept: number } | { hostId: string; error: string }>;
}

export interface DcuObjectCleanupResult {
  cutoff: string;
  hostId: string;
  deleted: string[];
  expiredTasks: number;
}

const db = proxyActivities<ControlActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 10 },
});

function sweeper(hostId: string) {
  return proxyActivities<HostActivities>({
    taskQueue: hostTaskQueue(hostId),
    // A host that is down must not hold the sweep of the others.
    scheduleToStartTimeout: '1m',
    startToCloseTimeout: '10m',
    scheduleToCloseTimeout: '15m',
    heartbeatTimeout: '1m',
    retry: { initialInterval: '2s', maximumInterval: '30s', maximumAttempts: 3 },
  });
}

/** The `berth-dcu-gzip-cleanup` schedule's workflow: every registered host sweeps its archive directory. */
export async function dcuGzipCleanup(input: DcuCleanupInput): Promise<DcuGzipCleanupResult> {
  const cutoffMs = Date.now() - input.retentionDays * DAY_MS;
  const hostIds = await db.dcuListHosts();
  const settled = await Promise.allSettled(hostIds.map((hostId) => sweeper(hostId).dcuSweepGzipDir(cutoffMs)));
  return {
    cutoff: new Date(cutoffMs).toISOString(),
    hosts: settled.map((result, i) =>
      result.status === 'fulfilled'
        ? { hostId: result.value.hostId, deleted: result.value.deleted, kept: result.value.kept }
        : { hostId: hostIds[i]!, error: reasonOf(result.reason).message },
    ),
  };
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
  for (const hostId of await db.dcuListHosts()) {
    try {
      const { deleted } = await sweeper(hostId).dcuSweepObjects({ cutoffMs, objectNames });
      const expiredTasks = await db.dcuMarkArtifactsExpired({ taskIds: tasks.map((t) => t.id), objectNames: deleted });
      return { cutoff: new Date(cutoffMs).toISOString(), hostId, deleted, expiredTasks };
    } catch (error) {
      errors.push(`${hostId}: ${reasonOf(error).message}`);
    }
  }
  throw ApplicationFailure.nonRetryable(`no host could sweep the bucket: ${errors.join('; ') || 'no host is registered'}`, 'DcuCleanupFailed');
}
