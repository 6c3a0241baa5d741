import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eq } from 'drizzle-orm';
import { connectTemporal } from '../../core/temporal.js';
import { hosts } from '../../db/schema.js';
import { createHostDbActivities } from '../../activities/hosts-db.js';
import { adminToken, baseConfig, bearer, buildTestApp, createUser, testDb, uniqueName } from '../support/app.js';
import { HOST_IDS, dockerFor } from '../support/stack.js';
import { pingHostId } from '../../contracts/ping-host.js';

test('both host workers registered their daemons and are up', async (t) => {
  const app = await buildTestApp(t);
  const res = await app.inject({ method: 'GET', url: '/api/v1/hosts', headers: bearer(await adminToken(app)) });
  assert.equal(res.statusCode, 200);
  const listed = new Map(res.json().items.map((h: { id: string }) => [h.id, h]));
  for (const id of HOST_IDS) {
    const host = listed.get(id) as { status: string; engineId: string; engineVersion: string; taskQueue: string; lastHeartbeatAt: string; containers: number };
    assert.ok(host, `${id} is listed`);
    assert.equal(host.status, 'up');
    assert.ok(Number.isInteger(host.containers) && host.containers >= 0, `${id}: its containers are counted`);
    assert.equal(host.engineVersion, (await dockerFor(id).version()).Version);
    assert.equal(host.taskQueue, `berth-host-${id}`);
    const info = await dockerFor(id).info();
    assert.equal(host.engineId, info.ID, `${id} is registered with its own daemon's engine ID`);
  }
  const user = await createUser(app);
  const denied = await app.inject({ method: 'GET', url: '/api/v1/hosts', headers: bearer(user.token) });
  assert.equal(denied.statusCode, 403);
});

test("ping runs a workflow whose activity runs on each host's own queue", async (t) => {
  const app = await buildTestApp(t);
  const token = await adminToken(app);
  const temporal = await connectTemporal(baseConfig.temporal);
  t.after(() => temporal.connection.close());
  const engineIds = new Set<string>();
  for (const id of HOST_IDS) {
    const res = await app.inject({ method: 'POST', url: `/api/v1/hosts/${id}/ping`, headers: bearer(token) });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.hostId, id);
    assert.equal(body.engineId, (await dockerFor(id).info()).ID);
    assert.equal(body.apiVersion, '1.41');
    engineIds.add(body.engineId);

    // The workflow's history in Temporal shows the activity went to the host's queue.
    const handle = temporal.workflow.getHandle(body.workflowId);
    assert.equal((await handle.describe()).status.name, 'COMPLETED');
    const history = await handle.fetchHistory();
    const scheduled = history.events?.find((e) => e.activityTaskScheduledEventAttributes);
    assert.equal(scheduled?.activityTaskScheduledEventAttributes?.taskQueue?.name, `berth-host-${id}`);
  }
  assert.equal(engineIds.size, 2, 'the two hosts answer with different engine IDs');
});

test('ping: unknown host 404, down host 422, bad id 400, non-admin 403', async (t) => {
  const app = await buildTestApp(t);
  const token = await adminToken(app);
  // A ping starts a workflow: it is a POST, and a GET (which must have no side effect) starts nothing.
  const requestId = uniqueName('get-ping');
  const get = await app.inject({ method: 'GET', url: '/api/v1/hosts/host-a/ping', headers: { ...bearer(token), 'x-request-id': requestId } });
  assert.equal(get.statusCode, 404, get.body);
  const temporal = await connectTemporal(baseConfig.temporal);
  t.after(() => temporal.connection.close());
  await assert.rejects(temporal.workflow.getHandle(pingHostId('host-a', requestId)).describe(), /not found/i, 'no workflow started by the GET');
  const missing = await app.inject({ method: 'POST', url: '/api/v1/hosts/no-such-host/ping', headers: bearer(token) });
  assert.equal(missing.statusCode, 404);
  const badId = await app.inject({ method: 'POST', url: '/api/v1/hosts/Bad_Id/ping', headers: bearer(token) });
  assert.equal(badId.statusCode, 400);

  const downId = uniqueName('down');
  await testDb().db.insert(hosts).values({
    id: downId,
    dockerEndpoint: 'unix:///nonexistent.sock',
    engineId: 'X',
    engineVersion: '0',
    lastHeartbeatAt: new Date(Date.now() - 3_600_000),
  });
  t.after(() => testDb().db.delete(hosts).where(eq(hosts.id, downId)));
  const down = await app.inject({ method: 'POST', url: `/api/v1/hosts/${downId}/ping`, headers: bearer(token) });
  assert.equal(down.statusCode, 422);
  assert.match(down.json().detail, /is down/);
  const list = await app.inject({ method: 'GET', url: '/api/v1/hosts', headers: bearer(token) });
  const listedDown = list.json().items.find((h: { id: string }) => h.id === downId);
  assert.deepEqual([listedDown.status, listedDown.containers], ['down', 0]);

  const user = await createUser(app);
  const denied = await app.inject({ method: 'POST', url: '/api/v1/hosts/host-a/ping', headers: bearer(user.token) });
  assert.equal(denied.statusCode, 403);
});

test('ping: a host that looks up but whose worker takes no task is a 504 within the ping’s bound', { timeout: 90_000 }, async (t) => {
  // Its last heartbeat is an hour old: down for every other app on the stack (which would else pick
  // it for their pulls and containers), up for this one only.
  const app = await buildTestApp(t, { hosts: { ...baseConfig.hosts, staleAfterMs: 2 * 3_600_000 } });
  const token = await adminToken(app);
  const ghostId = uniqueName('ghost');
  await testDb().db.insert(hosts).values({
    id: ghostId,
    dockerEndpoint: 'unix:///nonexistent.sock',
    engineId: 'X',
    engineVersion: '0',
    lastHeartbeatAt: new Date(Date.now() - 3_600_000),
  });
  t.after(() => testDb().db.delete(hosts).where(eq(hosts.id, ghostId)));
  const started = Date.now();
  const res = await app.inject({ method: 'POST', url: `/api/v1/hosts/${ghostId}/ping`, headers: bearer(token) });
  assert.equal(res.statusCode, 504, res.body);
  assert.match(res.json().detail, new RegExp(`^Host "${ghostId}" did not answer: `));
  assert.ok(Date.now() - started < 40_000, 'bounded by the ping’s timeouts, not by BERTH_WAIT_TIMEOUT');
});

test('listHostIds (and its old name dcuListHosts): every registered host, the most recently alive first', async (t) => {
  const staleId = uniqueName('stale');
  await testDb().db.insert(hosts).values({
    id: staleId,
    dockerEndpoint: 'unix:///nonexistent.sock',
    engineId: 'X',
    engineVersion: '0',
    lastHeartbeatAt: new Date(Date.now() - 86_400_000),
  });
  t.after(() => testDb().db.delete(hosts).where(eq(hosts.id, staleId)));
  const activities = createHostDbActivities({ db: testDb().db });
  const ids = await activities.listHostIds();
  for (const id of HOST_IDS) assert.ok(ids.indexOf(id) >= 0 && ids.indexOf(id) < ids.indexOf(staleId), `${id} before the stale host`);
  assert.deepEqual(await activities.dcuListHosts(), ids);
});
