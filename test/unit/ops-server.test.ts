/** workers/ops-server.ts: /healthz while the process runs, /readyz from its checks, nothing else. */
import { test } from 'node:test';
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
