/** Everything a host worker registers on berth-host-<hostId>. */
import type Docker from 'dockerode';
import type { RegistryCredential } from '../core/config.js';
import { createDockerActivities } from './docker.js';
import { createImageDockerActivities } from './images-docker.js';
import { createContainerDockerActivities } from './containers-docker.js';

export function createHostActivities(deps: {
  docker: Docker;
  hostId: string;
  registryCredentials: Readonly<Record<string, RegistryCredential>>;
}) {
  return {
    ...createDockerActivities(deps),
    ...createImageDockerActivities(deps),
    ...createContainerDockerActivities(deps),
  };
}

export type HostActivities = ReturnType<typeof createHostActivities>;
