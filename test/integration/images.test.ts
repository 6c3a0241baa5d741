import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { hosts, images } from '../../db/schema.js';
import { connectTemporal } from '../../core/temporal.js';
import { adminToken, balanceOf, baseConfig, bearer, buildTestApp, createUser, ledgerOf, testDb } from '../support/app.js';
import { inspectOn, pullRequest as pull, pushUniqueImage, waitForPull } from '../support/images.js';
import { REGISTRY, dockerFor } from '../support/stack.js';
import { pullId as newPullId, pullImageWorkflow, type PullImageInput } from '../../contracts/pull-image.js';
import { removeImageId, removeImageWorkflow } from '../../contracts/remove-image.js';
import { createWorkflowRuns } from '../../services/workflow-runs.js';
import { parseImageReference } from '../../core/image-ref.js';
import { defaultPayloadConverter } from '@temporalio/common';
import { WorkflowNotFoundError } from '@temporalio/client';

const MB = 1024 * 1024;
const temporal = await connectTemporal(baseConfig.temporal);
test.after(() => temporal.connection.close());

/** Activity types the workflow scheduled, from its history in Temporal. */
async function scheduledActivities(workflowId: string): Promise<string[]> {
  const history = await temporal.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
}

test('pull-and-bill: the image is pulled onto the host, inspected, charged by size and recorded', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 1000 });
  const reference = await pushUniqueImage();
  assert.equal(await inspectOn('host-b', reference), null, 'not on the host before');

  const res = await pull(app, user.token, { image: reference, host: 'host-b' });
  assert.equal(res.statusCode, 201, res.body);
  const image = res.json();
  const daemon = await inspectOn('host-b', reference);
  assert.ok(daemon, 'the image is in host-b’s daemon');
  assert.equal(image.imageId, daemon.Id);
  assert.equal(image.sizeBytes, daemon.Size);
  assert.equal(image.sizeMb, Math.round((daemon.Size / MB) * 10) / 10);
  assert.equal(image.host, 'host-b');
  assert.equal(image.reference, reference);
  assert.equal(image.visibility, 'private');
  const price = Math.ceil(daemon.Size / MB) * 1;
  assert.equal(image.charged, price);

  const [row] = await testDb().db.select().from(images).where(eq(images.id, image.id));
  assert.equal(row?.userId, user.id);
  assert.equal(row?.charged, price);
  assert.equal(await balanceOf(user.id), 1000 - price);
  const charges = (await ledgerOf(user.id)).filter((e) => e.kind === 'image_charge');
  assert.deepEqual(charges.map((e) => [e.amount, e.idempotencyKey]), [[-price, `image-charge-${image.pullId}`]]);
  // The database steps are local activities (markers, not scheduled tasks); the host's one step inspects, pulls and inspects.
  assert.deepEqual(await scheduledActivities(image.pullId), ['ensureImage']);
  assert.equal(await inspectOn('host-a', reference), null, 'the other host was not touched');
});

test('the httpd image records its exposed port', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 1000 });
  const res = await pull(app, user.token, { image: '127.0.0.1:5000/library/httpd' });
  assert.equal(res.statusCode, 201, res.body);
  assert.equal(res.json().reference, '127.0.0.1:5000/library/httpd:latest');
  assert.deepEqual(res.json().ports, ['80/tcp']);
});

test('dedup: the owner is not pulled or charged twice; another user pays but Docker does not pull', async (t) => {
  const app = await buildTestApp(t);
  const alice = await createUser(app, { balance: 1000 });
  const bob = await createUser(app, { balance: 1000 });
  const reference = await pushUniqueImage();
  const firstFrom = Date.now();
  const first = await pull(app, alice.token, { image: reference, host: 'host-a' });
  assert.equal(first.statusCode, 201);
  const balance = await balanceOf(alice.id);

  const again = await pull(app, alice.token, { image: reference, host: 'host-a' }, false);
  assert.equal(again.statusCode, 202);
  const status = await waitForPull(app, alice.token, again.json().pullId);
  assert.equal(status.state, 'completed');
  assert.equal(status.deduped, true);
  assert.equal(status.image.id, first.json().id);
  assert.equal(await balanceOf(alice.id), balance, 'no second charge');
  // Answered from PostgreSQL: no workflow was started for it (test/integration/pull-dedup.test.ts has the rest).
  await assert.rejects(temporal.workflow.getHandle(again.json().pullId).describe(), WorkflowNotFoundError);

  const bobFrom = Date.now();
  const byBob = await pull(app, bob.token, { image: reference, host: 'host-a' });
  assert.equal(byBob.statusCode, 201);
  assert.notEqual(byBob.json().id, first.json().id);
  assert.equal(await balanceOf(bob.id), 1000 - byBob.json().charged);
  assert.deepEqual(await scheduledActivities(byBob.json().pullId), ['ensureImage'], 'one host step for bob, which finds the image there');
  assert.equal(byBob.json().pullId === first.json().pullId, false);
  // The daemon's own record: one pull of this reference (alice's), none since bob asked.
  assert.equal((await pullEvents('host-a', reference, firstFrom)).length, 1, 'alice’s pull is in the daemon’s events');
  assert.equal((await pullEvents('host-a', reference, bobFrom)).length, 0, 'no registry download for bob');
});

/** The daemon's `pull` events for a reference since a time (ms since the epoch), up to now. */
async function pullEvents(hostId: string, reference: string, sinceMs: number): Promise<Array<{ Action: string; timeNano: number }>> {
  const stream = await dockerFor(hostId).getEvents({
    since: Math.floor(sinceMs / 1000),
    until: Math.ceil(Date.now() / 1000) + 1,
    filters: { type: ['image'], event: ['pull'], image: [reference] },
  });
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text.split('\n').filter((line) => line.trim()).map((line) => JSON.parse(line))
    .filter((event: { timeNano: number }) => event.timeNano / 1e6 >= sinceMs);
}

test('20 concurrent pulls of one image by one user: one record, one charge, one Docker pull', async (t) => {
  // The per-user pull limit is raised for this test of deduplication (the limit has its own test).
  const app = await buildTestApp(t, { pulls: { ...baseConfig.pulls, maxConcurrentPerUser: 20 } });
  const user = await createUser(app, { balance: 1000 });
  const reference = await pushUniqueImage();
  const from = Date.now();
  const results = await Promise.all(Array.from({ length: 20 }, () => pull(app, user.token, { image: reference, host: 'host-a' })));
  assert.deepEqual(results.map((r) => r.statusCode), Array(20).fill(201), results.map((r) => r.body).join('\n'));
  assert.equal(new Set(results.map((r) => r.json().id)).size, 1, 'every answer is the same record');
  const rows = await testDb().db.select().from(images).where(and(eq(images.userId, user.id), eq(images.reference, reference)));
  assert.equal(rows.length, 1);
  const charges = (await ledgerOf(user.id)).filter((e) => e.kind === 'image_charge');
  assert.equal(charges.length, 1, 'charged once');
  assert.equal(await balanceOf(user.id), 1000 - rows[0]!.charged);
  assert.equal((await pullEvents('host-a', reference, from)).length, 1, 'one Docker pull');
});

test('an unknown tag fails the workflow with the registry’s reason, once, with no charge', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 1000 });
  const res = await pull(app, user.token, { image: '127.0.0.1:5000/library/busybox:no-such-tag', host: 'host-a' });
  assert.equal(res.statusCode, 422, res.body);
  assert.equal(res.json().type, '/problems/image-not-found');
  assert.match(res.json().detail, /not found/);

  const started = await pull(app, user.token, { image: '127.0.0.1:5000/library/no-such-repo', host: 'host-b' }, false);
  const status = await waitForPull(app, user.token, started.json().pullId);
  assert.equal(status.state, 'failed');
  assert.equal(status.error.type, 'ImageNotFound');
  assert.match(status.error.message, /not found|unknown/);
  const history = await temporal.workflow.getHandle(started.json().pullId).fetchHistory();
  const attempts = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes && history.events!.find(
    (s) => s.eventId?.toString() === e.activityTaskStartedEventAttributes!.scheduledEventId?.toString() &&
      s.activityTaskScheduledEventAttributes?.activityType?.name === 'ensureImage'));
  assert.equal(attempts.length, 1, 'non-retryable: one attempt');
  assert.equal(attempts[0]!.activityTaskStartedEventAttributes!.attempt, 1);

  assert.equal(await balanceOf(user.id), 1000);
  assert.equal((await testDb().db.select().from(images).where(eq(images.userId, user.id))).length, 0);
});

test('bad references are a 400 saying why, and start nothing; bad hosts are a 422', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 1000 });
  const cases: Array<[string, RegExp]> = [
    ['Busybox', /lowercase/],
    ['busy box', /invalid/i],
    ['', /fewer than 1|must NOT have fewer/],
    ['busybox@sha256:abc', /digest/],
    [`${'a'.repeat(256)}`, /255/],
  ];
  for (const [image, why] of cases) {
    const res = await pull(app, user.token, { image }, false);
    assert.equal(res.statusCode, 400, `${image}: ${res.body}`);
    assert.match(res.json().detail, why, image);
  }
  const unknownHost = await pull(app, user.token, { image: 'busybox', host: 'host-z' }, false);
  assert.equal(unknownHost.statusCode, 422);
  assert.match(unknownHost.json().detail, /host-z.*not known/);

  const started = temporal.workflow.list({ query: `WorkflowType = '${pullImageWorkflow.type}'` });
  for await (const wf of started) assert.notEqual(wf.memo?.userId, user.id, 'no pull workflow started for these');

  // A registered host whose worker stopped heartbeating is down: named, a 422. (That it is never
  // picked, and which host is, is tested in serial/images.test.ts: the choice counts every
  // container on the stack.)
  const downHost = `down-${randomUUID().slice(0, 8)}`;
  await testDb().db.insert(hosts).values({ id: downHost, dockerEndpoint: 'unix:///nonexistent.sock', engineId: 'down', engineVersion: '0', lastHeartbeatAt: new Date(Date.now() - 3_600_000) });
  try {
    const named = await pull(app, user.token, { image: 'busybox', host: downHost }, false);
    assert.equal(named.statusCode, 422, named.body);
    assert.match(named.json().detail, new RegExp(`${downHost}.*down`));
  } finally {
    await testDb().db.delete(hosts).where(eq(hosts.id, downHost));
  }
});

test('references are normalized by the grammar', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 1000 });
  const res = await pull(app, user.token, { image: '127.0.0.1:5000/library/busybox', host: 'host-a' }, false);
  assert.equal(res.statusCode, 202);
  assert.equal(res.json().image, '127.0.0.1:5000/library/busybox:latest');
  assert.match(res.json().pullId, /^pull-[0-9a-f-]{36}$/);
  assert.equal((await waitForPull(app, user.token, res.json().pullId)).state, 'completed');
});

test('not enough balance: fails non-retryably, balance untouched, the image it pulled removed from the host, one that was there kept', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app);
  const reference = await pushUniqueImage();
  const res = await pull(app, user.token, { image: reference, host: 'host-a' });
  assert.equal(res.statusCode, 409, res.body);
  assert.equal(res.json().type, '/problems/insufficient-funds');
  assert.match(res.json().detail, /insufficient balance/);
  assert.equal(await balanceOf(user.id), 0);
  assert.equal((await ledgerOf(user.id)).length, 0);
  assert.equal((await testDb().db.select().from(images).where(eq(images.userId, user.id))).length, 0);
  assert.equal(await inspectOn('host-a', reference), null, 'nobody’s record uses it: removed from the host');

  // An image that was on the host before (pulled outside Berth, or by a DCU task) stays there.
  const present = await pushUniqueImage();
  const daemon = dockerFor('host-a');
  const stream = await daemon.pull(present);
  await new Promise<void>((resolve, reject) => daemon.modem.followProgress(stream, (error: Error | null) => (error ? reject(error) : resolve())));
  const before = await inspectOn('host-a', present);
  assert.ok(before);
  const refused = await pull(app, user.token, { image: present, host: 'host-a' });
  assert.equal(refused.statusCode, 409, refused.body);
  assert.match(refused.json().detail, /insufficient balance/);
  assert.equal((await inspectOn('host-a', present))?.Id, before.Id, 'the host is as it was');
  assert.equal((await ledgerOf(user.id)).length, 0);
  await dockerFor('host-a').getImage(present).remove();
});

test('progress: the pull reports state and streams Server-Sent Events to a done event', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 1000 });
  const reference = await pushUniqueImage();
  const res = await pull(app, user.token, { image: reference, host: 'host-a' }, false);
  assert.equal(res.statusCode, 202);
  const { pullId } = res.json();
  // Over real HTTP, as a browser's EventSource would read it.
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const events = await fetch(`${address}/api/v1/images/pulls/${pullId}/events`, { headers: bearer(user.token) });
  assert.equal(events.status, 200);
  assert.match(events.headers.get('content-type') ?? '', /text\/event-stream/);
  const body = await events.text(); // ends when the server closes the stream
  const parsed = body
    .trim()
    .split('\n\n')
    .map((block) => ({ event: /^event: (.*)$/m.exec(block)?.[1], data: JSON.parse(/^data: (.*)$/m.exec(block)![1]!) }));
  const last = parsed.at(-1)!;
  assert.equal(last.event, 'done');
  assert.equal(last.data.image.reference, reference);
  const progress = parsed.slice(0, -1);
  assert.ok(progress.length >= 1, 'progress was delivered before the end');
  assert.ok(progress.every((e) => e.event === 'progress'));
  const percents = progress.map((e) => e.data.percent as number);
  assert.deepEqual(percents, [...percents].sort((x, y) => x - y), `percent never goes back: ${percents.join(', ')}`);
  assert.equal(percents.at(-1), 100);
  assert.ok(progress.at(-1)!.data.bytesTotal > 0, 'bytes per layer add up to a total');

  // A pull that fails ends its stream with one error event carrying the registry's reason.
  const failing = await pull(app, user.token, { image: `${REGISTRY}/library/busybox:no-such-tag`, host: 'host-a' }, false);
  assert.equal(failing.statusCode, 202, failing.body);
  const failedBody = await (await fetch(`${address}/api/v1/images/pulls/${failing.json().pullId}/events`, { headers: bearer(user.token) })).text();
  const failedEvents = failedBody.trim().split('\n\n').map((block) => ({ event: /^event: (.*)$/m.exec(block)?.[1], data: JSON.parse(/^data: (.*)$/m.exec(block)![1]!) }));
  assert.equal(failedEvents.at(-1)!.event, 'error', failedBody);
  assert.match(JSON.stringify(failedEvents.at(-1)!.data), /not found|manifest unknown/i);
  assert.ok(failedEvents.slice(0, -1).every((e) => e.event === 'progress'));

  const status = await waitForPull(app, user.token, pullId);
  assert.equal(status.state, 'completed');
  assert.equal(status.progress.percent, 100);
  assert.ok(status.progress.bytesTotal > 0);
  assert.ok(Object.values(status.progress.layers).every((l) => ['Pull complete', 'Already exists'].includes((l as { status: string }).status)));

  const other = await createUser(app);
  const peek = await app.inject({ method: 'GET', url: `/api/v1/images/pulls/${pullId}`, headers: bearer(other.token) });
  assert.equal(peek.statusCode, 404, "someone else's pull is not found");
  const peekEvents = await app.inject({ method: 'GET', url: `/api/v1/images/pulls/${pullId}/events`, headers: bearer(other.token) });
  assert.equal(peekEvents.statusCode, 404);
});

test('listing, visibility, publishing', async (t) => {
  const app = await buildTestApp(t);
  const alice = await createUser(app, { balance: 1000 });
  const bob = await createUser(app, { balance: 1000 });
  const a1 = (await pull(app, alice.token, { image: await pushUniqueImage(), host: 'host-a' })).json();
  const a2 = (await pull(app, alice.token, { image: await pushUniqueImage(), host: 'host-b' })).json();
  const list = await app.inject({ method: 'GET', url: '/api/v1/images?pageSize=200', headers: bearer(alice.token) });
  const mine = list.json().items.filter((i: { userId: string }) => i.userId === alice.id);
  assert.deepEqual(mine.map((i: { id: string }) => i.id), [a2.id, a1.id], 'newest first');
  const page = await app.inject({ method: 'GET', url: '/api/v1/images?pageSize=1', headers: bearer(alice.token) });
  assert.equal(page.json().items.length, 1);
  assert.ok(page.json().total >= 2);

  const bobList = await app.inject({ method: 'GET', url: '/api/v1/images?pageSize=200', headers: bearer(bob.token) });
  assert.ok(!bobList.json().items.some((i: { userId: string; visibility: string }) => i.userId === alice.id && i.visibility === 'private'));
  assert.equal((await app.inject({ method: 'GET', url: `/api/v1/images/${a1.id}`, headers: bearer(bob.token) })).statusCode, 404);
  assert.equal((await app.inject({ method: 'DELETE', url: `/api/v1/images/${a1.id}`, headers: bearer(bob.token) })).statusCode, 404);

  const admin = await adminToken(app);
  const filtered = await app.inject({ method: 'GET', url: `/api/v1/images?userId=${alice.id}`, headers: bearer(admin) });
  assert.deepEqual(filtered.json().items.map((i: { id: string }) => i.id), [a2.id, a1.id]);

  assert.equal((await app.inject({ method: 'POST', url: `/api/v1/images/${a1.id}/publish`, headers: bearer(alice.token) })).statusCode, 403);
  const published = await app.inject({ method: 'POST', url: `/api/v1/images/${a1.id}/publish`, headers: bearer(admin) });
  assert.equal(published.json().visibility, 'public');
  const seen = await app.inject({ method: 'GET', url: `/api/v1/images/${a1.id}`, headers: bearer(bob.token) });
  assert.equal(seen.statusCode, 200);
  assert.equal(seen.json().visibility, 'public');
  assert.equal((await app.inject({ method: 'DELETE', url: `/api/v1/images/${a1.id}`, headers: bearer(bob.token) })).statusCode, 404, 'public is not bob’s to remove');
});

test('removal refunds once, deletes the record, and removes from the host only when unused', async (t) => {
  const app = await buildTestApp(t);
  const alice = await createUser(app, { balance: 1000 });
  const bob = await createUser(app, { balance: 1000 });
  const reference = await pushUniqueImage();
  const a = (await pull(app, alice.token, { image: reference, host: 'host-b' })).json();
  const b = (await pull(app, bob.token, { image: reference, host: 'host-b' })).json();

  const removeA = await app.inject({ method: 'DELETE', url: `/api/v1/images/${a.id}`, headers: bearer(alice.token) });
  assert.equal(removeA.statusCode, 200, removeA.body);
  assert.deepEqual(removeA.json(), { id: a.id, refunded: a.charged, host: 'kept' });
  assert.equal(await balanceOf(alice.id), 1000);
  const refunds = (await ledgerOf(alice.id)).filter((e) => e.kind === 'image_refund');
  assert.deepEqual(refunds.map((e) => [e.amount, e.idempotencyKey]), [[a.charged, `image-refund-${a.id}`]]);
  assert.equal((await testDb().db.select().from(images).where(eq(images.id, a.id))).length, 0);
  assert.ok(await inspectOn('host-b', reference), 'bob still uses it: kept on the host');

  const again = await app.inject({ method: 'DELETE', url: `/api/v1/images/${a.id}`, headers: bearer(alice.token) });
  assert.equal(again.statusCode, 404);
  assert.equal(await balanceOf(alice.id), 1000, 'refunded once');

  const removeB = await app.inject({ method: 'DELETE', url: `/api/v1/images/${b.id}`, headers: bearer(bob.token) });
  assert.deepEqual(removeB.json(), { id: b.id, refunded: b.charged, host: 'removed' });
  assert.equal(await inspectOn('host-b', reference), null, 'last record gone: removed from the host');
  assert.equal(await balanceOf(bob.id), 1000);
});

test('private registry: pulls with the configured credentials; without, unauthorized and no charge', async (t) => {
  // The same registry is also reached as localhost:5001, which an operator lists here as internal.
  const { registries } = baseConfig;
  const app = await buildTestApp(t, {
    registries: { ...registries, allowed: [...registries.allowed, 'localhost:5001'], internal: [...registries.internal, 'localhost:5001'] },
  });
  const user = await createUser(app, { balance: 1000 });
  const ok = await pull(app, user.token, { image: '127.0.0.1:5001/private/busybox:1.35', host: 'host-b' });
  assert.equal(ok.statusCode, 201, ok.body);
  assert.ok(ok.json().charged > 0);
  const balance = await balanceOf(user.id);

  // Same registry under a host name with no credentials configured.
  const denied = await pull(app, user.token, { image: 'localhost:5001/private/busybox:1.35', host: 'host-b' });
  assert.equal(denied.statusCode, 422, denied.body);
  assert.equal(denied.json().type, '/problems/registry-unauthorized');
  assert.match(denied.json().detail, /unauthorized/);
  assert.equal(await balanceOf(user.id), balance);
  const rows = await testDb().db.select().from(images).where(and(eq(images.userId, user.id), eq(images.reference, 'localhost:5001/private/busybox:1.35')));
  assert.equal(rows.length, 0);
});

/** The input a workflow was started with, from its history. */
async function startInput<T>(workflowId: string): Promise<T> {
  const history = await temporal.workflow.getHandle(workflowId).fetchHistory();
  return defaultPayloadConverter.fromPayload<T>(history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!);
}

test('the API fixes a pull’s price in its input; a pull started without one pays the control worker’s', async (t) => {
  // The stack's control worker charges BERTH_PRICE_PER_MB=1; this API says 3.
  const app = await buildTestApp(t, { pulls: { ...baseConfig.pulls, pricePerMb: 3 } });
  const user = await createUser(app, { balance: 1000 });
  const res = await pull(app, user.token, { image: await pushUniqueImage(), host: 'host-a' });
  assert.equal(res.statusCode, 201, res.body);
  const image = res.json();
  assert.equal(image.charged, Math.ceil(image.sizeBytes / MB) * 3);
  assert.equal((await startInput<PullImageInput>(image.pullId)).pricePerMb, 3);
  const [charge] = (await ledgerOf(user.id)).filter((e) => e.kind === 'image_charge');
  assert.deepEqual([charge?.amount, charge?.idempotencyKey], [-image.charged, `image-charge-${image.pullId}`]);

  // A pull started before the API fixed the price (no pricePerMb in its input): the worker's price.
  const ref = parseImageReference(await pushUniqueImage());
  const pullId = newPullId(randomUUID());
  const runs = createWorkflowRuns({ temporal, waitTimeoutMs: 120_000 });
  await runs.start(pullImageWorkflow, {
    workflowId: pullId,
    args: [{ pullId, userId: user.id, hostId: 'host-a', reference: ref.reference, repository: ref.repository, tag: ref.tag ?? null, digest: null }],
    subject: { userId: user.id, hostId: 'host-a', resourceId: pullId },
    memo: { userId: user.id },
  });
  const old = await runs.wait(pullImageWorkflow, pullId, { followAt: '-' });
  assert.equal(old.image.charged, Math.ceil(old.image.sizeBytes / MB) * 1);
});

test('a removal by the nightly release (releaseId in its input) refunds as release_refund, keyed as every image refund', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 1000 });
  const image = (await pull(app, user.token, { image: await pushUniqueImage(), host: 'host-b' })).json();
  assert.ok(image.charged > 0, JSON.stringify(image));
  const releaseId = `release-test-${randomUUID()}`;
  // Started as the release starts it: through the contract, with the release's id.
  const runs = createWorkflowRuns({ temporal, waitTimeoutMs: 120_000 });
  await runs.start(removeImageWorkflow, {
    workflowId: removeImageId(image.id),
    args: [{ imageId: image.id, hostId: image.host, reference: image.reference, reason: `nightly release ${releaseId}`, releaseId }],
    subject: { userId: user.id, hostId: image.host, resourceId: image.id },
  });
  const result = await runs.wait(removeImageWorkflow, removeImageId(image.id), { followAt: '-' });
  assert.deepEqual(result, { refunded: image.charged, host: 'removed' });
  const refunds = (await ledgerOf(user.id)).filter((e) => e.kind === 'image_refund' || e.kind === 'release_refund');
  assert.deepEqual(
    refunds.map((e) => [e.kind, e.amount, e.idempotencyKey, e.reason]),
    [['release_refund', image.charged, `image-refund-${image.id}`, `nightly release ${releaseId}`]],
  );
  assert.equal(await balanceOf(user.id), 1000);
  assert.equal((await testDb().db.select().from(images).where(eq(images.id, image.id))).length, 0);
  assert.equal(await inspectOn('host-b', image.reference), null);
});

test('a removal that outlasts BERTH_WAIT_TIMEOUT answers 504 and goes on to its end: refunded once, record gone', async (t) => {
  // A wait of 1 ms: no removal (a host step and a database step) ends within it.
  const app = await buildTestApp(t, { waitTimeoutMs: 1 });
  const user = await createUser(app, { balance: 1000 });
  const started = await pull(app, user.token, { image: await pushUniqueImage(), host: 'host-a' }, false);
  assert.equal(started.statusCode, 202, started.body);
  const { image } = await waitForPull(app, user.token, started.json().pullId);
  const res = await app.inject({ method: 'DELETE', url: `/api/v1/images/${image.id}`, headers: bearer(user.token) });
  assert.equal(res.statusCode, 504, res.body);
  assert.equal(res.json().type, '/problems/timeout');
  assert.equal(res.json().detail, `The removal is still running; follow it at /api/v1/images/${image.id}.`);
  assert.deepEqual(await temporal.workflow.getHandle(removeImageId(image.id)).result(), { refunded: image.charged, host: 'removed' });
  assert.equal(await balanceOf(user.id), 1000);
  assert.equal((await ledgerOf(user.id)).filter((e) => e.kind === 'image_refund').length, 1);
  assert.equal((await app.inject({ method: 'GET', url: `/api/v1/images/${image.id}`, headers: bearer(user.token) })).statusCode, 404);
});
