/**
 * The Temporal SDK's Runtime of a worker process, installed once, before any NativeConnection
 * or Worker. With `sdkMetrics`, the SDK's Core exports its own metrics (workflow and activity
 * task latencies and failures, pollers, task slots, the sticky cache: `temporal_*`) through its
 * Prometheus exporter, which listens on a loopback port of its own, picked free at start; the
 * worker's ops server relays that page on its /metrics (workers/ops-server.ts), so Prometheus
 * scrapes one target per process and the Core port is never published.
 */
import { Runtime, type RuntimeOptions } from '@temporalio/worker';
import { freePort } from '../core/ports.js';

/** Core's Prometheus exporter: counters end in _total, histograms carry their unit, durations in seconds. */
export function sdkPrometheusMetrics(bindAddress: string) {
  return { prometheus: { bindAddress, countersTotalSuffix: true, unitSuffix: true, useSecondsForDurations: true } };
}

/** Tries for a free port this many times (another process may take the one picked before Core binds it). */
const BIND_ATTEMPTS = 5;

/**
 * Runtime.install with `options`, plus, when `sdkMetrics`, Core's Prometheus exporter on
 * 127.0.0.1; resolves to the exporter's /metrics URL (null without). Throws when a Runtime is
 * installed already (the SDK's IllegalStateError): once per process.
 */
export async function installRuntime(options: RuntimeOptions, sdkMetrics: boolean): Promise<string | null> {
  if (!sdkMetrics) {
    Runtime.install(options);
    return null;
  }
  for (let attempt = 1; ; attempt++) {
    const address = `127.0.0.1:${await freePort()}`;
    try {
      Runtime.install({ ...options, telemetryOptions: { ...options.telemetryOptions, metrics: sdkPrometheusMetrics(address) } });
      return `http://${address}/metrics`;
    } catch (error) {
      if (attempt >= BIND_ATTEMPTS || !/address already in use/i.test(error instanceof Error ? error.message : '')) throw error;
    }
  }
}
