/** Shared start-up and shutdown for Berth's worker processes. */
import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import type { Logger } from 'pino';
import type { TemporalConfig } from '../core/config.js';

export async function runWorker(opts: {
  temporal: TemporalConfig;
  logger: Logger;
  options: Omit<WorkerOptions, 'connection' | 'namespace'>;
  onShutdown?: () => Promise<void>;
}): Promise<void> {
  const { temporal, logger, options } = opts;
  Runtime.install({ shutdownSignals: ['SIGINT', 'SIGTERM'] });
  const connection = await NativeConnection.connect({ address: temporal.address });
  try {
    const worker = await Worker.create({ ...options, connection, namespace: temporal.namespace });
    logger.info({ taskQueue: options.taskQueue }, 'worker polling');
    // run() resolves once a shutdown signal has drained the worker (shutdownGraceTime).
    await worker.run();
    logger.info('worker stopped');
  } finally {
    await opts.onShutdown?.();
    await connection.close();
  }
}
