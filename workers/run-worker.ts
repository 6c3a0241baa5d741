/** Shared start-up and shutdown for Berth's worker processes. */
import { NativeConnection, Runtime, Worker, type ActivityInboundCallsInterceptor, type WorkerOptions } from '@temporalio/worker';
import { withoutQueryParams } from '../db/client.js';
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
    const worker = await Worker.create({
      ...options,
      interceptors: { ...options.interceptors, activity: [...(options.interceptors?.activity ?? []), () => ({ inbound: new DatabaseErrorScrubber() })] },
      connection,
      namespace: temporal.namespace,
    });
    logger.info({ taskQueue: options.taskQueue }, 'worker polling');
    // run() resolves once a shutdown signal has drained the worker (shutdownGraceTime).
    await worker.run();
    logger.info('worker stopped');
  } finally {
    await opts.onShutdown?.();
    await connection.close();
  }
}

/**
 * An activity's failure is kept in its workflow's history, read by operators and sometimes
 * shown to users (a container's stateReason): a database error leaves without the values of
 * its query (drizzle writes them into its message).
 */
class DatabaseErrorScrubber implements ActivityInboundCallsInterceptor {
  async execute(input: Parameters<NonNullable<ActivityInboundCallsInterceptor['execute']>>[0], next: Parameters<NonNullable<ActivityInboundCallsInterceptor['execute']>>[1]) {
    try {
      return await next(input);
    } catch (error) {
      throw withoutQueryParams(error);
    }
  }
}
