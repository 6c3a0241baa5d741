/** Everything a host worker registers on berth-host-<hostId>. */
import type Docker from 'dockerode';
import { createDockerActivities } from './docker.js';

export function createHostActivities(deps: { docker: Docker; hostId: string }) {
  return { ...createDockerActivities(deps) };
}

export type HostActivities = ReturnType<typeof createHostActivities>;
