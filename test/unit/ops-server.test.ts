/** workers/ops-server.ts: /healthz while the process runs, /readyz from its checks, /metrics when given a registry, nothing else. */
import { test } from 'node:test';
import { createServer } from 'node:http';
import { Counter, Registry } from 'prom-client';
import assert from 'node:assert/strict';
import { freePort } from '../support/ports.js';
import pino from 'pino';
import { startOpsServer, type ReadinessCheck } from '../../workers/ops-server.js';

const logger = pino({ level: 'silent' });


test('port 0: no server', async () => {
  assert.equal(await startOpsServer({ config: { host: '127.0.0.1', port: 0 }, checks: new Map(), logger }), null);
});

test('/healthz answers; /readyz is 200 when every check passes, else 503 naming what is down', async (t) => {
  let temporalUp = false;
  const checks = new Map<string, ReadinessCheck>([
    ['worker', () => undefined],
    ['temporal', async () => {
      if (!temporalUp) throw new Error('connection refused');
    }],
  ]);
  const port = await freePort();
  const server = await startOpsServer({ config: { host: '127.0.0.1', port }, checks, logger });
  assert.ok(server);
  t.after(() => server.close());
  assert.equal(server.url, `http://127.0.0.1:${port}`);

  const health = await fetch(`${server.url}/healthz`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: 'ok' });

  const down = await fetch(`${server.url}/readyz`);
  assert.equal(down.status, 503);
  assert.deepEqual(await down.json(), {
    status: 'not ready',
    checks: { worker: { status: 'ok' }, temporal: { status: 'down', error: 'connection refused' } },
  });

  temporalUp = true;
  // A check added once what it looks at exists.
  checks.set('docker', async () => undefined);
  const up = await fetch(`${server.url}/readyz`);
  assert.equal(up.status, 200);
  assert.deepEqual(await up.json(), { status: 'ready', checks: { worker: { status: 'ok' }, temporal: { status: 'ok' }, docker: { status: 'ok' } } });

  assert.equal((await fetch(`${server.url}/metrics`)).status, 404);
  assert.equal((await fetch(`${server.url}/healthz`, { method: 'POST' })).status, 405);
});

test('a check that hangs is down after its timeout, and the answer still comes', async (t) => {
  const port = await freePort();
  const checks = new Map<string, ReadinessCheck>([['temporal', () => new Promise<void>(() => undefined)]]);
  const server = (await startOpsServer({ config: { host: '127.0.0.1', port }, checks, logger }))!;
  t.after(() => server.close());
  const started = Date.now();
  const res = await fetch(`${server.url}/readyz`);
  assert.equal(res.status, 503);
  assert.match(JSON.stringify(await res.json()), /no answer within 3000 ms/);
  assert.ok(Date.now() - started < 6000);
});

test('an address in use: the start fails (an orchestrator sees the worker exit, not a worker without health)', async (t) => {
  const port = await freePort();
  const first = (await startOpsServer({ config: { host: '127.0.0.1', port }, checks: new Map(), logger }))!;
  t.after(() => first.close());
  await assert.rejects(startOpsServer({ config: { host: '127.0.0.1', port }, checks: new Map(), logger }), /EADDRINUSE/);
});

test('/metrics: the process registry, then the Temporal SDK exporter\'s page; without that page, the registry\'s alone', async (t) => {
  const registry = new Registry();
  new Counter({ name: 'berth_test_events_total', help: 'test', registers: [registry] }).inc(3);
  // A stand-in for Core's Prometheus exporter on its loopback port.
  const sdk = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end('# TYPE temporal_num_pollers gauge\ntemporal_num_pollers{poller_type="activity_task"} 5\n');
  });
  const sdkPort = await freePort();
  await new Promise<void>((resolve) => sdk.listen(sdkPort, '127.0.0.1', resolve));
  t.after(() => sdk.close());
  const server = (await startOpsServer({
    config: { host: '127.0.0.1', port: await freePort() },
    checks: new Map(),
    logger,
    metrics: { registry, sdkMetricsUrl: `http://127.0.0.1:${sdkPort}/metrics` },
  }))!;
  t.after(() => server.close());

  const res = await fetch(`${server.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const page = await res.text();
  assert.match(page, /^berth_test_events_total 3$/m);
  assert.match(page, /^temporal_num_pollers\{poller_type="activity_task"\} 5$/m);
  assert.ok(page.indexOf('berth_test_events_total') < page.indexOf('temporal_num_pollers'));

  sdk.close();
  sdk.closeAllConnections();
  const alone = await fetch(`${server.url}/metrics`);
  assert.equal(alone.status, 200);
  const text = await alone.text();
  assert.match(text, /^berth_test_events_total 3$/m);
  assert.doesNotMatch(text, /temporal_num_pollers/);
  assert.match(text, /^# The Temporal SDK's metrics exporter did not answer\.$/m);
});
