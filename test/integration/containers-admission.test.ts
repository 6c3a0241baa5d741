/**
 * Admitting and creating containers: bad input and limits, host ports (20 concurrent runs, an
 * exhausted range), and what a container that cannot be created, a workflow that cannot be
 * started or a first period that cannot be paid leave behind. Split from containers.test.ts so
 * that the two files run side by side in the concurrent pass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eq, like } from 'drizzle-orm';
import { ApplicationFailure } from '@temporalio/common';
import { containers, ledgerEntries, users } from '../../db/schema.js';
import { connectTemporal } from '../../core/temporal.js';
import { LABEL_ID, dockerName } from '../../core/container-labels.js';
import { FailureType } from '../../core/failures.js';
import { connectDatabase } from '../../db/client.js';
import { createContainerDbActivities } from '../../activities/containers-db.js';
import { containerWorkflowId, describeQuery } from '../../contracts/container.js';
import { adminToken, balanceOf, baseConfig, bearer, buildTestApp, createUser, testDb } from '../support/app.js';
import { containersConfig, flatPrice, pullHttpd, rowOf, run } from '../support/containers.js';
import { dockerFor } from '../support/stack.js';
import { pushUniqueImage } from '../support/images.js';
import { eventually } from '../support/wait.js';
import { buildApp } from '../../api/app.js';

const temporal = await connectTemporal(baseConfig.temporal);
test.after(() => temporal.connection.close());

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
  assert.equal(res.statusCode, 503, res.body);
  assert.equal(res.json().type, '/problems/unavailable');
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

  // ?wait=true starts the workflow with its start update in one request: refused the same way, released the same way.
  const waited = await broken.inject({ method: 'POST', url: '/api/v1/containers?wait=true', headers: bearer(user.token), payload: { imageId: image.id, name: 'first' } });
  assert.equal(waited.statusCode, 503, waited.body);
  assert.equal(waited.json().type, '/problems/unavailable');
  const rows = await testDb().db.select().from(containers).where(eq(containers.userId, user.id));
  assert.equal(rows.length, 2, 'admitted on the port and slot the first one freed');
  const second = rows.find((r) => r.id !== row.id)!;
  assert.equal(second.state, 'failed');
  assert.equal(second.stateReasonCode, 'start_failed');
  assert.ok(second.removedAt, 'released in the same request');
  assert.equal(second.charged, 0);

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
