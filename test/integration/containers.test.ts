import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { and, eq, like } from 'drizzle-orm';
import { containers, hosts, ledgerEntries, users } from '../../db/schema.js';
import { connectTemporal } from '../../core/temporal.js';
import { LABEL_ID, dockerName } from '../../core/container-labels.js';
import { adminToken, baseConfig, bearer, buildTestApp, createUser, testDb, type TestUser } from '../support/app.js';
import { dockerFor } from '../support/stack.js';
import { pushUniqueImage } from '../support/images.js';
import { containerPricePerPeriod } from '../../billing/prices.js';
import { closedStatus } from '../support/history.js';
import { eventually, sleep } from '../support/wait.js';
import { buildApp, type App } from '../../api/app.js';
import { ApplicationFailure } from '@temporalio/common';
import { connectDatabase } from '../../db/client.js';
import { createContainerDbActivities } from '../../activities/containers-db.js';
import { FailureType } from '../../core/failures.js';
import { containerWorkflowId, describeQuery, type ContainerInput } from '../../contracts/container.js';

const temporal = await connectTemporal(baseConfig.temporal);
test.after(() => temporal.connection.close());
const TEMPORAL_CLI = join(process.env.BERTH_TOOLS_DIR ?? join(homedir(), '.cache', 'berth'), 'bin', 'temporal');

/** The same price whatever the resources. */
const flatPrice = (base: number) => ({ base, perCpu: 0, perGbMemory: 0 });
const containersConfig = (overrides: Partial<typeof baseConfig.containers> = {}) => ({ ...baseConfig.containers, ...overrides });
const balanceOf = async (id: string) => (await testDb().db.select().from(users).where(eq(users.id, id)))[0]!.balance;
const rowOf = async (id: string) => (await testDb().db.select().from(containers).where(eq(containers.id, id)))[0]!;

async function pullHttpd(app: App, user: TestUser, host = 'host-a') {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/images/pull?wait=true',
    headers: bearer(user.token),
    payload: { image: '127.0.0.1:5000/library/httpd:latest', host },
  });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<{ id: string; charged: number }>();
}

async function run(app: App, user: TestUser, body: Record<string, unknown>) {
  const res = await app.inject({ method: 'POST', url: '/api/v1/containers?wait=true', headers: bearer(user.token), payload: body });
  assert.equal(res.statusCode, 201, res.body);
  return res.json();
}

const op = (app: App, user: TestUser, id: string, operation: string) =>
  app.inject({ method: 'POST', url: `/api/v1/containers/${id}/${operation}`, headers: bearer(user.token) });

test('run: the container runs on the image’s host with its port, limits and labels; remove frees it all', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 10_000 });
  const image = await pullHttpd(app, user, 'host-b');
  const c = await run(app, user, { imageId: image.id, name: 'web', memoryMb: 64, cpus: 0.5, env: { GREETING: 'hi' } });
  assert.equal(c.state, 'running');
  assert.equal(c.host, 'host-b');
  assert.equal(c.containerPort, 80, 'the image’s first exposed port');
  assert.ok(c.hostPort >= baseConfig.containers.portRange.from && c.hostPort <= baseConfig.containers.portRange.to);

  const info = await dockerFor('host-b').getContainer(dockerName(c.id)).inspect();
  assert.equal(info.State.Running, true);
  assert.equal(info.HostConfig.Memory, 64 * 1024 * 1024);
  assert.equal(info.HostConfig.NanoCpus, 500_000_000);
  assert.equal(info.Config.Labels[LABEL_ID], c.id);
  assert.ok(info.Config.Env.includes('GREETING=hi'));
  assert.equal(c.hostIp, (await testDb().db.select().from(hosts).where(eq(hosts.id, 'host-b')))[0]!.publishIp);
  const page = await fetch(`http://${c.hostIp}:${c.hostPort}/`);
  assert.match(await page.text(), /Berth httpd/);
  assert.equal((await rowOf(c.id)).state, 'running');
  // Priced by what it asked for (0.5 CPU, 64 MB), fixed on the record.
  const price = containerPricePerPeriod({ cpuMillis: 500, memoryMb: 64 }, baseConfig.containers.prices);
  assert.equal(c.pricePerPeriod, price);
  assert.equal((await rowOf(c.id)).pricePerPeriod, price);
  assert.equal(c.charged, price, 'the first period is charged');

  // Someone else's container is a 404 on every route, and nothing happens to it.
  const other = await createUser(app);
  for (const [method, url] of [
    ['GET', `/api/v1/containers/${c.id}`],
    ['POST', `/api/v1/containers/${c.id}/start`],
    ['POST', `/api/v1/containers/${c.id}/stop`],
    ['POST', `/api/v1/containers/${c.id}/restart`],
    ['DELETE', `/api/v1/containers/${c.id}`],
    ['GET', `/api/v1/containers/${c.id}/logs`],
    ['GET', `/api/v1/containers/${c.id}/logs/download`],
  ] as const) {
    const res = await app.inject({ method, url, headers: bearer(other.token) });
    assert.equal(res.statusCode, 404, `${method} ${url}: ${res.body}`);
  }
  const listed = await app.inject({ method: 'GET', url: '/api/v1/containers', headers: bearer(other.token) });
  assert.deepEqual(listed.json().items, [], 'not in their list either');
  assert.equal((await dockerFor('host-b').getContainer(dockerName(c.id)).inspect()).State.Running, true, 'still running');
  assert.equal((await rowOf(c.id)).state, 'running');

  // The image cannot be removed while a container uses it: 409, nothing refunded or removed.
  const balance = await balanceOf(user.id);
  const inUse = await app.inject({ method: 'DELETE', url: `/api/v1/images/${image.id}`, headers: bearer(user.token) });
  assert.equal(inUse.statusCode, 409, inUse.body);
  assert.match(inUse.json().detail, /container/i);
  assert.equal((await app.inject({ method: 'GET', url: `/api/v1/images/${image.id}`, headers: bearer(user.token) })).statusCode, 200, 'still recorded');
  assert.equal(await balanceOf(user.id), balance, 'nothing refunded');
  await dockerFor('host-b').getImage('127.0.0.1:5000/library/httpd:latest').inspect();

  const removed = await app.inject({ method: 'DELETE', url: `/api/v1/containers/${c.id}`, headers: bearer(user.token) });
  assert.equal(removed.statusCode, 200, removed.body);
  assert.equal(removed.json().state, 'removed');
  await assert.rejects(dockerFor('host-b').getContainer(dockerName(c.id)).inspect(), /no such container/i);
  const row = await rowOf(c.id);
  assert.ok(row.removedAt, 'port freed: the row is no longer live');
  assert.equal(await closedStatus(temporal, `container-${c.id}`), 'COMPLETED');

  // The port is free again: a new container on that host can take it.
  const again = await run(app, user, { imageId: image.id, name: 'web' });
  assert.equal(again.name, 'web', 'the name is free again too');
  await app.inject({ method: 'DELETE', url: `/api/v1/containers/${again.id}`, headers: bearer(user.token) });
});

test('operations are Temporal updates: idempotent, answered with the new state, also from the CLI', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 10_000 });
  const image = await pullHttpd(app, user);
  const c = await run(app, user, { imageId: image.id });
  const docker = dockerFor('host-a').getContainer(dockerName(c.id));

  const stopped = await op(app, user, c.id, 'stop');
  assert.equal(stopped.statusCode, 200);
  assert.equal(stopped.json().state, 'stopped');
  assert.equal((await docker.inspect()).State.Running, false);
  await assert.rejects(fetch(`http://${c.hostIp}:${c.hostPort}/`), 'a stopped container’s port refuses connections');
  assert.equal((await op(app, user, c.id, 'stop')).json().state, 'stopped', 'stopping a stopped container succeeds');

  const { stdout } = await promisify(execFile)(TEMPORAL_CLI, [
    'workflow', 'update', 'execute', '--address', baseConfig.temporal.address,
    '--workflow-id', `container-${c.id}`, '--name', 'start', '--output', 'json',
  ]);
  assert.match(stdout, /"status":\s*"running"/);
  assert.equal((await docker.inspect()).State.Running, true);
  assert.equal((await rowOf(c.id)).state, 'running');

  assert.match(await (await fetch(`http://${c.hostIp}:${c.hostPort}/`)).text(), /Berth httpd/, 'started again, it answers');
  const restarted = await op(app, user, c.id, 'restart');
  assert.equal(restarted.json().state, 'running');
  assert.match(await (await fetch(`http://${c.hostIp}:${c.hostPort}/`)).text(), /Berth httpd/, 'restarted, it answers');
  const described = await temporal.workflow.getHandle(`container-${c.id}`).query('describe');
  assert.equal((described as { status: string }).status, 'running');
  const history = await temporal.workflow.getHandle(`container-${c.id}`).fetchHistory();
  const updates = (history.events ?? []).flatMap((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name ?? []);
  assert.ok(['stop', 'start', 'restart'].every((u) => updates.includes(u)), `updates in history: ${updates.join(', ')}`);

  // Ops stop it from the CLI, the same update the API sends.
  const cliStop = await promisify(execFile)(TEMPORAL_CLI, [
    'workflow', 'update', 'execute', '--address', baseConfig.temporal.address,
    '--workflow-id', `container-${c.id}`, '--name', 'stop', '--output', 'json',
  ]);
  assert.match(cliStop.stdout, /"status":\s*"stopped"/);
  assert.equal((await docker.inspect()).State.Running, false, 'stopped in Docker by the CLI');
  assert.equal((await rowOf(c.id)).state, 'stopped');
  await assert.rejects(fetch(`http://${c.hostIp}:${c.hostPort}/`), 'stopped from the CLI, its port refuses connections');

  assert.equal((await app.inject({ method: 'DELETE', url: `/api/v1/containers/${c.id}`, headers: bearer(user.token) })).statusCode, 200);
  assert.equal((await app.inject({ method: 'DELETE', url: `/api/v1/containers/${c.id}`, headers: bearer(user.token) })).statusCode, 404);
  assert.equal((await op(app, user, c.id, 'start')).statusCode, 409);
});

test('listing: your own containers; admins see all, filtered by user, host and state', async (t) => {
  const app = await buildTestApp(t);
  const alice = await createUser(app, { balance: 10_000 });
  const bob = await createUser(app, { balance: 10_000 });
  const aliceA = await run(app, alice, { imageId: (await pullHttpd(app, alice, 'host-a')).id });
  const aliceB = await run(app, alice, { imageId: (await pullHttpd(app, alice, 'host-b')).id });
  const bobB = await run(app, bob, { imageId: (await pullHttpd(app, bob, 'host-b')).id });
  // The app is closed by the time after() hooks run: remove through the workflows.
  t.after(() => Promise.all([aliceA, aliceB, bobB].map((c) => temporal.workflow.getHandle(`container-${c.id}`).executeUpdate('remove').catch(() => undefined))));
  assert.equal((await op(app, alice, aliceB.id, 'stop')).json().state, 'stopped');

  const list = async (token: string, query = '') => {
    const res = await app.inject({ method: 'GET', url: `/api/v1/containers${query}`, headers: bearer(token) });
    assert.equal(res.statusCode, 200, res.body);
    return res.json<{ items: Array<{ id: string; userId: string; host: string; state: string }>; total: number }>();
  };
  const ids = (page: { items: Array<{ id: string }> }) => page.items.map((c) => c.id).sort();

  const own = await list(alice.token);
  assert.deepEqual(ids(own), [aliceA.id, aliceB.id].sort(), 'only her own');
  assert.equal(own.total, 2);
  assert.deepEqual(ids(await list(bob.token)), [bobB.id]);
  assert.deepEqual(ids(await list(bob.token, `?userId=${alice.id}`)), [bobB.id], 'a user cannot filter into someone else’s');
  assert.deepEqual(ids(await list(alice.token, '?state=stopped')), [aliceB.id]);

  const admin = await adminToken(app);
  const all: string[] = [];
  for (let page = 1, total = Infinity; all.length < total; page++) {
    const p = await list(admin, `?pageSize=200&page=${page}`);
    total = p.total;
    if (p.items.length === 0) break;
    all.push(...ids(p));
  }
  assert.ok([aliceA.id, aliceB.id, bobB.id].every((id) => all.includes(id)), 'an admin sees everyone’s');
  assert.deepEqual(ids(await list(admin, `?userId=${alice.id}`)), [aliceA.id, aliceB.id].sort());
  assert.deepEqual(ids(await list(admin, `?userId=${alice.id}&host=host-b`)), [aliceB.id]);
  assert.deepEqual(ids(await list(admin, `?userId=${alice.id}&state=running`)), [aliceA.id]);
  const paged = await list(admin, `?userId=${alice.id}&pageSize=1`);
  assert.equal(paged.items.length, 1);
  assert.equal(paged.total, 2);
  assert.equal((await app.inject({ method: 'GET', url: '/api/v1/containers?state=sleeping', headers: bearer(admin) })).statusCode, 400);
});

test('admission: bad input and limits are clear 4xx, and nothing is created', async (t) => {
  const app = await buildTestApp(t, { containers: containersConfig({ maxPerUser: 1, maxMemoryMb: 256, defaultMemoryMb: 128, maxCpus: 1 }) });
  const user = await createUser(app, { balance: 10_000 });
  const image = await pullHttpd(app, user);
  const other = await createUser(app, { balance: 10_000 });
  const otherImage = await pullHttpd(app, other, 'host-b');
  const bad: Array<[Record<string, unknown>, number, RegExp]> = [
    [{ imageId: image.id, name: 'bad name!' }, 400, /name/],
    [{ imageId: image.id, containerPort: 70000 }, 400, /containerPort/],
    [{ imageId: image.id, containerPort: 0 }, 400, /containerPort/],
    [{ imageId: image.id, memoryMb: 512 }, 400, /between 16 and 256/],
    [{ imageId: image.id, cpus: 4 }, 400, /cpus must be between 0.05 and 1/],
    [{ imageId: otherImage.id }, 404, /Image/],
    [{ imageId: 'nope' }, 400, /imageId/],
  ];
  for (const [payload, status, why] of bad) {
    const res = await app.inject({ method: 'POST', url: '/api/v1/containers', headers: bearer(user.token), payload });
    assert.equal(res.statusCode, status, `${JSON.stringify(payload)}: ${res.body}`);
    assert.match(res.json().detail, why);
  }
  const first = await run(app, user, { imageId: image.id });
  const over = await app.inject({ method: 'POST', url: '/api/v1/containers', headers: bearer(user.token), payload: { imageId: image.id } });
  assert.equal(over.statusCode, 409);
  assert.match(over.json().detail, /limit/);
  const live = await testDb().db.select().from(containers).where(eq(containers.userId, user.id));
  assert.equal(live.length, 1);

  const poor = await createUser(app);
  await testDb().db.update(users).set({ balance: 0 }).where(eq(users.id, poor.id));
  const poorImageRes = await app.inject({ method: 'POST', url: `/api/v1/images/${image.id}/publish`, headers: bearer(await adminToken(app)) });
  assert.equal(poorImageRes.statusCode, 200);
  const broke = await app.inject({ method: 'POST', url: '/api/v1/containers', headers: bearer(poor.token), payload: { imageId: image.id } });
  assert.equal(broke.statusCode, 409);
  assert.match(broke.json().detail, /first billing period/);
  await app.inject({ method: 'DELETE', url: `/api/v1/containers/${first.id}`, headers: bearer(user.token) });
});

test('20 concurrent runs get 20 distinct ports, each published by its own container', async (t) => {
  const app = await buildTestApp(t, { containers: containersConfig({ maxPerUser: 20 }) });
  const user = await createUser(app, { balance: 100_000 });
  const image = await pullHttpd(app, user, 'host-b');
  const results = await Promise.all(
    Array.from({ length: 20 }, () =>
      app.inject({ method: 'POST', url: '/api/v1/containers?wait=true', headers: bearer(user.token), payload: { imageId: image.id } })),
  );
  assert.deepEqual(results.map((r) => r.statusCode), Array(20).fill(201), results.map((r) => r.body).join('\n'));
  const rows = await testDb().db.select().from(containers).where(eq(containers.userId, user.id));
  assert.equal(new Set(rows.map((r) => r.hostPort)).size, 20, 'distinct rows');
  const published = await Promise.all(rows.map(async (r) => {
    const info = await dockerFor('host-b').getContainer(dockerName(r.id)).inspect();
    assert.equal(info.State.Running, true);
    return Number(info.NetworkSettings.Ports['80/tcp']?.[0]?.HostPort);
  }));
  assert.deepEqual(published.sort(), rows.map((r) => r.hostPort).sort(), 'the daemon publishes the allocated ports');
  await Promise.all(rows.map(async (r) => {
    const removed = await app.inject({ method: 'DELETE', url: `/api/v1/containers/${r.id}`, headers: bearer(user.token) });
    assert.equal(removed.statusCode, 200, removed.body);
  }));
});

test('an exhausted port range is a 409 saying so; a removal frees its port for the next', async (t) => {
  // Two ports outside the default range, so no other container holds them.
  const app = await buildTestApp(t, { containers: containersConfig({ maxPerUser: 5, portRange: { from: 21900, to: 21901 } }) });
  const user = await createUser(app, { balance: 100_000 });
  const image = await pullHttpd(app, user, 'host-b');
  const first = await run(app, user, { imageId: image.id });
  const second = await run(app, user, { imageId: image.id });
  assert.deepEqual([first.hostPort, second.hostPort].sort(), [21900, 21901]);
  const full = await app.inject({ method: 'POST', url: '/api/v1/containers', headers: bearer(user.token), payload: { imageId: image.id } });
  assert.equal(full.statusCode, 409, full.body);
  assert.match(full.json().detail, /No free host port on host-b in 21900-21901/);
  assert.equal((await testDb().db.select().from(containers).where(eq(containers.userId, user.id))).length, 2, 'nothing created');

  assert.equal((await app.inject({ method: 'DELETE', url: `/api/v1/containers/${first.id}`, headers: bearer(user.token) })).statusCode, 200);
  const third = await run(app, user, { imageId: image.id });
  assert.equal(third.hostPort, first.hostPort, 'the freed port is allocated again');
  assert.match(await (await fetch(`http://${third.hostIp}:${third.hostPort}/`)).text(), /Berth httpd/);
  for (const c of [second, third]) await app.inject({ method: 'DELETE', url: `/api/v1/containers/${c.id}`, headers: bearer(user.token) });
});

test('a container that cannot be created fails with the reason, and its first period is refunded', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 10_000 });
  // An image Berth recorded but that is no longer on the host: Docker refuses the create.
  const reference = await pushUniqueImage('gone');
  const pulled = await app.inject({ method: 'POST', url: '/api/v1/images/pull?wait=true', headers: bearer(user.token), payload: { image: reference, host: 'host-b' } });
  assert.equal(pulled.statusCode, 201, pulled.body);
  await dockerFor('host-b').getImage(reference).remove({ force: true });
  const before = await balanceOf(user.id);

  const res = await app.inject({ method: 'POST', url: '/api/v1/containers', headers: bearer(user.token), payload: { imageId: pulled.json().id, containerPort: 80 } });
  assert.equal(res.statusCode, 202, res.body);
  const { id } = res.json<{ id: string }>();
  const row = await eventually('failed', async () => {
    const r = await rowOf(id);
    return r.state === 'failed' && r;
  }, 60);
  assert.match(row.stateReason ?? '', /no such image|not found/i, row.stateReason ?? '');
  assert.equal(row.stateReasonCode, 'docker_error', 'Docker refused it: the code says so beside the message');
  assert.equal((await app.inject({ method: 'GET', url: `/api/v1/containers/${id}`, headers: bearer(user.token) })).json().stateReasonCode, 'docker_error');
  assert.equal((await temporal.workflow.getHandle(containerWorkflowId(id)).query(describeQuery)).reasonCode, 'docker_error');
  assert.ok(row.removedAt, 'its port is free again');
  assert.equal(row.charged, 0);
  assert.equal(await balanceOf(user.id), before, 'charged, then refunded');
  const entries = await testDb().db.select().from(ledgerEntries).where(like(ledgerEntries.idempotencyKey, `container-${id}-%`));
  assert.deepEqual(entries.map((e) => e.kind).sort(), ['container_charge', 'container_refund']);
  assert.deepEqual((await dockerFor('host-b').listContainers({ all: true, filters: { label: [`${LABEL_ID}=${id}`] } })), []);

  // ?wait=true tells the same failure as a problem, not a 201 with a failed container.
  const waited = await app.inject({ method: 'POST', url: '/api/v1/containers?wait=true', headers: bearer(user.token), payload: { imageId: pulled.json().id, containerPort: 80 } });
  assert.equal(waited.statusCode, 502, waited.body);
  assert.match(waited.headers['content-type'] as string, /application\/problem\+json/);
  assert.equal(waited.json().type.endsWith('container-failed'), true, waited.body);
  assert.match(waited.json().detail, /no such image|not found/i);
  assert.equal(await balanceOf(user.id), before, 'the second try was refunded too');
});

test('metering: each started period is charged once; an unpaid period suspends; top-up and start resume', async (t) => {
  const app = await buildTestApp(t, { containers: containersConfig({ prices: flatPrice(7), billingPeriodMs: 2000 }) });
  const user = await createUser(app, { balance: 1000 });
  const image = await pullHttpd(app, user);
  await testDb().db.update(users).set({ balance: 21 }).where(eq(users.id, user.id)); // three periods
  const c = await run(app, user, { imageId: image.id });
  const suspended = await eventually('suspension', async () => {
    const row = await rowOf(c.id);
    return row.state === 'suspended' && row;
  }, 30);
  assert.match(suspended.stateReason ?? '', /insufficient balance/);
  assert.equal(suspended.stateReasonCode, 'insufficient_funds');
  assert.equal(await balanceOf(user.id), 0);
  const charges = (await testDb().db.select().from(ledgerEntries).where(and(eq(ledgerEntries.userId, user.id), eq(ledgerEntries.kind, 'container_charge'))));
  assert.equal(charges.length, 3);
  assert.equal(new Set(charges.map((e) => e.idempotencyKey)).size, 3);
  assert.ok(charges.every((e) => e.amount === -7));
  assert.equal(suspended.charged, 21);
  assert.equal((await dockerFor('host-a').getContainer(dockerName(c.id)).inspect()).State.Running, false, 'stopped in Docker');

  const noMoney = await op(app, user, c.id, 'start');
  assert.equal(noMoney.statusCode, 409);
  assert.match(noMoney.json().detail, /insufficient balance/);

  await testDb().db.update(users).set({ balance: 7 }).where(eq(users.id, user.id));
  const resumed = await op(app, user, c.id, 'start');
  assert.equal(resumed.statusCode, 200, resumed.body);
  assert.equal(resumed.json().state, 'running');
  assert.equal(resumed.json().stateReasonCode, null, 'started by its user: no reason');
  const stopped = await op(app, user, c.id, 'stop');
  assert.equal(stopped.json().state, 'stopped');
  const balance = await balanceOf(user.id);
  await sleep(4500);
  assert.equal(await balanceOf(user.id), balance, 'a stopped container is not charged');
  await app.inject({ method: 'DELETE', url: `/api/v1/containers/${c.id}`, headers: bearer(user.token) });
});

test('reconciliation: a container that dies or is removed outside Berth shows its real state, and billing follows', async (t) => {
  const app = await buildTestApp(t, { containers: containersConfig({ prices: flatPrice(3), billingPeriodMs: 1500 }) });
  const user = await createUser(app, { balance: 10_000 });
  const image = await pullHttpd(app, user, 'host-b');
  const a = await run(app, user, { imageId: image.id });
  const b = await run(app, user, { imageId: image.id });
  await dockerFor('host-b').getContainer(dockerName(a.id)).kill();
  const exited = await eventually('exited', async () => {
    const row = await rowOf(a.id);
    return row.state === 'exited' && row;
  });
  assert.match(exited.stateReason ?? '', /exited with code/);
  assert.equal(exited.stateReasonCode, 'exited');
  assert.equal((await temporal.workflow.getHandle(containerWorkflowId(a.id)).query(describeQuery)).reasonCode, 'exited');
  const chargesOfA = async () => (await testDb().db.select().from(ledgerEntries).where(and(
    eq(ledgerEntries.kind, 'container_charge'), like(ledgerEntries.idempotencyKey, `container-${a.id}-%`)))).length;
  const chargedAtExit = await chargesOfA();
  await sleep(4000); // more than two billing periods
  assert.equal(await chargesOfA(), chargedAtExit, 'an exited container is not charged');

  await dockerFor('host-b').getContainer(dockerName(b.id)).remove({ force: true });
  const gone = await eventually('removed', async () => {
    const row = await rowOf(b.id);
    return row.state === 'removed' && row;
  });
  assert.ok(gone.removedAt);
  assert.match(gone.stateReason ?? '', /outside Berth/);
  assert.equal(gone.stateReasonCode, 'removed_outside');
  assert.equal(await closedStatus(temporal, `container-${b.id}`), 'COMPLETED');
  await app.inject({ method: 'DELETE', url: `/api/v1/containers/${a.id}`, headers: bearer(user.token) });
});

test('logs: framing removed, stdout and stderr told apart, tail, download', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 10_000 });
  const image = await pullHttpd(app, user);
  const c = await run(app, user, {
    imageId: image.id,
    cmd: ['sh', '-c', 'echo out-1; echo err-1 >&2; echo out-2; exec httpd -f -p 80 -h /www'],
  });
  const logs = await eventually('logs', async () => {
    const res = await app.inject({ method: 'GET', url: `/api/v1/containers/${c.id}/logs`, headers: bearer(user.token) });
    return res.statusCode === 200 && res.body.includes('out-2') && res;
  });
  assert.match(logs.headers['content-type'] as string, /text\/plain/);
  assert.deepEqual(logs.body.trim().split('\n').sort(), ['[stderr] err-1', '[stdout] out-1', '[stdout] out-2']);
  const tail = await app.inject({ method: 'GET', url: `/api/v1/containers/${c.id}/logs?tail=1&timestamps=true`, headers: bearer(user.token) });
  assert.equal(tail.body.trim().split('\n').length, 1);
  assert.match(tail.body, /^\[std(out|err)\] \d{4}-\d{2}-\d{2}T/);
  const download = await app.inject({ method: 'GET', url: `/api/v1/containers/${c.id}/logs/download`, headers: bearer(user.token) });
  assert.match(download.headers['content-disposition'] as string, /^attachment; filename=".*-logs\.txt"$/);
  assert.match(download.body, /out-1/);
  const other = await createUser(app);
  assert.equal((await app.inject({ method: 'GET', url: `/api/v1/containers/${c.id}/logs`, headers: bearer(other.token) })).statusCode, 404);
  await app.inject({ method: 'DELETE', url: `/api/v1/containers/${c.id}`, headers: bearer(user.token) });
});

test('past its history limit the container workflow continues as new, carrying its state: it still answers, bills once per start and removes', async (t) => {
  const historyLimit = 20;
  const app = await buildTestApp(t, { containers: containersConfig({ historyLimit }) });
  // The default billing period is 1h: every start charges a new period.
  const user = await createUser(app, { balance: 100_000 });
  const { defaultCpus, defaultMemoryMb, prices } = baseConfig.containers;
  const price = containerPricePerPeriod({ cpuMillis: defaultCpus * 1000, memoryMb: defaultMemoryMb }, prices);
  const image = await pullHttpd(app, user);
  // A shell that leaves on SIGTERM: a stop takes no stop timeout.
  const c = await run(app, user, { imageId: image.id, cmd: ['sh', '-c', 'trap "exit 0" TERM; httpd -f -p 80 -h /www & wait'] });
  const workflowId = `container-${c.id}`;
  // Should an assertion fail, the container is removed all the same.
  t.after(() => temporal.workflow.getHandle(workflowId).executeUpdate('remove').catch(() => undefined));
  const docker = dockerFor('host-a').getContainer(dockerName(c.id));
  const runsOf = async () => {
    const runs: Array<{ runId: string; status: string; startTime: Date }> = [];
    for await (const r of temporal.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
      runs.push({ runId: r.runId, status: r.status.name, startTime: r.startTime });
    }
    return runs.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
  };
  // Each stop or start adds 25 to 30 events (update, activities, Docker's event): four pairs
  // take the history several times past the limit.
  let starts = 1;
  for (let i = 0; i < 4; i++) {
    const stopped = await op(app, user, c.id, 'stop');
    assert.equal(stopped.statusCode, 200, stopped.body);
    assert.equal(stopped.json().state, 'stopped');
    const started = await op(app, user, c.id, 'start');
    assert.equal(started.statusCode, 200, started.body);
    assert.equal(started.json().state, 'running');
    starts++;
  }

  // Visibility lags a little: wait until it lists the chain, every run continued as new but the last.
  const runs = await eventually('the chain of runs to be listed', async () => {
    const listed = await runsOf();
    return listed.length >= 2 && listed.at(-1)!.status === 'RUNNING'
      && listed.slice(0, -1).every((r) => r.status === 'CONTINUED_AS_NEW') && listed;
  });
  const firstRun = runs[0]!;
  const first = await temporal.workflow.getHandle(workflowId, firstRun.runId).describe();
  assert.equal(first.status.name, 'CONTINUED_AS_NEW');
  assert.ok(first.historyLength > historyLimit, `the first run ended past the limit (${first.historyLength} events)`);
  for (const r of runs.slice(0, -1)) {
    const { historyLength } = await temporal.workflow.getHandle(workflowId, r.runId).describe();
    t.diagnostic(`run ${r.runId}: ${historyLength} events`);
    // The limit is checked between operations: a run ends within one operation (about 30 events) of it.
    assert.ok(historyLength > historyLimit && historyLength < historyLimit + 60, `each run ends soon after the limit (${historyLength} events)`);
  }
  assert.ok(runs.length >= 3, `the carried limit holds in continued runs too (${runs.length} runs)`);
  const handle = temporal.workflow.getHandle(workflowId);
  const latest = await handle.describe();
  assert.equal(latest.runId, runs.at(-1)!.runId);
  assert.equal(latest.status.name, 'RUNNING');

  // The new run was given the same input, with the limit, and the state it carries.
  const started = (await temporal.workflow.getHandle(workflowId, latest.runId).fetchHistory()).events![0]!.workflowExecutionStartedEventAttributes!;
  const [carried] = started.input!.payloads!.map((p) => temporal.options.loadedDataConverter.payloadConverter.fromPayload<ContainerInput>(p));
  assert.equal(carried!.id, c.id);
  assert.equal(carried!.historyLimit, historyLimit, 'the limit is carried');
  assert.equal(carried!.pricePerPeriod, price);
  assert.ok(carried!.state && carried!.state.charged > 0 && carried!.state.segment > 1, `the state is carried: ${JSON.stringify(carried!.state)}`);
  assert.ok(started.continuedExecutionRunId && started.continuedExecutionRunId !== latest.runId, 'continued from the run before');

  // It still answers, with the state carried over.
  let view = await handle.query(describeQuery);
  assert.equal(view.status, 'running');
  assert.equal(view.charged, starts * price, 'charged carried: one period per start');
  assert.equal(view.periodsCharged, 1);
  assert.equal(view.dockerId, (await docker.inspect()).Id);

  const stopped = await op(app, user, c.id, 'stop');
  assert.equal(stopped.statusCode, 200, stopped.body);
  assert.equal(stopped.json().state, 'stopped');
  assert.equal((await docker.inspect()).State.Running, false);
  assert.equal((await rowOf(c.id)).state, 'stopped');
  const restarted = await op(app, user, c.id, 'start');
  assert.equal(restarted.statusCode, 200, restarted.body);
  assert.equal(restarted.json().state, 'running');
  starts++;
  assert.equal((await docker.inspect()).State.Running, true);
  assert.match(await (await fetch(`http://${c.hostIp}:${c.hostPort}/`)).text(), /Berth httpd/);
  view = await handle.query(describeQuery);
  assert.equal(view.charged, starts * price);

  // Billing: the record, the workflow and the ledger agree; every period charged once.
  const entries = await testDb().db.select().from(ledgerEntries).where(like(ledgerEntries.idempotencyKey, `container-${c.id}-%`));
  assert.equal(entries.length, starts, entries.map((e) => e.idempotencyKey).join(', '));
  assert.ok(entries.every((e) => e.kind === 'container_charge' && e.amount === -price));
  assert.equal(new Set(entries.map((e) => e.idempotencyKey)).size, starts, 'one key per run segment');
  const row = await rowOf(c.id);
  assert.equal(row.charged, -entries.reduce((sum, e) => sum + e.amount, 0));
  assert.equal(row.charged, view.charged);

  const removed = await app.inject({ method: 'DELETE', url: `/api/v1/containers/${c.id}`, headers: bearer(user.token) });
  assert.equal(removed.statusCode, 200, removed.body);
  assert.equal(removed.json().state, 'removed');
  await assert.rejects(docker.inspect(), /no such container/i);
  assert.ok((await rowOf(c.id)).removedAt);
  assert.equal(await closedStatus(temporal, handle.workflowId), 'COMPLETED');
});

test('a workflow that cannot be started releases the record it was admitted with: no port, no slot held', async (t) => {
  // One port and one container per user, so that the next run proves both are free again.
  const limits = containersConfig({ maxPerUser: 1, portRange: { from: 21950, to: 21950 } });
  const app = await buildTestApp(t, { containers: limits });
  const user = await createUser(app, { balance: 10_000 });
  const image = await pullHttpd(app, user, 'host-b');

  // The same API, whose Temporal refuses every start (a namespace that does not exist).
  const database = connectDatabase(baseConfig.database.url, { max: 2 });
  const refusing = await connectTemporal({ ...baseConfig.temporal, namespace: `berth-no-such-namespace-${user.id.slice(0, 8)}` });
  const broken = await buildApp({ config: { ...baseConfig, containers: limits }, db: database.db, temporal: refusing });
  t.after(async () => {
    await broken.close();
    await refusing.connection.close();
    await database.close();
  });
  const res = await broken.inject({ method: 'POST', url: '/api/v1/containers', headers: bearer(user.token), payload: { imageId: image.id, name: 'first' } });
  assert.equal(res.statusCode, 500, res.body);
  const [row] = await testDb().db.select().from(containers).where(eq(containers.userId, user.id));
  assert.ok(row, 'the record was admitted');
  assert.equal(row.state, 'failed');
  assert.equal(row.stateReasonCode, 'start_failed');
  assert.match(row.stateReason ?? '', /workflow could not be started/);
  assert.ok(row.removedAt, 'released in the same request');
  assert.equal(row.charged, 0);
  assert.deepEqual(await testDb().db.select().from(ledgerEntries).where(like(ledgerEntries.idempotencyKey, `container-${row.id}-%`)), [], 'nothing charged');
  const listed = await app.inject({ method: 'GET', url: '/api/v1/containers', headers: bearer(user.token) });
  assert.deepEqual(listed.json().items, [], 'not among the live containers');
  const failed = await app.inject({ method: 'GET', url: '/api/v1/containers?state=failed', headers: bearer(user.token) });
  assert.deepEqual(failed.json().items.map((c: { id: string; stateReasonCode: string }) => [c.id, c.stateReasonCode]), [[row.id, 'start_failed']]);

  // The slot, the port and the name are free: the working API runs the next one on that very port.
  const next = await run(app, user, { imageId: image.id, name: 'first' });
  assert.equal(next.hostPort, 21950);
  assert.equal(next.state, 'running');
  assert.equal((await app.inject({ method: 'DELETE', url: `/api/v1/containers/${next.id}`, headers: bearer(user.token) })).statusCode, 200);
});

test('recording a state refuses an illegal transition (non-retryable IllegalTransition) and changes nothing', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 10_000 });
  const image = await pullHttpd(app, user);
  const c = await run(app, user, { imageId: image.id });
  const removed = await app.inject({ method: 'DELETE', url: `/api/v1/containers/${c.id}`, headers: bearer(user.token) });
  assert.equal(removed.statusCode, 200, removed.body);
  const before = await rowOf(c.id);
  assert.equal(before.state, 'removed');

  const activities = createContainerDbActivities({ db: testDb().db });
  const refused = await activities.recordContainerState(c.id, { state: 'running', stateReason: null }).then(
    () => assert.fail('removed → running must be refused'),
    (error: unknown) => error,
  );
  assert.ok(refused instanceof ApplicationFailure, String(refused));
  assert.equal(refused.type, FailureType.IllegalTransition);
  assert.equal(refused.nonRetryable, true);
  assert.match(refused.message, /removed → running/);
  await assert.rejects(activities.releaseContainer(c.id, 'failed', 'late failure', 'docker_error'), (e: ApplicationFailure) => e.type === FailureType.IllegalTransition);
  // A retried release of the state it is in changes nothing (its reason stays the first one).
  await activities.releaseContainer(c.id, 'removed', 'again', 'removed_outside');
  assert.deepEqual(await rowOf(c.id), before, 'the record is as it was');
});

test('a first period the balance cannot pay once the container is admitted: failed, insufficient_funds, a 409 for ?wait=true', async (t) => {
  const price = 7;
  const app = await buildTestApp(t, { containers: containersConfig({ prices: flatPrice(price), maxPerUser: 5 }) });
  const owner = await createUser(app, { balance: 10_000 });
  const image = await pullHttpd(app, owner);
  const published = await app.inject({ method: 'POST', url: `/api/v1/images/${image.id}/publish`, headers: bearer(await adminToken(app)) });
  assert.equal(published.statusCode, 200, published.body);
  // Two runs at once with the balance for one first period: admission checks the balance but
  // charges nothing, so both may be admitted and the second workflow's charge is refused. Should
  // admission refuse the second (the first workflow charged first), try again with a new user.
  for (let attempt = 1; ; attempt++) {
    const user = await createUser(app);
    await testDb().db.update(users).set({ balance: price }).where(eq(users.id, user.id));
    const results = await Promise.all([0, 1].map(() =>
      app.inject({ method: 'POST', url: '/api/v1/containers?wait=true', headers: bearer(user.token), payload: { imageId: image.id } })));
    assert.deepEqual(results.map((r) => r.statusCode).sort(), [201, 409], results.map((r) => r.body).join('\n'));
    const ran = results.find((r) => r.statusCode === 201)!.json<{ id: string }>();
    t.after(() => temporal.workflow.getHandle(`container-${ran.id}`).executeUpdate('remove').catch(() => undefined));
    const refused = results.find((r) => r.statusCode === 409)!.json<{ type: string; detail: string }>();
    assert.ok(refused.type.endsWith('insufficient-funds'), JSON.stringify(refused));
    const rows = await testDb().db.select().from(containers).where(eq(containers.userId, user.id));
    if (rows.length === 1 && attempt < 5) {
      t.diagnostic(`attempt ${attempt}: admission refused the second run; again`);
      continue;
    }
    assert.equal(rows.length, 2, 'both runs admitted');
    const failed = rows.find((r) => r.state === 'failed')!;
    assert.ok(failed, rows.map((r) => r.state).join(', '));
    assert.equal(failed.stateReasonCode, 'insufficient_funds');
    assert.equal(failed.stateReason, 'insufficient balance for the first billing period');
    assert.equal(refused.detail, failed.stateReason, 'the 409 tells the workflow’s reason');
    assert.ok(failed.removedAt);
    assert.equal(failed.charged, 0);
    assert.equal(await balanceOf(user.id), 0, 'one first period charged');
    break;
  }
});
