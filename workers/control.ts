/** The control worker: every workflow, and the database activities, on berth-control. */
import { fileURLToPath } from 'node:url';
import { loadControlWorkerConfig, loadOrExit } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { CONTROL_TASK_QUEUE } from '../core/temporal-names.js';
import { connectDatabase } from '../db/client.js';
import { createControlActivities } from '../activities/control-activities.js';
import { runWorker } from './run-worker.js';

const config = loadOrExit(loadControlWorkerConfig);
const logger = createLogger('worker-control', config.log);
const database = connectDatabase(config.database.url);

await runWorker({
  temporal: config.temporal,
  logger,
  options: {
    taskQueue: CONTROL_TASK_QUEUE,
    workflowsPath: fileURLToPath(new URL('../workflows/index.ts', import.meta.url)),
    activities: createControlActivities({ db: database.db, pricePerMb: config.pricePerMb }),
    shutdownGraceTime: config.shutdownGraceMs,
  },
  onShutdown: () => database.close(),
});
