/**
 * A host worker: pinned to one Docker host, it polls berth-host-<hostId> and runs
 * the Docker, gzip and MinIO activities there. It registers its host in the
 * database and heartbeats, which is how the API knows the host is up.
 */
import { loadHostWorkerConfig, loadOrExit } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { hostTaskQueue } from '../core/temporal-names.js';
import { connectDatabase } from '../db/client.js';
import { createHostService } from '../services/hosts.js';
import { createHostActivities } from '../activities/host-activities.js';
import { dockerFromEndpoint } from '../activities/docker-client.js';
import { runWorker } from './run-worker.js';

const config = loadOrExit(loadHostWorkerConfig);
const logger = createLogger(`worker-${config.hostId}`, config.log);
const database = connectDatabase(config.database.url, { max: 2 });
const hostService = createHostService({ db: database.db, staleAfterMs: config.hosts.staleAfterMs });

const docker = dockerFromEndpoint(config.dockerHost);
const info = await docker.info();
const version = await docker.version();
await hostService.register({
  id: config.hostId,
  dockerEndpoint: config.dockerHost,
  engineId: String(info.ID),
  engineVersion: version.Version,
});
logger.info({ hostId: config.hostId, engineId: info.ID, version: version.Version }, 'host registered');

const heartbeat = setInterval(() => {
  hostService.heartbeat(config.hostId).catch((error: unknown) => logger.warn({ err: error }, 'host heartbeat failed'));
}, config.hosts.heartbeatIntervalMs);

await runWorker({
  temporal: config.temporal,
  logger,
  options: {
    taskQueue: hostTaskQueue(config.hostId),
    activities: createHostActivities({ docker, hostId: config.hostId, registryCredentials: config.registryCredentials }),
    shutdownGraceTime: config.shutdownGraceMs,
  },
  onShutdown: async () => {
    clearInterval(heartbeat);
    await database.close();
  },
});
