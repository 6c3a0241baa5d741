/**
 * Tracing's settings and its off state (core/config.ts, core/tracing.ts, workers/worker-tracing.ts):
 * without an OTLP endpoint nothing starts and nothing is installed; with one, spans leave over
 * OTLP/HTTP (protobuf, or JSON when asked), named by the process's service, redacted as log
 * lines are. Spans go to a receiver in this process (test/support/otlp-receiver.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import { ConfigError, loadApiConfig, loadControlWorkerConfig, loadHostWorkerConfig } from '../../core/config.js';
import { startTracing, tracingClientInterceptors } from '../../core/tracing.js';
import { withTracing } from '../../workers/worker-tracing.js';
import { startOtlpReceiver } from '../support/otlp-receiver.js';

const minimal = { BERTH_DATABASE_URL: 'postgres://berth:pw@127.0.0.1:5432/berth', BERTH_INTERNAL_TOKEN: 'internal-token-0123456789' };
const host = { ...minimal, BERTH_HOST_ID: 'host-a', BERTH_MINIO_ACCESS_KEY: 'k', BERTH_MINIO_SECRET_KEY: 's' };
const ENDPOINT = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector.example:4318' };

test('without an OTLP endpoint tracing is off in every process', () => {
  assert.equal(loadApiConfig(minimal).tracing, null);
  assert.equal(loadControlWorkerConfig(minimal).tracing, null);
  assert.equal(loadHostWorkerConfig(host).tracing, null);
  // A service name or a protocol alone turns nothing on.
  assert.equal(loadApiConfig({ ...minimal, OTEL_SERVICE_NAME: 'x', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }).tracing, null);
  // OTEL_SDK_DISABLED=true wins over an endpoint.
  assert.equal(loadApiConfig({ ...minimal, ...ENDPOINT, OTEL_SDK_DISABLED: 'true' }).tracing, null);
});

test('an endpoint turns it on: traces at <endpoint>/v1/traces, protobuf, each process its own service name', () => {
  assert.deepEqual(loadApiConfig({ ...minimal, ...ENDPOINT }).tracing, {
    url: 'http://collector.example:4318/v1/traces',
    protocol: 'http/protobuf',
    headers: {},
    serviceName: 'berth-api',
  });
  assert.equal(loadControlWorkerConfig({ ...minimal, ...ENDPOINT }).tracing?.serviceName, 'berth-worker-control');
  assert.equal(loadHostWorkerConfig({ ...host, ...ENDPOINT }).tracing?.serviceName, 'berth-worker-host-host-a');
  assert.equal(loadHostWorkerConfig({ ...host, ...ENDPOINT, OTEL_SERVICE_NAME: 'docker-1' }).tracing?.serviceName, 'docker-1');
  // A trailing slash, a path prefix: the signal's path is appended, as the OpenTelemetry spec says.
  assert.equal(loadApiConfig({ ...minimal, OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otel.example/prefix/' }).tracing?.url, 'https://otel.example/prefix/v1/traces');
  // The traces endpoint is used as it is, and wins.
  const traces = loadApiConfig({ ...minimal, ...ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example/in' }).tracing;
  assert.equal(traces?.url, 'https://traces.example/in');
  assert.equal(loadApiConfig({ ...minimal, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' }).tracing?.url, 'http://127.0.0.1:4318/v1/traces');
  assert.equal(loadApiConfig({ ...minimal, ...ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }).tracing?.protocol, 'http/json');
  assert.equal(
    loadApiConfig({ ...minimal, ...ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' }).tracing?.protocol,
    'http/json',
  );
  const headers = loadApiConfig({
    ...minimal,
    ...ENDPOINT,
    OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Bearer%20abc,x-team=a',
    OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-team=traces',
  }).tracing?.headers;
  assert.deepEqual(headers, { authorization: 'Bearer abc', 'x-team': 'traces' });
});

test('malformed tracing settings are refused, naming the variable and never echoing a header value', () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, /^OTEL_EXPORTER_OTLP_ENDPOINT: must use http: or https:/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' }, /^OTEL_EXPORTER_OTLP_ENDPOINT: must be a URL/],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'ftp://x/v1/traces' }, /^OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: must use http: or https:/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://user:secret-pw@otel.example' }, /^OTEL_EXPORTER_OTLP_ENDPOINT: must not carry credentials/],
    [{ ...ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, /^OTEL_EXPORTER_OTLP_PROTOCOL: must be one of http\/protobuf, http\/json/],
    [{ ...ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS: 'secret-value-without-key' }, /^OTEL_EXPORTER_OTLP_HEADERS: entry 1 is not key=value/],
    [{ ...ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'a=1,=secret-value' }, /^OTEL_EXPORTER_OTLP_TRACES_HEADERS: entry 2 is not key=value/],
    [{ ...ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS: 'api-key=%E0%A4%Asecret-value' }, /^OTEL_EXPORTER_OTLP_HEADERS: the value of api-key is not valid percent-encoding/],
    [{ ...ENDPOINT, OTEL_SDK_DISABLED: 'yes' }, /^OTEL_SDK_DISABLED: must be true or false/],
  ];
  for (const [env, message] of cases) {
    assert.throws(
      () => loadApiConfig({ ...minimal, ...env }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError, JSON.stringify(env));
        assert.match(error.message, message);
        assert.doesNotMatch(error.message, /secret/, 'no value of a header or credential in the message');
        return true;
      },
      JSON.stringify(env),
    );
  }
});

// Before anything below starts a provider: the OpenTelemetry globals are this process's.
test('without an endpoint nothing is started: no provider, no propagation, no interceptor, a sink that drops', () => {
  assert.equal(startTracing(loadApiConfig(minimal).tracing), null);
  // The OpenTelemetry API still answers, with its no-ops.
  const span = trace.getTracer('berth').startSpan('anything');
  assert.equal(span.isRecording(), false);
  assert.equal(trace.getSpanContext(trace.setSpan(context.active(), span))?.traceId, '00000000000000000000000000000000');
  assert.deepEqual(propagation.fields(), [], 'no propagator: nothing is injected into a request or a workflow header');
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  assert.deepEqual(carrier, {});
  // No client interceptor, no activity interceptor; the workflow span sink is there (the bundle
  // calls it whatever the settings) and drops what it gets.
  assert.deepEqual(tracingClientInterceptors(null), []);
  const own = () => ({});
  const options = withTracing({ interceptors: { activity: [own] } }, null);
  assert.deepEqual(options.interceptors?.activity, [own]);
  const sink = options.sinks?.exporter?.export as { fn: (info: unknown, spans: unknown[]) => void } | undefined;
  assert.equal(typeof sink?.fn, 'function');
  assert.equal(sink!.fn({}, [{ name: 'x' }]), undefined);
});

test('with an endpoint: spans over OTLP/HTTP JSON, with the service, the host and W3C propagation; messages and attributes redacted', async (t) => {
  const receiver = await startOtlpReceiver();
  t.after(() => receiver.close());
  const config = loadHostWorkerConfig({ ...host, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_HEADERS: 'x-token=abc' });
  const tracing = startTracing(config.tracing, { attributes: { 'berth.host_id': 'host-a' } });
  assert.ok(tracing);
  t.after(() => tracing.shutdown());
  assert.equal(withTracing({}, tracing).interceptors?.activity?.length, 1, 'the activity interceptor is installed');
  assert.equal(tracingClientInterceptors(tracing).length, 1, 'the client interceptor is installed');

  const parent = tracing.tracer.startSpan('parent');
  const carrier: Record<string, string> = {};
  propagation.inject(trace.setSpan(context.active(), parent), carrier);
  assert.match(carrier.traceparent ?? '', new RegExp(`^00-${parent.spanContext().traceId}-${parent.spanContext().spanId}-01$`), 'W3C trace context');
  const child = tracing.tracer.startSpan('child', { attributes: { 'url.full': 'http://api/x?ticket=t-0123456789abcdef&page=2' } }, trace.setSpan(context.active(), parent));
  const failure = new Error('Failed query: select * from users where password = $1\nparams: hunter2-secret');
  child.recordException(failure);
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'refused Bearer abc.def-secret' });
  child.end();
  parent.end();
  await tracing.flush();

  assert.equal(receiver.exports.length, 1);
  const [received] = receiver.exports;
  assert.match(received!.contentType, /^application\/json/);
  assert.equal(received!.headers['x-token'], 'abc', 'OTEL_EXPORTER_OTLP_HEADERS are sent');
  const spans = receiver.spans();
  assert.deepEqual(spans.map((s) => s.name).sort(), ['child', 'parent']);
  const byName = Object.fromEntries(spans.map((s) => [s.name, s]));
  assert.equal(byName.child!.parentSpanId, byName.parent!.spanId);
  assert.equal(byName.child!.traceId, byName.parent!.traceId);
  for (const span of spans) {
    assert.equal(span.service, 'berth-worker-host-host-a');
    assert.equal(span.resource['berth.host_id'], 'host-a');
  }
  const exported = received!.body.toString('utf8');
  assert.doesNotMatch(exported, /hunter2|abc\.def|t-0123456789abcdef/, 'no secret leaves in a span');
  assert.equal(byName.child!.status.message, 'refused Bearer [redacted]');
  assert.equal(byName.child!.attributes['url.full'], 'http://api/x?ticket=[redacted]&page=2');
  const exception = byName.child!.events.find((e) => e.name === 'exception');
  assert.equal(exception?.attributes['exception.message'], 'Failed query: select * from users where password = $1\nparams: [redacted]');
  assert.match(String(exception?.attributes['exception.stacktrace']), /params: \[redacted\]\n\s+at /);
});

test('the default protocol is OTLP/HTTP protobuf', async (t) => {
  const receiver = await startOtlpReceiver();
  t.after(() => receiver.close());
  const tracing = startTracing(loadApiConfig({ ...minimal, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.endpoint}/v1/traces` }).tracing);
  assert.ok(tracing);
  t.after(() => tracing.shutdown());
  tracing.tracer.startSpan('one').end();
  await tracing.flush();
  assert.equal(receiver.exports.length, 1);
  assert.equal(receiver.exports[0]!.contentType, 'application/x-protobuf');
  assert.ok(receiver.exports[0]!.body.includes(Buffer.from('berth-api')), 'the service name is in the message');
});
