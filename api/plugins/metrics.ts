/**
 * Prometheus metrics at /metrics (README, Operating Berth: Metrics). The process's registry
 * (core/metrics.ts): default process metrics under their standard names and the domain metrics
 * recorded in this process (limited requests, money credited, ...); this app's own: requests and
 * their latency per route and status, and the gauges computed on each scrape from PostgreSQL and
 * Temporal (services/gauges.ts), never kept between scrapes.
 */
import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { collectProcessMetrics, metricsRegistry } from '../../core/metrics.js';
import type { GaugeService } from '../../services/gauges.js';
import { SCHEDULE_IDS } from '../../services/gauges.js';
import { textResponse } from '../schemas.js';

export default fp<{ gauges: GaugeService }>(
  async (app, { gauges }) => {
    collectProcessMetrics();
    const registry = new Registry();
    const registers = [registry];
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]) => new Gauge({ name, help, labelNames, registers });
    const labelNames = ['method', 'route', 'status_code'] as const;
    const requests = new Counter({ name: 'berth_http_requests_total', help: 'HTTP requests, by method, route and status', labelNames, registers });
    const duration = new Histogram({
      name: 'berth_http_request_duration_seconds',
      help: 'HTTP request latency, by method, route and status',
      labelNames,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    const hostsUp = gauge('berth_hosts_up', 'Whether a host is up (1) or down (0) by its last heartbeat, as the hosts API says', ['host']);
    const containers = gauge('berth_containers', 'Live container records (not removed or failed), by state and host', ['state', 'host']);
    const scheduleLastRun = gauge('berth_schedule_last_run_timestamp_seconds', "When a schedule's last action was actually taken (absent until it has run)", ['schedule']);
    const scheduleMissed = gauge('berth_schedule_missed_runs', 'Actions a schedule missed by more than its catch-up window', ['schedule']);
    const schedulePaused = gauge('berth_schedule_paused', 'Whether a schedule is paused (1) or not (0)', ['schedule']);

    /** Reads one source into its gauges; a source that cannot be read leaves them out of this scrape (logged). */
    const read = <T>(what: string, load: () => Promise<T>, apply: (value: T) => void, clear: () => void) =>
      load().then(apply, (error: unknown) => {
        clear();
        app.log.warn({ err: error }, `metrics: cannot read ${what}`);
      });
    const scheduleGauges = [scheduleLastRun, scheduleMissed, schedulePaused];
    /**
     * When each schedule was last described. A schedule changes seldom, and its describe can miss
     * its deadline when Temporal is busy: its gauges keep their last values for this long after a
     * describe that failed, then leave the scrape (a series that comes and goes would read, to the
     * alert rules, as a schedule that vanished).
     */
    const SCHEDULE_KEPT_MS = 5 * 60_000;
    const scheduleDescribedAt = new Map<string, number>();

    async function refreshGauges(): Promise<void> {
      await Promise.all([
        read('the hosts', () => gauges.hostsUp(), (rows) => {
          hostsUp.reset();
          for (const { hostId, up } of rows) hostsUp.set({ host: hostId }, up ? 1 : 0);
        }, () => hostsUp.reset()),
        read('the containers', () => gauges.containers(), (rows) => {
          containers.reset();
          for (const { state, hostId, n } of rows) containers.set({ state, host: hostId }, n);
        }, () => containers.reset()),
        ...SCHEDULE_IDS.map((schedule) =>
          read(`the schedule ${schedule}`, () => gauges.schedule(schedule), (s) => {
            scheduleDescribedAt.set(schedule, Date.now());
            if (s.lastRunAt) scheduleLastRun.set({ schedule }, s.lastRunAt.getTime() / 1000);
            else scheduleLastRun.remove({ schedule });
            scheduleMissed.set({ schedule }, s.missedRuns);
            schedulePaused.set({ schedule }, s.paused ? 1 : 0);
          }, () => {
            if (Date.now() - (scheduleDescribedAt.get(schedule) ?? 0) < SCHEDULE_KEPT_MS) return;
            scheduleGauges.forEach((gauge) => gauge.remove({ schedule }));
          }),
        ),
      ]);
    }

    app.addHook('onResponse', async (request, reply) => {
      const labels = {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status_code: String(reply.statusCode),
      };
      requests.inc(labels);
      duration.observe(labels, reply.elapsedTime / 1000);
    });

    app.get(
      '/metrics',
      {
        config: { public: true },
        schema: {
          operationId: 'getMetrics',
          tags: ['health'],
          summary: 'Prometheus metrics: requests per route, hosts, containers, schedules, pulls, money, limits, and the process',
          response: { 200: textResponse('text/plain', 'The Prometheus text exposition format (version 0.0.4)') },
        },
      },
      async (_request, reply) => {
        await refreshGauges();
        const [shared, own] = await Promise.all([metricsRegistry.metrics(), registry.metrics()]);
        reply.type(registry.contentType);
        return `${shared}\n${own}`;
      },
    );
  },
  { name: 'metrics' },
);
