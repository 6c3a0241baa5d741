import { log, proxyActivities } from '@temporalio/workflow';
import type { HostActivities } from '../activities/host-activities.js';
import type { EngineInfo } from '../contracts/ping-host.js';
import { host } from './activity-profiles.js';

/**
 * Runs one activity on the host's own task queue and returns what the engine
 * says about itself: the end-to-end proof of per-host routing.
 */
export async function pingHost(hostId: string): Promise<EngineInfo> {
  const info = await proxyActivities<HostActivities>(host.ping(hostId)).engineInfo();
  log.info('host answered', { hostId, engineId: info.engineId, version: info.version });
  return info;
}
