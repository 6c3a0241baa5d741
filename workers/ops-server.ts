/**
 * A worker's operations server, on a port of its own (BERTH_METRICS_HOST, BERTH_METRICS_PORT):
 * what orchestrators and operators ask a worker process, as the API answers it for itself.
 *
 *   GET /healthz  200 {status: "ok"} while the process runs (its event loop answers).
 *   GET /readyz   200 {status: "ready", checks} when every check passes, else 503
 *                 {status: "not ready", checks}: each check is {status: "ok"} or
 *                 {status: "down", error}. A worker's checks: Temporal answers (its gRPC
 *                 health service), the worker runs and polls its task queue; a host worker's
 *                 also: its Docker daemon answers a ping.
 *   GET /metrics  the Prometheus text format: the process's registry (core/metrics.ts: process_*,
 *                 nodejs_* and the domain metrics recorded here), then the Temporal SDK's own
 *                 metrics (temporal_*), fetched from Core's exporter on its loopback port
 *                 (workers/sdk-runtime.ts): one scrape target per process.
 *
 * Nothing here needs a credential: bind it to an address only the orchestrator and the metrics
 * scraper reach.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { OpsServerConfig } from '../core/config.js';

/** One readiness check: resolves when ready, throws (or rejects) saying why not. */
export type ReadinessCheck = () => Promise<void> | void;

export interface OpsServer {
  /** http://host:port, as bound. */
  url: string;
  close(): Promise<void>;
}

/** A check that has not answered within this long is down. */
const CHECK_TIMEOUT_MS = 3000;
/** Core's exporter is on this machine's loopback: it answers at once or is broken. */
const SDK_METRICS_TIMEOUT_MS = 2000;

/** What /metrics serves: the process's registry, and the page of the SDK's exporter when it runs one. */
export interface OpsMetrics {
  registry: Registry;
  /** Core's Prometheus exporter (http://127.0.0.1:<port>/metrics); null: none. */
  sdkMetricsUrl: string | null;
}

/** The registry's page, then the SDK's; without the SDK's page (logged), the registry's alone. */
async function metricsPage(metrics: OpsMetrics, logger: Logger): Promise<string> {
  const fetchSdk = async (url: string) => {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(SDK_METRICS_TIMEOUT_MS) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      return await res.text();
    } catch (error) {
      logger.warn({ err: error, url }, 'the Temporal SDK\'s metrics exporter did not answer');
      return '# The Temporal SDK\'s metrics exporter did not answer.\n';
    }
  };
  const [own, sdk] = await Promise.all([metrics.registry.metrics(), metrics.sdkMetricsUrl ? fetchSdk(metrics.sdkMetricsUrl) : '']);
  return sdk ? `${own.endsWith('\n') ? own : `${own}\n`}${sdk}` : own;
}

async function runCheck(check: ReadinessCheck): Promise<{ status: 'ok' } | { status: 'down'; error: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.resolve().then(check),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
      }),
    ]);
    return { status: 'ok' };
  } catch (error) {
    return { status: 'down', error: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Serves /healthz and /readyz with the given checks (a map, so that checks can be added once
 * what they look at exists: the worker is created after the server starts), and /metrics when
 * given `metrics`. Resolves to null when the port is 0 (no server); rejects when the address
 * cannot be bound.
 */
export async function startOpsServer(opts: {
  config: OpsServerConfig;
  checks: Map<string, ReadinessCheck>;
  logger: Logger;
  metrics?: OpsMetrics;
}): Promise<OpsServer | null> {
  const { config, checks, logger, metrics } = opts;
  if (config.port === 0) return null;

  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://ops').pathname;
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : text);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { message: 'method not allowed' });
    if (path === '/healthz') return send(200, { status: 'ok' });
    if (path === '/metrics' && metrics) {
      metricsPage(metrics, logger).then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        (error: unknown) => {
          logger.error({ err: error }, 'metrics collection failed');
          send(500, { message: 'internal error' });
        },
      );
      return;
    }
    if (path !== '/readyz') return send(404, { message: 'not found' });
    const names = [...checks.keys()];
    Promise.all(names.map((name) => runCheck(checks.get(name)!))).then(
      (results) => {
        const ready = results.every((r) => r.status === 'ok');
        send(ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', checks: Object.fromEntries(names.map((n, i) => [n, results[i]])) });
      },
      (error: unknown) => {
        logger.error({ err: error }, 'readiness check failed unexpectedly');
        send(500, { message: 'internal error' });
      },
    );
  });
  // A scraper or a health check holds no connection open for long; nothing here streams.
  server.keepAliveTimeout = 5000;
  server.requestTimeout = 10_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info({ url, sdkMetrics: metrics?.sdkMetricsUrl ?? null }, `ops server listening (/healthz, /readyz${metrics ? ', /metrics' : ''})`);
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
