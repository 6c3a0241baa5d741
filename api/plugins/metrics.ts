/** Prometheus metrics at /metrics: per-route request counts, error counts and latency. */
import fp from 'fastify-plugin';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { textResponse } from '../schemas.js';

export default fp(
  async (app) => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry, prefix: 'berth_api_' });
    const labelNames = ['method', 'route', 'status_code'] as const;
    const requests = new Counter({ name: 'berth_http_requests_total', help: 'HTTP requests', labelNames, registers: [registry] });
    const errors = new Counter({
      name: 'berth_http_request_errors_total',
      help: 'HTTP requests answered with a 4xx or 5xx status',
      labelNames,
      registers: [registry],
    });
    const duration = new Histogram({
      name: 'berth_http_request_duration_seconds',
      help: 'HTTP request latency',
      labelNames,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });

    app.addHook('onResponse', async (request, reply) => {
      const labels = {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status_code: String(reply.statusCode),
      };
      requests.inc(labels);
      if (reply.statusCode >= 400) errors.inc(labels);
      duration.observe(labels, reply.elapsedTime / 1000);
    });

    app.get(
      '/metrics',
      {
        config: { public: true },
        schema: {
          operationId: 'getMetrics',
          tags: ['health'],
          summary: 'Prometheus metrics: requests, errors and latency per route, and the process',
          response: { 200: textResponse('text/plain', 'The Prometheus text exposition format (version 0.0.4)') },
        },
      },
      async (_request, reply) => {
        reply.type(registry.contentType);
        return registry.metrics();
      },
    );
  },
  { name: 'metrics' },
);
