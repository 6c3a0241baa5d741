import { proxyActivities } from '@temporalio/workflow';
import type { HostActivities } from '../activities/host-activities.js';
import type { EngineInfo } from '../activities/docker.js';
import { hostTaskQueue } from '../core/temporal-names.js';

/**
 * Runs one activity on the host's own task queue and returns what the engine
 * says about itself: the end-to-end proof of per-host routing.
 */
export async function pingHost(hostId: string): Promise<EngineInfo> {
  const host = proxyActivities<HostActivities>({
    taskQueue: hostTaskQueue(hostId),
    // Nothing else polls a host's queue: without this, a task for a dead host waits forever.
    scheduleToCloseTimeout: '20s',
    startToCloseTimeout: '10s',
    retry: { initialInterval: '500ms', maximumAttempts: 5 },
  });
  return host.engineInfo();
}
