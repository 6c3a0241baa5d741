/** Shared start-up and shutdown for Berth's worker processes. */
import { NativeConnection, Worker, type ActivityInboundCallsInterceptor, type WorkerOptions } from '@temporalio/worker';
import { ApplicationFailure } from '@temporalio/common';
import { withoutQueryParams } from '../db/client.js';
import { InsufficientFundsError } from '../billing/ledger.js';
import { FailureType } from '../core/failures.js';
import type { Logger } from 'pino';
import type { OpsServerConfig, TemporalConfig } from '../core/config.js';
import { temporalConnectionOptions } from '../core/temporal.js';
import { collectProcessMetrics, metricsRegistry } from '../core/metrics.js';
import { startOpsServer, type ReadinessCheck } from './ops-server.js';
import { coreLogForwarding, sdkLogger } from './sdk-logger.js';
import { requestIdActivityInterceptor } from './request-id-activity-interceptor.js';
import type { Tracing } from '../core/tracing.js';
import { withTracing } from './worker-tracing.js';
import { withWorkflowInterceptors } from './workflow-code.js';
import { installRuntime } from './sdk-runtime.js';

/**
 * What every worker of Berth's runs with, besides its own options: the workflow code's interceptor
 * modules and sinks (withWorkflowInterceptors), tracing's interceptors and sink (off with null),
 * and the activity interceptors (errors as Berth's failures; the request id in log lines). Tests
 * that run a worker of their own take it too.
 */
export function berthWorkerOptions<O extends Partial<WorkerOptions>>(options: O, tracing: Tracing | null) {
  const traced = withTracing(withWorkflowInterceptors(options), tracing);
  return {
    ...traced,
    interceptors: { ...traced.interceptors, activity: [...(traced.interceptors?.activity ?? []), activityErrors, requestIdActivityInterceptor] },
  };
}

export async function runWorker(opts: {
  temporal: TemporalConfig;
  logger: Logger;
  options: Omit<WorkerOptions, 'connection' | 'namespace'>;
  /** The worker's /healthz, /readyz and /metrics server (workers/ops-server.ts); port 0: none, and no SDK metrics. */
  ops: OpsServerConfig;
  /** Readiness checks besides Temporal's and the worker's own (a host worker: its Docker daemon). */
  checks?: Record<string, ReadinessCheck>;
  /** The process's tracing (core/tracing.ts), or null: off. */
  tracing?: Tracing | null;
  onShutdown?: () => Promise<void>;
}): Promise<void> {
  const { temporal, logger } = opts;
  const options = berthWorkerOptions(opts.options, opts.tracing ?? null);
  // The SDK's own metrics are exported only where the ops server relays them.
  const serveMetrics = opts.ops.port !== 0;
  const sdkMetricsUrl = await installRuntime(
    {
      // The SDK's lines, the context loggers' and Core's, as this process's pino JSON (workers/sdk-logger.ts).
      logger: sdkLogger(logger),
      telemetryOptions: { logging: coreLogForwarding(logger) },
      shutdownSignals: ['SIGINT', 'SIGTERM'],
    },
    serveMetrics,
  );
  if (serveMetrics) collectProcessMetrics();
  const checks = new Map<string, ReadinessCheck>();
  let worker: Worker | undefined;
  checks.set('worker', () => {
    if (!worker) throw new Error('not created yet');
    const status = worker.getStatus();
    if (status.runState !== 'RUNNING') throw new Error(`worker is ${status.runState.toLowerCase()}`);
    // A worker without workflows (a host worker) never polls for workflow tasks: its poller is shut down.
    const pollers: Array<[string, string]> = [['activity', status.activityPollerState]];
    if (options.workflowsPath || options.workflowBundle) pollers.push(['workflow', status.workflowPollerState]);
    const stopped = pollers.filter(([, state]) => state !== 'POLLING');
    if (stopped.length) throw new Error(stopped.map(([kind, state]) => `${kind} poller ${state.toLowerCase()}`).join(', '));
  });
  // Until the worker is connected, Temporal is down as far as readiness goes.
  let connection: NativeConnection | undefined;
  checks.set('temporal', async () => {
    if (!connection) throw new Error('not connected yet');
    const conn = connection;
    const { status } = await conn.withDeadline(Date.now() + 2500, () => conn.healthService.check({}));
    // grpc.health.v1 SERVING is 1 (UNKNOWN 0, NOT_SERVING 2).
    if (Number(status) !== 1) throw new Error(`Temporal's frontend is not serving (health status ${String(status)})`);
  });
  for (const [name, check] of Object.entries(opts.checks ?? {})) checks.set(name, check);
  // Listening before connecting: an orchestrator sees the process alive (/healthz) while it connects.
  const ops = await startOpsServer({ config: opts.ops, checks, logger, metrics: { registry: metricsRegistry, sdkMetricsUrl } });
  try {
    connection = await NativeConnection.connect(temporalConnectionOptions(temporal));
    try {
      worker = await Worker.create({
        ...options,
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
      // The spans of the last tasks leave before the process does.
      await opts.tracing?.shutdown();
    }
  } finally {
    await ops?.close();
  }
}

/** The activity interceptor that maps errors to Berth's failures (berthWorkerOptions gives it to every worker). */
const activityErrors = () => ({ inbound: new ActivityErrors() });

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
