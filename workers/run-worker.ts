/** Shared start-up and shutdown for Berth's worker processes. */
import { NativeConnection, Runtime, Worker, type ActivityInboundCallsInterceptor, type WorkerOptions } from '@temporalio/worker';
import { ApplicationFailure } from '@temporalio/common';
import { withoutQueryParams } from '../db/client.js';
import { InsufficientFundsError } from '../billing/ledger.js';
import { FailureType } from '../core/failures.js';
import type { Logger } from 'pino';
import type { TemporalConfig } from '../core/config.js';
import { temporalConnectionOptions } from '../core/temporal.js';

export async function runWorker(opts: {
  temporal: TemporalConfig;
  logger: Logger;
  options: Omit<WorkerOptions, 'connection' | 'namespace'>;
  onShutdown?: () => Promise<void>;
}): Promise<void> {
  const { temporal, logger, options } = opts;
  Runtime.install({ shutdownSignals: ['SIGINT', 'SIGTERM'] });
  const connection = await NativeConnection.connect(temporalConnectionOptions(temporal));
  try {
    const worker = await Worker.create({
      ...options,
      interceptors: { ...options.interceptors, activity: [...(options.interceptors?.activity ?? []), () => ({ inbound: new ActivityErrors() })] },
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
 * What an activity's error becomes in its workflow's history:
 * - the balance cannot pay (billing's InsufficientFundsError): the non-retryable InsufficientFunds
 *   failure type, the one place this mapping is made;
 * - a database error leaves without the values of its query (drizzle writes them into its
 *   message): the history is read by operators and sometimes shown to users.
 */
class ActivityErrors implements ActivityInboundCallsInterceptor {
  async execute(input: Parameters<NonNullable<ActivityInboundCallsInterceptor['execute']>>[0], next: Parameters<NonNullable<ActivityInboundCallsInterceptor['execute']>>[1]) {
    try {
      return await next(input);
    } catch (error) {
      if (error instanceof InsufficientFundsError) {
        throw ApplicationFailure.create({ message: error.message, type: FailureType.InsufficientFunds, nonRetryable: true });
      }
      throw withoutQueryParams(error);
    }
  }
}
