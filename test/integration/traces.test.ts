/**
 * One request, one trace: a pull through the API gives a single trace (OTLP/HTTP, to a receiver
 * in this process) from the route's server span through the client's StartWorkflow span, the
 * workflow on a control worker and its activities on that worker and on the host's.
 *
 * The stack's own processes run without an endpoint, so this file runs its own pieces, each with
 * the endpoint set and a tracer provider of its own (so each names its own service), wired as the
 * processes wire them (core/tracing.ts, api/plugins/tracing.ts, workers/worker-tracing.ts,
 * workers/workflow-code.ts): the API in this process (buildApp with tracing); a control worker on
 * a control queue of its own (the API's client sends the workflows it starts for berth-control
 * there); a host of its own (registered as down, so the stack's API never places work on it, while
 * this API's stale time sees it up) with its worker on host-a's Docker daemon.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { Client, Connection, type WorkflowClientInterceptor } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { loadApiConfig, loadControlWorkerConfig, loadHostWorkerConfig, type TracingConfig } from '../../core/config.js';
import { connectTemporal, temporalConnectionOptions } from '../../core/temporal.js';
import { startTracing, tracingClientInterceptors, type Tracing } from '../../core/tracing.js';
import { CONTROL_TASK_QUEUE } from '../../core/temporal-names.js';
import { connectDatabase } from '../../db/client.js';
import { images } from '../../db/schema.js';
import { buildApp } from '../../api/app.js';
import { createControlActivities } from '../../activities/control-activities.js';
import { berthWorkerOptions } from '../../workers/run-worker.js';
import { WORKFLOWS_PATH } from '../../workers/workflow-code.js';
import { baseConfig, createUser } from '../support/app.js';
import { hostConfig, minio, startOwnHost } from '../support/dcu.js';
import { inspectOn, pullRequest, pushUniqueImage } from '../support/images.js';
import { dockerFor } from '../support/stack.js';
import { startOtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver.js';
import { eventually } from '../support/wait.js';

// The workers made here log only errors, and leave signals to the test runner.
Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });

/** OTLP's SpanKind of a server span. */
const SERVER = 2;

test('a pull through the API is one trace: the route, the workflow, its activities on the control and host workers', { timeout: 300_000 }, async (t) => {
  // What to undo, last first, in one place (the host's rows go after its images').
  const cleanups: Array<() => Promise<unknown>> = [];
  t.after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });
  const receiver = await startOtlpReceiver();
  cleanups.push(() => receiver.close());

  // The processes' own settings with the endpoint (JSON, which the receiver reads): each its service.
  const otel = {
    ...process.env,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_SERVICE_NAME: '',
    OTEL_SDK_DISABLED: '',
  };
  const providers: Tracing[] = [];
  const start = (config: TracingConfig | null, attributes?: Record<string, string>) => {
    const tracing = startTracing(config, attributes ? { attributes } : {});
    assert.ok(tracing, 'tracing starts with the endpoint set');
    providers.push(tracing);
    return tracing;
  };
  cleanups.push(() => Promise.all(providers.map((tracing) => tracing.shutdown())));
  const apiTracing = start(loadApiConfig(otel).tracing);
  const controlTracing = start(loadControlWorkerConfig(otel).tracing);

  const database = connectDatabase(baseConfig.database.url, { max: 4 });
  cleanups.push(() => database.close());

  // The host: an id of its own, its worker on host-a's daemon, tracing as a host worker's does.
  const host = await startOwnHost(
    'traces',
    'traces',
    { registryCredentials: {}, pullStallTimeoutMs: hostConfig.pullStallTimeoutMs, minio, dcu: hostConfig.dcu },
    { tracing: (hostId) => start(loadHostWorkerConfig({ ...otel, BERTH_HOST_ID: hostId }).tracing, { 'berth.host_id': hostId }) },
  );
  cleanups.push(async () => {
    await database.db.delete(images).where(eq(images.hostId, host.hostId));
    await host.stop();
  });

  // The control worker: every workflow, bundled with the interceptor modules every worker has,
  // on a queue of its own, its client and activities traced as workers/control.ts's.
  const controlQueue = `berth-control-traces-${randomUUID().slice(0, 8)}`;
  const controlClient = await connectTemporal(baseConfig.temporal, { tracing: controlTracing });
  cleanups.push(() => controlClient.connection.close());
  const workerConnection = await NativeConnection.connect(temporalConnectionOptions(baseConfig.temporal));
  cleanups.push(() => workerConnection.close());
  const worker = await Worker.create(
    berthWorkerOptions(
      {
        connection: workerConnection,
        namespace: baseConfig.temporal.namespace,
        taskQueue: controlQueue,
        workflowsPath: WORKFLOWS_PATH,
        activities: createControlActivities({ db: database.db, pricePerMb: baseConfig.pulls.pricePerMb, temporal: controlClient }),
      },
      controlTracing,
    ),
  );
  const running = worker.run();
  cleanups.push(async () => {
    worker.shutdown();
    await running;
  });

  // The API: its client traced as connectTemporal makes it, sending berth-control's workflows to
  // this file's control worker; its stale time long enough to see the host of its own up.
  const toOwnControlQueue: WorkflowClientInterceptor = {
    startWithDetails: (input, next) =>
      next({ ...input, options: { ...input.options, taskQueue: input.options.taskQueue === CONTROL_TASK_QUEUE ? controlQueue : input.options.taskQueue } }),
  };
  const apiConnection = await Connection.connect(temporalConnectionOptions(baseConfig.temporal));
  cleanups.push(() => apiConnection.close());
  const apiClient = new Client({
    connection: apiConnection,
    namespace: baseConfig.temporal.namespace,
    interceptors: { workflow: [toOwnControlQueue, ...tracingClientInterceptors(apiTracing)] },
  });
  const app = await buildApp({
    config: {
      ...baseConfig,
      login: { ...baseConfig.login, maxFailuresPerAddress: 1_000_000 },
      hosts: { ...baseConfig.hosts, staleAfterMs: 24 * 3_600_000 },
    },
    db: database.db,
    temporal: apiClient,
    tracing: apiTracing,
  });
  cleanups.push(() => app.close());
  assert.ok(app.hasPlugin('@fastify/otel'), 'the API is instrumented');

  const user = await createUser(app, { balance: 1000 });
  const reference = await pushUniqueImage('traces');
  cleanups.push(() => dockerFor('host-a').getImage(reference).remove({ force: true }).catch(() => undefined));

  const res = await pullRequest(app, user.token, { image: reference, host: host.hostId });
  assert.equal(res.statusCode, 201, res.body);
  assert.ok(await inspectOn('host-a', reference), 'pulled by the host of its own, onto host-a’s daemon');
  const requestId = String(res.headers['x-request-id']);

  // The workflow's spans leave through the sink as its tasks complete: export until all are in
  // (this file's workers run nothing else), in whichever trace they are.
  const wanted = ['RunWorkflow:pullImage', 'RunActivity:findOwnedImage', 'RunActivity:ensureImage', 'RunActivity:chargeAndRecordImage'];
  const server = await eventually(
    'the pull’s spans',
    async () => {
      await Promise.all(providers.map((tracing) => tracing.flush()));
      const all = receiver.spans();
      return wanted.every((name) => all.some((s) => s.name === name)) && all.find((s) => s.attributes['berth.request_id'] === requestId);
    },
    60,
  );
  const spans = receiver.spans().filter((s) => s.traceId === server.traceId);
  const named = (name: string) => {
    const found = spans.filter((s) => s.name === name);
    assert.equal(found.length, 1, `one ${name} span: ${spans.map((s) => s.name).join(', ')}`);
    return found[0]!;
  };

  // The route's server span is the trace's root.
  assert.equal(server.kind, SERVER);
  assert.equal(server.name, 'POST /api/v1/images/pull');
  assert.equal(server.service, 'berth-api');
  assert.equal(server.attributes['http.route'], '/api/v1/images/pull');
  assert.equal(server.attributes['http.response.status_code'], 201);
  assert.equal(server.parentSpanId, '');

  const hostService = `berth-worker-host-${host.hostId}`;
  const starting = named('StartWorkflow:pullImage');
  assert.equal(starting.service, 'berth-api');
  const workflowId = String(starting.attributes.temporalWorkflowId);
  assert.match(workflowId, /^pull-/);

  // All of the pull's spans are in this trace: whatever names the workflow, and every span of the
  // workers that did its work.
  const ofPull = receiver
    .spans()
    .filter((s) => s.attributes.temporalWorkflowId === workflowId || s.service === hostService || s.service === 'berth-worker-control');
  assert.ok(ofPull.length >= wanted.length + 1);
  assert.deepEqual(
    [...new Set(ofPull.map((s) => s.traceId))],
    [server.traceId],
    `one trace id: ${ofPull.map((s) => `${s.name} ${s.traceId}`).join(', ')}`,
  );

  // Each span where its process made it.
  assert.equal(named('RunWorkflow:pullImage').service, 'berth-worker-control');
  for (const name of ['RunActivity:findOwnedImage', 'RunActivity:chargeAndRecordImage']) assert.equal(named(name).service, 'berth-worker-control', name);
  // The host's one step: inspect, the Docker pull, inspect (the database steps are local activities on the control worker).
  const onHost = spans.filter((s) => s.service === hostService && s.name.startsWith('RunActivity:'));
  assert.deepEqual(onHost.map((s) => s.name), ['RunActivity:ensureImage']);
  for (const span of onHost) {
    assert.equal(span.service, hostService, span.name);
    assert.equal(span.resource['berth.host_id'], host.hostId);
    assert.equal(span.attributes.temporalWorkflowId, workflowId);
  }

  // One tree: unique ids, one root, every other span's parent in the trace.
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  assert.equal(byId.size, spans.length, 'span ids are unique');
  assert.deepEqual(spans.filter((s) => !byId.has(s.parentSpanId)), [server], 'the server span is the only root');
  const chain = (span: ReceivedSpan) => {
    const names: string[] = [];
    for (let at: ReceivedSpan | undefined = span; at; at = byId.get(at.parentSpanId)) names.push(at.name);
    return names;
  };
  // From the Docker pull on the host up to the route: through the workflow and the client's start.
  const fromPull = chain(named('RunActivity:ensureImage'));
  const expectedOrder = ['RunActivity:ensureImage', 'StartActivity:ensureImage', 'RunWorkflow:pullImage', 'StartWorkflow:pullImage', 'POST /api/v1/images/pull'];
  assert.deepEqual(
    fromPull.filter((name) => expectedOrder.includes(name)),
    expectedOrder,
    `the chain from the Docker pull to the route: ${fromPull.join(' <- ')}`,
  );
  for (const span of spans.filter((s) => s.service !== 'berth-api')) {
    assert.equal(chain(span).at(-1), server.name, `${span.name} (${span.service}) hangs from the route's span`);
  }

  // A caller's W3C trace context is continued: the route's span is its caller's child.
  const callerTrace = randomUUID().replace(/-/g, '');
  const callerSpan = randomUUID().replace(/-/g, '').slice(0, 16);
  const me = await app.inject({
    method: 'GET',
    url: '/api/v1/users/me',
    headers: { authorization: `Bearer ${user.token}`, traceparent: `00-${callerTrace}-${callerSpan}-01` },
  });
  assert.equal(me.statusCode, 200, me.body);
  const continued = await eventually('the span of a request with a traceparent', async () => {
    await apiTracing.flush();
    return receiver.spans().find((s) => s.attributes['berth.request_id'] === me.headers['x-request-id']);
  });
  assert.deepEqual([continued.name, continued.traceId, continued.parentSpanId], ['GET /api/v1/users/me', callerTrace, callerSpan]);
});
