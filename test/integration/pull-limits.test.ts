/**
 * Abuse limits on pulls and containers (issue: tenant isolation): where pulls may come
 * from, what a registry's failure tells the user, a registry that never answers, the
 * per-user pull limit, container limits that cannot be switched off, prices by resources.
 * Every registry here is a listener of this test on loopback, or a reference refused
 * before anything connects.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { eq } from 'drizzle-orm';
import { connectTemporal } from '../../core/temporal.js';
import { containerPricePerPeriod } from '../../billing/prices.js';
import { containers, dcuTasks, pullSlots } from '../../db/schema.js';
import { baseConfig, bearer, buildTestApp, createUser, testDb, type TestUser } from '../support/app.js';
import { activityAttempts, closedStatus } from '../support/history.js';
import type { App } from '../../api/app.js';

const temporal = await connectTemporal(baseConfig.temporal);
test.after(() => temporal.connection.close());

const slotsOf = async (userId: string) => testDb().db.select().from(pullSlots).where(eq(pullSlots.userId, userId));

/** A registry address that accepts connections and never answers. */
async function silentRegistry(t: { after: (fn: () => unknown) => void }) {
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => sockets.size };
}

/** Something that is not a registry (as MinIO is): every request gets a 404 with an XML body. */
async function xmlServer(t: { after: (fn: () => unknown) => void }) {
  const server = createHttpServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'application/xml' });
    res.end('<?xml version="1.0"?><Error><Code>NoSuchBucket</Code><Message>SECRET-INTERNAL-BODY</Message></Error>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A test app whose policy lists these loopback registries as internal (an operator's choice). */
const appWithRegistries = (t: Parameters<typeof buildTestApp>[0], internal: string[], maxPulls = baseConfig.pulls.maxConcurrentPerUser) =>
  buildTestApp(t, {
    registries: { allowed: [...baseConfig.registries.allowed, ...internal], internal: [...baseConfig.registries.internal, ...internal], adminOnly: [] },
    pulls: { ...baseConfig.pulls, maxConcurrentPerUser: maxPulls },
  });

const pull = (app: App, user: TestUser, image: string, wait = false) =>
  app.inject({ method: 'POST', url: `/api/v1/images/pull${wait ? '?wait=true' : ''}`, headers: bearer(user.token), payload: { image, host: 'host-a' } });

test('references that probe the network are a fast 4xx on pulls and DCU: nothing is recorded, no workflow starts', async (t) => {
  // localhost:9000 is listed but not as internal: a listed name that is loopback is still refused.
  const app = await buildTestApp(t, {
    registries: { ...baseConfig.registries, allowed: [...baseConfig.registries.allowed, 'localhost:9000', '127.0.0.1:9000'] },
  });
  const user = await createUser(app, { balance: 1000 });
  const probes: Array<[string, RegExp]> = [
    ['127.0.0.1:9000/minio/x', /127\.0\.0\.1:9000 is a loopback, link-local or private address/],
    ['localhost:9000/minio/x', /loopback/],
    ['127.0.0.1:8080/api/x', /Pulls from 127\.0\.0\.1:8080 are not allowed here/],
    ['127.0.0.1:7233/x', /not allowed/],
    ['169.254.169.254/latest/meta-data', /not allowed/],
    ['10.0.0.1:5000/x', /not allowed/],
    ['[::1]:5000/x', /not allowed/],
    ['registry.evil.example/x', /not allowed/],
  ];
  for (const [image, detail] of probes) {
    const res = await pull(app, user, image, true);
    assert.equal(res.statusCode, 422, `${image}: ${res.body}`);
    assert.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8');
    assert.equal(res.json().type, '/problems/registry-not-allowed');
    assert.match(res.json().detail, detail, image);

    const dcu = await app.inject({
      method: 'POST',
      url: '/api/dcu/start',
      headers: { ...bearer(user.token), 'accept-language': 'en' },
      payload: { username: user.username, docker_image_name: image, host: 'host-a' },
    });
    assert.equal(dcu.statusCode, 422, `DCU ${image}: ${dcu.body}`);
    assert.equal(dcu.json().status, 422);
    assert.equal(dcu.json().data, null);
    assert.match(dcu.json().message, detail);
  }
  // A slot is taken just before a pull's workflow starts, and a DCU row before its workflow: neither exists.
  assert.deepEqual(await slotsOf(user.id), []);
  assert.deepEqual(await testDb().db.select().from(dcuTasks).where(eq(dcuTasks.userId, user.id)), []);
});

test('a registry answer that is not a registry’s reaches the user in Berth’s words, without its body, and is not retried', async (t) => {
  const registry = await xmlServer(t);
  const app = await appWithRegistries(t, [registry]);
  const user = await createUser(app, { balance: 1000 });
  const res = await pull(app, user, `${registry}/minio/x`, true);
  assert.equal(res.statusCode, 502, res.body);
  assert.equal(res.json().type, '/problems/registry-error');
  assert.equal(res.json().detail, `pull of ${registry}/minio/x:latest failed: ${registry} did not answer as a registry`);
  assert.doesNotMatch(res.body, /SECRET-INTERNAL-BODY|NoSuchBucket|xml/i);
  const [slot] = await slotsOf(user.id);
  assert.ok(slot?.releasedAt, 'the pull’s slot is free once the wait answered');
  assert.deepEqual(await activityAttempts(temporal, slot.pullId, 'ensureImage'), [1], 'one attempt: retrying cannot make it a registry');
});

test('a registry that accepts and never answers fails the pull within the stall timeout, once; the per-user pull limit answers 429', async (t) => {
  const registry = await silentRegistry(t);
  const app = await appWithRegistries(t, [registry.address], 2);
  const user = await createUser(app, { balance: 1000 });
  // Three at once against a limit of two: the user's row serialises them, exactly one is refused.
  const started = await Promise.all([1, 2, 3].map((n) => pull(app, user, `${registry.address}/stuck/app${n}:1`)));
  assert.deepEqual(started.map((r) => r.statusCode).sort(), [202, 202, 429], started.map((r) => r.body).join('\n'));
  const refused = started.find((r) => r.statusCode === 429)!;
  assert.equal(refused.json().type, '/problems/too-many-pulls');
  assert.match(refused.json().detail, /At most 2 pulls in flight per user/);
  assert.equal((await slotsOf(user.id)).filter((s) => !s.releasedAt).length, 2);
  // Another user is not held by this one's pulls.
  const other = await createUser(app, { balance: 1000 });
  const theirs = await pull(app, other, '127.0.0.1:5000/library/does-not-exist:1');
  assert.equal(theirs.statusCode, 202, theirs.body);

  const pullIds = started.filter((r) => r.statusCode === 202).map((r) => r.json<{ pullId: string }>().pullId);
  const begun = Date.now();
  for (const pullId of pullIds) assert.equal(await closedStatus(temporal, pullId, 90), 'FAILED');
  const took = Date.now() - begun;
  for (const pullId of pullIds) {
    const status = await app.inject({ method: 'GET', url: `/api/v1/images/pulls/${pullId}`, headers: bearer(user.token) });
    assert.equal(status.json().state, 'failed');
    assert.match(status.json().error.message, /127\.0\.0\.1:\d+ sent nothing for 20 s$/);
    assert.equal(status.json().error.type, 'RegistryError');
    assert.deepEqual(await activityAttempts(temporal, pullId, 'ensureImage'), [1], 'a stalled registry is not tried again');
  }
  assert.ok(took < 60_000, `the stalled pulls ended within a minute (took ${took} ms)`);
  // Their ends free the slots: a new pull is admitted.
  const again = await pull(app, user, `${registry.address}/stuck/app4:1`);
  assert.equal(again.statusCode, 202, again.body);
  assert.equal(await closedStatus(temporal, again.json().pullId, 90), 'FAILED');
});

test('admin-only registry credentials: other users may not pull from that registry, admins may', async (t) => {
  const app = await buildTestApp(t, { registries: { ...baseConfig.registries, adminOnly: ['127.0.0.1:5001'] } });
  const user = await createUser(app, { balance: 1000 });
  const refused = await pull(app, user, '127.0.0.1:5001/private/busybox:1.35', true);
  assert.equal(refused.statusCode, 403, refused.body);
  assert.match(refused.json().detail, /Pulls from 127\.0\.0\.1:5001 are limited to admins/);
  assert.deepEqual(await slotsOf(user.id), []);
  const admin = await createUser(app, { balance: 1000, role: 'admin' });
  const allowed = await pull(app, admin, '127.0.0.1:5001/private/busybox:1.35', true);
  assert.equal(allowed.statusCode, 201, allowed.body);
  await app.inject({ method: 'DELETE', url: `/api/v1/images/${allowed.json().id}`, headers: bearer(admin.token) });
});

test('container limits that cannot be switched off, and a price by resources quoted before running and kept on the record', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 10_000 });
  const image = await pull(app, user, '127.0.0.1:5000/library/httpd:latest', true);
  assert.equal(image.statusCode, 201, image.body);
  const imageId = image.json().id;
  const create = (body: Record<string, unknown>) =>
    app.inject({ method: 'POST', url: '/api/v1/containers?wait=true', headers: bearer(user.token), payload: { imageId, ...body } });
  const { minCpuMillis, minMemoryMb, maxPidsLimit, maxCpus } = baseConfig.containers;
  for (const [body, detail] of [
    [{ cpus: 0.0001 }, /cpus must be between/],
    [{ cpus: 0.001 }, /cpus must be between/],
    [{ cpus: maxCpus + 1 }, /cpus must be between/],
    [{ cpus: 0.5555 }, /three decimals/],
    [{ memoryMb: minMemoryMb - 1 }, /memoryMb must be between/],
    [{ pidsLimit: maxPidsLimit + 1 }, /pidsLimit must be at most/],
  ] as const) {
    const res = await create(body);
    assert.equal(res.statusCode, 400, `${JSON.stringify(body)}: ${res.body}`);
    assert.match(res.json().detail, detail);
  }
  assert.deepEqual(await testDb().db.select().from(containers).where(eq(containers.userId, user.id)), [], 'nothing was stored');

  const quote = await app.inject({ method: 'POST', url: '/api/v1/containers/quote', headers: bearer(user.token), payload: { cpus: 1.5, memoryMb: 1536 } });
  assert.equal(quote.statusCode, 200, quote.body);
  const expected = containerPricePerPeriod({ cpuMillis: 1500, memoryMb: 1536 }, baseConfig.containers.prices);
  assert.equal(quote.json().pricePerPeriod, expected);
  assert.equal(quote.json().pidsLimit, baseConfig.containers.defaultPidsLimit);
  const badQuote = await app.inject({ method: 'POST', url: '/api/v1/containers/quote', headers: bearer(user.token), payload: { cpus: 0.0001 } });
  assert.equal(badQuote.statusCode, 400);

  const before = (await app.inject({ method: 'GET', url: '/api/v1/users/me', headers: bearer(user.token) })).json().balance;
  const res = await create({ cpus: 1.5, memoryMb: 1536, cmd: ['httpd', '-f', '-p', '80', '-h', '/www'] });
  assert.equal(res.statusCode, 201, res.body);
  const c = res.json();
  // Removed through its workflow: the app is closed by the time after() hooks run.
  t.after(() => temporal.workflow.getHandle(`container-${c.id}`).executeUpdate('remove').catch(() => undefined));
  assert.equal(c.pricePerPeriod, expected);
  assert.equal(c.charged, expected, 'the first period is charged at the quoted price');
  assert.equal(c.pidsLimit, baseConfig.containers.defaultPidsLimit);
  const [row] = await testDb().db.select().from(containers).where(eq(containers.id, c.id));
  assert.equal(row!.pricePerPeriod, expected);
  assert.equal(row!.cpuMillis, 1500);
  assert.ok(row!.cpuMillis >= minCpuMillis);
  const after = (await app.inject({ method: 'GET', url: '/api/v1/users/me', headers: bearer(user.token) })).json().balance;
  assert.equal(before - after, expected);
});
