/**
 * Traces (OpenTelemetry): a process's tracer provider, exporting its spans over OTLP/HTTP to the
 * endpoint core/config.ts read from the standard OTEL_* variables, and the Temporal client's
 * interceptor that carries a trace into the workflows it starts. Without an endpoint nothing
 * here starts (startTracing answers null) and nothing is installed: the OpenTelemetry API's
 * calls elsewhere are its no-ops.
 *
 * One trace per request that starts work: the API's Fastify span (api/plugins/tracing.ts), the
 * client's StartWorkflow span (headers of the start), the workflow's spans in the control worker
 * (workflows/tracing-interceptors.ts, exported through the worker's sink) and each activity's
 * span on whichever worker runs it (workers/worker-tracing.ts).
 */
import { DiagLogLevel, diag, type Attributes, type Context, type DiagLogger, type Tracer } from '@opentelemetry/api';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, type ReadableSpan, type Span, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry/lib/client/index.js';
import type { Logger } from 'pino';
import type { TracingConfig } from './config.js';
import { REDACTED, redactString } from './redact.js';

/** A started tracer provider and what the instrumentations need of it. */
export interface Tracing {
  serviceName: string;
  provider: NodeTracerProvider;
  /** Berth's tracer on this provider (the Temporal interceptors' spans). */
  tracer: Tracer;
  /** The resource (service.name, …) every span of this provider carries; the workflow spans' too. */
  resource: Resource;
  /** Where ended spans go: batched, then exported. The workflow sink hands its spans here. */
  spanProcessor: SpanProcessor;
  /** Exports what is buffered now. */
  flush(): Promise<void>;
  /** Exports what is buffered, then stops: at the end of the process. */
  shutdown(): Promise<void>;
}

/** The OpenTelemetry API's globals (context, propagation, the default provider) are the process's: set once. */
let globalsRegistered = false;

/**
 * Starts this process's tracing, or nothing (null) when the configuration has none. The first
 * provider started in a process becomes the global one, with async-local context and W3C trace
 * context propagation (what Fastify's instrumentation and the Temporal interceptors use); a test
 * that runs several of Berth's processes in one starts one provider each, and each names its
 * own service.
 */
export function startTracing(
  config: TracingConfig | null,
  opts: { logger?: Logger; attributes?: Record<string, string> } = {},
): Tracing | null {
  if (!config) return null;
  const resource = new Resource({ ...opts.attributes, [ATTR_SERVICE_NAME]: config.serviceName });
  const exporterOptions = { url: config.url, headers: { ...config.headers } };
  const exporter: SpanExporter = config.protocol === 'http/json' ? new OtlpJsonExporter(exporterOptions) : new OtlpProtobufExporter(exporterOptions);
  const spanProcessor = new RedactingSpanProcessor(new BatchSpanProcessor(exporter));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });
  if (!globalsRegistered) {
    globalsRegistered = true;
    provider.register();
    // The SDK's own troubles (an export the collector refused, an endpoint that does not
    // answer) go to the process's log, which redacts secrets; they are silent otherwise.
    if (opts.logger) diag.setLogger(diagLogger(opts.logger), DiagLogLevel.WARN);
  }
  return {
    serviceName: config.serviceName,
    provider,
    tracer: provider.getTracer('berth'),
    resource,
    spanProcessor,
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

/**
 * What leaves in a span is held to the rule of log lines (core/redact.ts): error messages and
 * stacks (a failed query's parameters, which drizzle puts in its message), attributes and
 * events pass through the same redaction before they are exported. Every span of a provider
 * goes through it, the workflow spans the sink hands over included.
 */
class RedactingSpanProcessor implements SpanProcessor {
  constructor(private readonly inner: SpanProcessor) {}

  onStart(span: Span, parentContext: Context): void {
    this.inner.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    this.inner.onEnd(redactedSpan(span));
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

/** drizzle's "Failed query: <sql>\nparams: <values>": the values go (up to a stack's frames, if any). */
const QUERY_PARAMS = /(\nparams: )[\s\S]*?(?=\n\s+at |$)/;

export function redactSpanText(text: string): string {
  return redactString(text.replace(QUERY_PARAMS, `$1${REDACTED}`));
}

function redactedAttributes(attributes: Attributes): Attributes {
  return Object.fromEntries(Object.entries(attributes).map(([key, value]) => [key, typeof value === 'string' ? redactSpanText(value) : value]));
}

/** The span as it was, with its status message, attributes and events redacted (the rest read through). */
function redactedSpan(span: ReadableSpan): ReadableSpan {
  const { status } = span;
  return Object.create(span, {
    status: { value: status.message === undefined ? status : { ...status, message: redactSpanText(status.message) } },
    attributes: { value: redactedAttributes(span.attributes) },
    events: { value: span.events.map((event) => (event.attributes ? { ...event, attributes: redactedAttributes(event.attributes) } : event)) },
  }) as ReadableSpan;
}

function diagLogger(logger: Logger): DiagLogger {
  const child = logger.child({ component: 'opentelemetry' });
  const line = (level: 'error' | 'warn' | 'info' | 'debug') => (message: string, ...args: unknown[]) =>
    child[level]({ details: args.map((arg) => (arg instanceof Error ? arg.message : arg)) }, message);
  return { error: line('error'), warn: line('warn'), info: line('info'), debug: line('debug'), verbose: line('debug') };
}

/**
 * The Temporal client's interceptors for tracing: a StartWorkflow (SignalWorkflow, …) span whose
 * context travels in the workflow's headers; none without tracing.
 */
export function tracingClientInterceptors(tracing: Tracing | null | undefined): WorkflowClientInterceptor[] {
  return tracing ? [new OpenTelemetryWorkflowClientInterceptor({ tracer: tracing.tracer })] : [];
}
