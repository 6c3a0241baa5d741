/**
 * A host worker: pinned to one Docker host, it polls berth-host-<hostId> and runs
 * the Docker, gzip and MinIO activities there. It registers its host in the
 * database and heartbeats, which is how the API knows the host is up.
 */
import { isLoopbackHost, loadHostWorkerConfig, loadOrExit } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { hostTaskQueue } from '../core/temporal-names.js';
import { connectDatabase } from '../db/client.js';
import { recordHeartbeat, upsertHost } from '../repositories/hosts.js';
import { createHostActivities } from '../activities/host-activities.js';
import { dockerClient } from '../activities/docker-client.js';
import { minioClient } from '../core/minio.js';
import { connectTemporal } from '../core/temporal.js';
import { liveOnHost } from '../repositories/containers.js';
import { runWorker } from './run-worker.js';
import { startStreamServer } from './host-streams.js';
import { watchContainerEvents } from './host-events.js';
import { prewarmSaveGzip } from '../activities/save-gzip.js';
import { hostNameservers, installFirewall, otherBridges } from './host-firewall.js';
import { startTracing } from '../core/tracing.js';

const config = loadOrExit(loadHostWorkerConfig);
const logger = createLogger(`worker-${config.hostId}`, config.log);
const tracing = startTracing(config.tracing, { logger, attributes: { 'berth.host_id': config.hostId } });
const database = connectDatabase(config.database.url, { max: 2 });

if (config.docker.endpoint.startsWith('tcp://') && !config.docker.tls) {
  logger.warn({ endpoint: config.docker.endpoint }, 'BERTH_DOCKER_ALLOW_PLAIN_TCP=true: the Docker API is reached over plain TCP, unauthenticated and unencrypted');
}
if (!config.streams.tls && !isLoopbackHost(config.streams.host)) {
  logger.warn({ host: config.streams.host }, 'BERTH_STREAMS_ALLOW_PLAIN=true: logs, stats and the internal token travel over plain HTTP');
}
const docker = dockerClient(config.docker);
const info = (await docker.info()) as { ID: unknown };
const version = await docker.version();

// Users' networks are confined before this worker takes any work (the daemon is up, so
// Docker's DOCKER-USER chain exists). Without the rules it does not run: isolation is not optional.
if (config.egress.firewall === 'iptables') {
  try {
    await installFirewall(
      { allowCidrs: config.egress.allowCidrs, otherBridges: await otherBridges(), nameservers: await hostNameservers() },
      logger,
    );
  } catch (error) {
    logger.fatal({ err: error }, 'cannot install the egress firewall (iptables, as root, on the Docker host; or BERTH_EGRESS_FIREWALL=off)');
    process.exit(1);
  }
} else {
  logger.warn('BERTH_EGRESS_FIREWALL=off: users\' containers are confined by Docker\'s network isolation only');
}
const streams = await startStreamServer({ docker, token: config.internalToken, logger, ...config.streams });
await upsertHost(database.db, {
  id: config.hostId,
  dockerEndpoint: config.docker.endpoint,
  engineId: String(info.ID),
  engineVersion: version.Version,
  streamUrl: streams.url,
  publishIp: config.publishIp,
});
logger.info({ hostId: config.hostId, engineId: info.ID, version: version.Version }, 'host registered');

// Docker events for Berth's containers become signals to their workflows.
const temporal = await connectTemporal(config.temporal, { tracing });
const events = watchContainerEvents({
  docker,
  temporal,
  logger,
  liveContainerIds: () => liveOnHost(database.db, config.hostId),
});

// The DCU compress phase runs in a thread of its own: have one booted before the first task.
prewarmSaveGzip();

const heartbeat = setInterval(() => {
  recordHeartbeat(database.db, config.hostId).catch((error: unknown) => logger.warn({ err: error }, 'host heartbeat failed'));
}, config.hosts.heartbeatIntervalMs);

await runWorker({
  temporal: config.temporal,
  logger,
  ops: config.ops,
  tracing,
  // Ready only while this host's Docker daemon answers, besides Temporal and the worker.
  checks: {
    docker: async () => {
      await docker.ping();
    },
  },
  options: {
    taskQueue: hostTaskQueue(config.hostId),
    activities: createHostActivities({
      docker,
      hostId: config.hostId,
      registryCredentials: config.registryCredentials,
      pullStallTimeoutMs: config.pullStallTimeoutMs,
      minio: minioClient(config.minio),
      dcu: config.dcu,
    }),
    shutdownGraceTime: config.shutdownGraceMs,
    // Heartbeats carry progress (pulls, DCU phases) and bring cancellations back: send them
    // every second, not at 80% of each activity's heartbeat timeout.
    maxHeartbeatThrottleInterval: '1s',
  },
  onShutdown: async () => {
    clearInterval(heartbeat);
    events.stop();
    await streams.close();
    await temporal.connection.close();
    await database.close();
  },
});
