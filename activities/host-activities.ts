/** Everything a host worker registers on berth-host-<hostId>. */
import type Docker from 'dockerode';
import type { RegistryCredential } from '../core/config.js';
import type { DcuHostConfig } from '../core/config.js';
import type { Client as MinioClient } from 'minio';
import { createEngineActivities } from './engine.js';
import { createImageDockerActivities } from './images-docker.js';
import { createContainerDockerActivities } from './containers-docker.js';
import { createDcuHostActivities } from './dcu-host.js';
import { createDcuArchiveActivities } from './dcu-archive.js';
import { createStorageActivities } from './storage.js';
import { createUserNetworks } from './networks.js';

export function createHostActivities(deps: {
  docker: Docker;
  hostId: string;
  registryCredentials: Readonly<Record<string, RegistryCredential>>;
  pullStallTimeoutMs: number;
  minio: MinioClient;
  dcu: DcuHostConfig;
}) {
  const networks = createUserNetworks({ docker: deps.docker, hostId: deps.hostId });
  return {
    ...createEngineActivities(deps),
    ...createImageDockerActivities(deps),
    ...createContainerDockerActivities({ docker: deps.docker, networks }),
    ...networks.activities,
    ...createDcuHostActivities({
      docker: deps.docker,
      hostId: deps.hostId,
      gzipDir: deps.dcu.gzipDir,
      minFreeMb: deps.dcu.minFreeMb,
      storage: { minio: deps.minio, bucket: deps.dcu.bucket, partSizeBytes: deps.dcu.partSizeBytes },
    }),
    ...createDcuArchiveActivities({ gzipDir: deps.dcu.gzipDir }),
    ...createStorageActivities({ minio: deps.minio, bucket: deps.dcu.bucket, partSizeBytes: deps.dcu.partSizeBytes, gzipDir: deps.dcu.gzipDir }),
  };
}

export type HostActivities = ReturnType<typeof createHostActivities>;
