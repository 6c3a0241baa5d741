/**
 * The API's spans (core/tracing.ts), by @fastify/otel: a server span per request, named by its
 * route (`POST /api/v1/images/pull`), continuing a caller's W3C `traceparent`, with child spans
 * for the hooks and the handler, under which the Temporal client's StartWorkflow span carries
 * the trace into the workflow. Registered first, so that its span encloses every other hook.
 * Health, metrics and docs are not traced.
 */
import { FastifyOtelInstrumentation } from '@fastify/otel';
import type { FastifyPluginCallback } from 'fastify';
import type { Tracing } from '../../core/tracing.js';

const UNTRACED = /^\/(healthz|readyz|metrics|docs)(\/|\?|$)/;

export function tracingPlugin(tracing: Tracing): FastifyPluginCallback {
  const instrumentation = new FastifyOtelInstrumentation({
    ignorePaths: ({ url }) => UNTRACED.test(url),
    requestHook: (span, request) => {
      span.updateName(`${request.method} ${request.routeOptions.url ?? 'unmatched'}`);
      // The path without its query string, which may hold a secret (a stats socket's ticket).
      span.setAttribute('url.path', request.url.split('?')[0]!);
      // The id the response's x-request-id and the log lines carry.
      span.setAttribute('berth.request_id', request.id);
    },
  });
  instrumentation.setTracerProvider(tracing.provider);
  return instrumentation.plugin();
}
