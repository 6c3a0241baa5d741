/** The control worker: every workflow, and the database activities, on berth-control. */
import { loadControlWorkerConfig, loadOrExit } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { CONTROL_TASK_QUEUE } from '../core/temporal-names.js';
import { connectDatabase } from '../db/client.js';
import { createControlActivities } from '../activities/control-activities.js';
import { runWorker } from './run-worker.js';
import { HeartbeatWhileRunning } from '../activities/heartbeat.js';
import { connectTemporal } from '../core/temporal.js';
import { ensureSchedules } from './schedules.js';
import { WORKFLOWS_PATH } from './workflow-code.js';
import { startTracing } from '../core/tracing.js';

const config = loadOrExit(loadControlWorkerConfig);
const logger = createLogger('worker-control', config.log);
const tracing = startTracing(config.tracing, { logger });
const database = connectDatabase(config.database.url);

// A client for the schedules and for activities that talk to other workflows.
const temporal = await connectTemporal(config.temporal, { tracing });
// The schedules (DCU cleanups, nightly release, audit retention): created, or updated to the configured crons, at every start.
await ensureSchedules(temporal, config, logger);

await runWorker({
  temporal: config.temporal,
  logger,
  ops: config.ops,
  tracing,
  options: {
    taskQueue: CONTROL_TASK_QUEUE,
    // An image's workers load the workflow code it bundled once at build (workers/bundle-workflows.ts);
    // without BERTH_WORKFLOW_BUNDLE (the native stack) the worker bundles workflows/ as it starts.
    ...(config.workflowBundle
      ? { workflowBundle: { codePath: config.workflowBundle } }
      : { workflowsPath: WORKFLOWS_PATH }),
    activities: createControlActivities({ db: database.db, pricePerMb: config.pricePerMb, temporal }),
    // Every control step heartbeats (its profile's heartbeatTimeout: a dead worker's step moves on within 10 s).
    interceptors: { activity: [() => ({ inbound: new HeartbeatWhileRunning() })] },
    shutdownGraceTime: config.shutdownGraceMs,
    // Unset: the SDK sizes the cache from the heap (README "Scaling").
    ...(config.maxCachedWorkflows !== null ? { maxCachedWorkflows: config.maxCachedWorkflows } : {}),
  },
  onShutdown: async () => {
    await temporal.connection.close();
    await database.close();
  },
});
