/**
 * Starts whose outcome Temporal left unknown, made real by a loopback gRPC proxy in front of
 * Temporal's frontend (test/support/grpc-fault-proxy.ts) between the in-process API and the
 * stack's Temporal:
 * - a start that Temporal carried out but answered DEADLINE_EXCEEDED is found started by the
 *   API's next attempt with the same id, and the container runs, charged once;
 * - a start that never arrived while the API tried (held by the proxy) is answered 503 and its
 *   record released; when the held start then lands, the run finds its record released and ends
 *   without creating a Docker container and without charging (patch container-late-start),
 *   for a price above 0 (told by the charge) and of 0 (asked by a local activity);
 * - a pull whose start is held keeps its slot, and the late run does the pull the user asked for.
 * The workflows run on whichever worker polls the namespace: run it against a worker of this
 * code (BERTH_TEMPORAL_NAMESPACE of a private stack, or the stack restarted on merged code).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { and, eq, like } from 'drizzle-orm';
import { containers, images, ledgerEntries, pullSlots } from '../../db/schema.js';
import { connectTemporal } from '../../core/temporal.js';
import { LABEL_USER, dockerName } from '../../core/container-labels.js';
import { balanceOf, baseConfig, bearer, buildTestApp, createUser, testDb, type TestUser } from '../support/app.js';
import { BUSYBOX, containersConfig, flatPrice, idler, pull, removeContainer, rowOf } from '../support/containers.js';
import { dockerFor } from '../support/stack.js';
import { activityRuns } from '../support/history.js';
import { eventually } from '../support/wait.js';
import { startGrpcFaultProxy } from '../support/grpc-fault-proxy.js';
import { pullRequest } from '../support/images.js';
import { containerWorkflowId, type ContainerView } from '../../contracts/container.js';
import type { App } from '../../api/app.js';
import type { TestContext } from 'node:test';

const temporal = await connectTemporal(baseConfig.temporal);
test.after(() => temporal.connection.close());

const HOST = 'host-a';

/** An app whose Temporal client goes through a fault proxy, a user of its own and busybox pulled for them. */
async function setUp(t: TestContext, price: number) {
  const proxy = await startGrpcFaultProxy(baseConfig.temporal.address);
  const app = await buildTestApp(t, { containers: containersConfig({ prices: flatPrice(price) }) }, { temporalAddress: proxy.address });
  // After the app's close (after-hooks run in the order they were registered).
  t.after(() => proxy.close());
  const user = await createUser(app, { balance: 100_000 });
  const imageId = await pull(app, user, BUSYBOX, HOST);
  return { proxy, app, user, imageId };
}

/** The user's container ledger entries (charges and refunds). */
const containerEntries = (userId: string) =>
  testDb().db.select().from(ledgerEntries).where(and(eq(ledgerEntries.userId, userId), like(ledgerEntries.kind, 'container_%')));

/** The user's only container record (a 503 answers no id). */
async function onlyRecordOf(userId: string) {
  const rows = await testDb().db.select().from(containers).where(eq(containers.userId, userId));
  assert.equal(rows.length, 1, 'one record admitted');
  return rows[0]!;
}

/** Docker `create` events of the user's containers on the host, from now until stop(). */
async function watchCreates(user: TestUser) {
  const events = (await dockerFor(HOST).getEvents({
    filters: { type: ['container'], event: ['create'], label: [`${LABEL_USER}=${user.id}`] },
  })) as NodeJS.ReadableStream & { destroy(): void };
  const seen: unknown[] = [];
  events.on('data', (chunk: Buffer) => seen.push(chunk.toString()));
  return {
    stop() {
      events.destroy();
      return seen;
    },
  };
}

/**
 * The late start of a released record: the held start sent to Temporal; the run completes
 * without a Docker container, a ledger entry or a change to the record.
 */
async function assertLateStartDoesNothing(proxy: Awaited<ReturnType<typeof startGrpcFaultProxy>>, user: TestUser, id: string, balanceBefore: number) {
  const creates = await watchCreates(user);
  assert.equal(await proxy.sendHeld(), '0', 'Temporal took the held start');
  const view = (await temporal.workflow.getHandle(containerWorkflowId(id)).result()) as ContainerView;
  assert.equal(view.status, 'failed');
  assert.equal(view.reasonCode, 'start_failed');
  assert.equal(view.charged, 0);
  // Its run started (the late start is real) and scheduled no host step.
  const runs = await activityRuns(temporal, containerWorkflowId(id));
  assert.deepEqual(
    runs.map((r) => r.type),
    [],
    'no activity scheduled: no createAndStartContainer, no removal',
  );
  assert.deepEqual(creates.stop(), [], 'no Docker container created for the user');
  await assert.rejects(dockerFor(HOST).getContainer(dockerName(id)).inspect(), (e: { statusCode?: number }) => e.statusCode === 404);
  assert.deepEqual(await containerEntries(user.id), [], 'no container charge or refund');
  assert.equal(await balanceOf(user.id), balanceBefore);
  const row = await rowOf(id);
  assert.equal(row.state, 'failed');
  assert.equal(row.stateReasonCode, 'start_failed');
  assert.equal(row.charged, 0);
}

/**
 * Every call of `method` held by the proxy while the API tries: 503 "could not be confirmed
 * started" after the first attempt and three more, the record released; then the held call lands.
 */
async function heldThenLanded(t: TestContext, method: string, url: string, price: number) {
  const { proxy, app, user, imageId } = await setUp(t, price);
  const balanceBefore = await balanceOf(user.id);
  proxy.fault({ method, mode: 'hold', times: 100 });
  const res = await app.inject({ method: 'POST', url, headers: bearer(user.token), payload: idler(imageId) });
  assert.equal(res.statusCode, 503, res.body);
  assert.match(res.json<{ detail: string }>().detail, /could not be confirmed started; try again shortly \(.*deadline exceeded/);
  assert.equal(proxy.calls(method), 4, 'the first attempt and three more with the same id');
  const row = await onlyRecordOf(user.id);
  assert.equal(row.state, 'failed');
  assert.equal(row.stateReasonCode, 'start_failed');
  assert.ok(row.removedAt, 'its port and slot handed back');
  await assertLateStartDoesNothing(proxy, user, row.id, balanceBefore);
}

test('a start held past every attempt: 503, the record released; when it lands, the run creates nothing and charges nothing', (t) =>
  heldThenLanded(t, 'StartWorkflowExecution', '/api/v1/containers', 5));

test('?wait=true, price 0: an update-with-start held past every attempt lands late and does nothing', (t) =>
  heldThenLanded(t, 'ExecuteMultiOperation', '/api/v1/containers?wait=true', 0));

/** The container runs, charged exactly once, then is removed through the API. */
async function assertRunsChargedOnce(app: App, user: TestUser, id: string) {
  await eventually('running', async () => (await rowOf(id)).state === 'running', 60);
  const charges = await containerEntries(user.id);
  assert.equal(charges.length, 1, 'one period charged');
  assert.equal(charges[0]!.kind, 'container_charge');
  assert.equal((await dockerFor(HOST).getContainer(dockerName(id)).inspect()).State.Running, true);
  await removeContainer(app, user, id);
}

/**
 * The first call of `method` carried out by Temporal but answered DEADLINE_EXCEEDED: the API's
 * next attempt finds the run, and the answer is `status` with the container, which runs.
 */
async function answeredLate(t: TestContext, method: string, url: string, status: number) {
  const { proxy, app, user, imageId } = await setUp(t, 5);
  proxy.fault({ method, mode: 'answerLate', times: 1 });
  const res = await app.inject({ method: 'POST', url, headers: bearer(user.token), payload: idler(imageId) });
  assert.equal(res.statusCode, status, res.body);
  assert.equal(proxy.calls(method), 2, 'the first attempt (done, answered late) and one that found the run');
  const body = res.json<{ id: string; state: string }>();
  if (status === 201) assert.equal(body.state, 'running');
  await assertRunsChargedOnce(app, user, body.id);
}

test('a start Temporal carried out but answered DEADLINE_EXCEEDED: found started by the next attempt, 202, the container runs', (t) =>
  answeredLate(t, 'StartWorkflowExecution', '/api/v1/containers', 202));

test('?wait=true: an update-with-start Temporal carried out but answered DEADLINE_EXCEEDED: the same update on the run, 201 running', (t) =>
  answeredLate(t, 'ExecuteMultiOperation', '/api/v1/containers?wait=true', 201));

test('an outcome unknown to the API while the run has charged: the record is not released, the answer is the started container', async (t) => {
  const { proxy, app, user, imageId } = await setUp(t, 5);
  // Every attempt reaches Temporal (the first starts the run) and every answer is a deadline:
  // the API cannot confirm, and its release finds the record charged by the run.
  proxy.fault({ method: 'StartWorkflowExecution', mode: 'answerLate', times: 100 });
  const res = await app.inject({ method: 'POST', url: '/api/v1/containers', headers: bearer(user.token), payload: idler(imageId) });
  const row = await onlyRecordOf(user.id);
  if (res.statusCode === 503) {
    // The run had not charged before the API's release (a slow machine): the release stands, and
    // the run, finding its record released, ended without creating anything.
    assert.equal(row.stateReasonCode, 'start_failed');
    const view = (await temporal.workflow.getHandle(containerWorkflowId(row.id)).result()) as ContainerView;
    assert.equal(view.status, 'failed');
    assert.deepEqual(await containerEntries(user.id), []);
    t.diagnostic('the run had not charged within the attempts: released (the other consistent outcome)');
    return;
  }
  assert.equal(res.statusCode, 202, res.body);
  assert.equal(res.json<{ id: string }>().id, row.id);
  await assertRunsChargedOnce(app, user, row.id);
});

test('a pull whose start is held past every attempt: 503, its slot kept; landed late, the pull runs, charged once and recorded', async (t) => {
  const proxy = await startGrpcFaultProxy(baseConfig.temporal.address);
  const app = await buildTestApp(t, {}, { temporalAddress: proxy.address });
  t.after(() => proxy.close());
  const user = await createUser(app, { balance: 100_000 });
  proxy.fault({ method: 'StartWorkflowExecution', mode: 'hold', times: 100 });
  const res = await pullRequest(app, user.token, { image: BUSYBOX, host: HOST });
  assert.equal(res.statusCode, 503, res.body);
  assert.equal(proxy.calls('StartWorkflowExecution'), 4);
  const slots = await testDb().db.select().from(pullSlots).where(eq(pullSlots.userId, user.id));
  assert.equal(slots.length, 1);
  assert.equal(slots[0]!.releasedAt, null, 'the slot is kept: the run may exist');
  // Landed late, the pull does what the user asked: the image is theirs, charged once.
  assert.equal(await proxy.sendHeld(), '0');
  await temporal.workflow.getHandle(slots[0]!.pullId).result();
  const owned = await testDb().db.select().from(images).where(eq(images.userId, user.id));
  assert.equal(owned.length, 1);
  const charges = await testDb().db.select().from(ledgerEntries).where(and(eq(ledgerEntries.userId, user.id), eq(ledgerEntries.kind, 'image_charge')));
  assert.equal(charges.length, 1);
});
