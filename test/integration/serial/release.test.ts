/**
 * The nightly release removes every container and every private image on the stack, and these
 * tests kill the control worker and pause the release schedule: they run in the serial pass
 * (scripts/test.sh), after every other test, alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { and, desc, eq, gt, inArray } from 'drizzle-orm';
import { auditLog, containers, images, ledgerEntries, releaseRuns, users } from '../../../db/schema.js';
import { LABEL_ID, LABEL_USER } from '../../../core/container-labels.js';
import { connectTemporal } from '../../../core/temporal.js';
import { CONTROL_TASK_QUEUE } from '../../../core/temporal-names.js';
import { RELEASE_SCHEDULE_ID } from '../../../contracts/nightly-release.js';
import { loadControlWorkerConfig } from '../../../core/config.js';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import { adminToken, baseConfig, bearer, buildTestApp, createUser, testDb, type TestUser } from '../../support/app.js';
import { HOST_IDS, dockerFor, killStackProcess, stackStart } from '../../support/stack.js';
import { pushUniqueImage } from '../../support/images.js';
import type { App } from '../../../api/app.js';

const exec = promisify(execFile);
const TEMPORAL_CLI = join(process.env.BERTH_TOOLS_DIR ?? join(homedir(), '.cache', 'berth'), 'bin', 'temporal');
const cli = (...args: string[]) => exec(TEMPORAL_CLI, [...args, '--address', baseConfig.temporal.address]);
const trigger = () => cli('schedule', 'trigger', '--schedule-id', 'berth-nightly-release');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function pull(app: App, user: TestUser, image: string, host: string) {
  const res = await app.inject({ method: 'POST', url: '/api/v1/images/pull?wait=true', headers: bearer(user.token), payload: { image, host } });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<{ id: string; charged: number; reference: string }>();
}
async function run(app: App, user: TestUser, imageId: string, extra: Record<string, unknown> = {}) {
  const res = await app.inject({ method: 'POST', url: '/api/v1/containers?wait=true', headers: bearer(user.token), payload: { imageId, ...extra } });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<{ id: string }>();
}

/** Runs that started after `since`, waiting until none is running and at least one exists. */
async function runsSince(since: Date, seconds = 180) {
  for (let i = 0; i < seconds * 2; i++) {
    const rows = await testDb().db.select().from(releaseRuns).where(gt(releaseRuns.startedAt, since)).orderBy(desc(releaseRuns.startedAt));
    if (rows.length > 0 && rows.every((r) => r.status !== 'running')) return rows;
    await sleep(500);
  }
  throw new Error('the release did not finish');
}

async function berthContainersIn(hostId: string) {
  return dockerFor(hostId).listContainers({ all: true, filters: { label: [LABEL_ID] } });
}

test('nightly release: every container, then every private image, refunded once; public images stay; failures reported', async (t) => {
  const app = await buildTestApp(t);
  // Carol's container is made with short billing periods, so that it gets suspended.
  const shortPeriods = await buildTestApp(t, { containers: { ...baseConfig.containers, prices: { base: 5, perCpu: 0, perGbMemory: 0 }, billingPeriodMs: 1500 } });
  const admin = await adminToken(app);
  const alice = await createUser(app, { balance: 10_000 });
  const bob = await createUser(app, { balance: 10_000 });
  const carol = await createUser(app, { balance: 10_000 });

  const [refB1, refC1, refC2, refPublic] = await Promise.all([pushUniqueImage('release'), pushUniqueImage('release'), pushUniqueImage('release'), pushUniqueImage('release')]);
  const [a1, b1, c1, c2, publicImage, b2] = await Promise.all([
    pull(app, alice, '127.0.0.1:5000/library/httpd:latest', 'host-a'),
    pull(app, bob, refB1, 'host-b'),
    pull(app, carol, refC1, 'host-a'),
    pull(app, carol, refC2, 'host-b'),
    pull(app, alice, refPublic, 'host-b'),
    pull(app, bob, '127.0.0.1:5000/library/httpd:latest', 'host-b'),
  ]);
  assert.equal((await app.inject({ method: 'POST', url: `/api/v1/images/${publicImage.id}/publish`, headers: bearer(admin) })).statusCode, 200);

  const running = await run(app, alice, a1.id);
  const stopped = await run(app, bob, b2.id);
  assert.equal((await app.inject({ method: 'POST', url: `/api/v1/containers/${stopped.id}/stop`, headers: bearer(bob.token) })).json().state, 'stopped');
  const suspended = await run(shortPeriods, carol, c1.id, { containerPort: 8080, cmd: ['sleep', '600'] });
  await testDb().db.update(users).set({ balance: 0 }).where(eq(users.id, carol.id));
  for (let i = 0; i < 60 && (await testDb().db.select().from(containers).where(eq(containers.id, suspended.id)))[0]!.state !== 'suspended'; i++) await sleep(250);
  assert.equal((await testDb().db.select().from(containers).where(eq(containers.id, suspended.id)))[0]!.state, 'suspended');

  // A container started outside Berth keeps c2 in use: its removal must fail and be reported.
  const outside = await dockerFor('host-b').createContainer({ Image: c2.reference, Cmd: ['sleep', '600'] });
  await outside.start();
  t.after(() => outside.remove({ force: true }).catch(() => undefined));

  // A Berth-labelled container whose record is gone (Docker kept it): the release removes it too.
  const orphanId = randomUUID();
  const orphan = await dockerFor('host-a').createContainer({
    Image: '127.0.0.1:5000/library/httpd:latest',
    Cmd: ['sleep', '600'],
    Labels: { [LABEL_ID]: orphanId, [LABEL_USER]: alice.id },
  });
  await orphan.start();
  t.after(() => orphan.remove({ force: true }).catch(() => undefined));

  const balances = new Map<string, number>();
  for (const u of [alice, bob, carol]) balances.set(u.id, (await testDb().db.select().from(users).where(eq(users.id, u.id)))[0]!.balance);

  // Two triggers at once: the schedule's overlap policy makes them one run.
  const since = new Date(Date.now() - 1000);
  await Promise.all([trigger(), trigger()]);
  const runs = await runsSince(since);
  assert.equal(runs.length, 1, 'two triggers at once: one run');
  const release = runs[0]!;
  assert.equal(release.status, 'completed');

  for (const hostId of HOST_IDS) assert.deepEqual(await berthContainersIn(hostId), [], `no Berth container left on ${hostId}`);
  await assert.rejects(orphan.inspect(), /no such container/i, 'the orphan is gone');
  const ours = [running.id, stopped.id, suspended.id];
  const rows = await testDb().db.select().from(containers).where(inArray(containers.id, ours));
  assert.ok(rows.every((r) => r.state === 'removed' && r.removedAt), 'removed through their workflows');

  const left = await testDb().db.select().from(images).where(inArray(images.id, [a1.id, b1.id, b2.id, c1.id, c2.id, publicImage.id]));
  assert.deepEqual(left.map((i) => i.id).sort(), [c2.id, publicImage.id].sort(), 'only the public image and the one in use remain');
  assert.ok(await dockerFor('host-b').getImage(publicImage.reference).inspect(), 'the public image is still on its host');
  await assert.rejects(dockerFor('host-b').getImage(b1.reference).inspect(), /no such image/i);
  await assert.rejects(dockerFor('host-a').getImage(c1.reference).inspect(), /no such image/i, 'gone from host-a too, once its suspended container was removed');
  assert.ok(await dockerFor('host-b').getImage(c2.reference).inspect(), 'the image a container outside Berth uses stays');

  for (const [user, imgs] of [[alice, [a1]], [bob, [b1, b2]], [carol, [c1]]] as const) {
    const refunds = await testDb().db.select().from(ledgerEntries).where(and(eq(ledgerEntries.userId, user.id), eq(ledgerEntries.kind, 'release_refund')));
    assert.equal(refunds.length, imgs.length, `${user.username}: one refund per image`);
    assert.ok(refunds.every((e) => e.reason === `nightly release ${release.id}`));
    const refunded = imgs.reduce((sum, i) => sum + i.charged, 0);
    assert.equal(refunds.reduce((sum, e) => sum + e.amount, 0), refunded, `${user.username}: refunded exactly what was charged`);
    const balance = (await testDb().db.select().from(users).where(eq(users.id, user.id)))[0]!.balance;
    assert.equal(balance, balances.get(user.id)! + refunded, `${user.username}: the balance moved by the refunds only`);
  }

  // Its removals are findable by owner, host and image: in the audit log (the release removes
  // images in batches, with no removeImage workflow of its own per image since patch release-batches).
  for (const [user, image, hostId] of [[bob, b1, 'host-b'], [carol, c1, 'host-a']] as const) {
    const [entry] = await testDb().db.select().from(auditLog).where(and(eq(auditLog.action, 'release.removeImage'), eq(auditLog.targetId, image.id)));
    assert.deepEqual([entry?.subjectUserId, entry?.detail?.hostId, entry?.workflowId], [user.id, hostId, release.id]);
  }

  const report = await app.inject({ method: 'GET', url: `/api/v1/admin/releases/${release.id}`, headers: bearer(admin) });
  assert.equal(report.statusCode, 200);
  const body = report.json();
  assert.ok(body.containers.removed >= 4, "three through their workflows and the orphan");
  assert.equal(body.containers.failed, 0);
  assert.ok(body.images.removed >= 4);
  assert.ok(body.refundedTotal >= a1.charged + b1.charged + b2.charged + c1.charged);
  const failure = body.failures.find((f: { id: string }) => f.id === c2.id);
  assert.ok(failure, 'the image in use is reported');
  assert.match(failure.reason, /in use/);

  // Audited as the system's actions on each user's things, with the release's workflow id.
  const audit = async (action: string, targetId: string) =>
    testDb().db.select().from(auditLog).where(and(eq(auditLog.action, action), eq(auditLog.targetId, targetId), eq(auditLog.workflowId, release.id)));
  for (const [c, owner] of [[running, alice], [stopped, bob], [suspended, carol]] as const) {
    const rows = await audit('release.removeContainer', c.id);
    assert.equal(rows.length, 1, `one removal of ${c.id}: ${JSON.stringify(rows)}`);
    assert.deepEqual([rows[0]!.actorType, rows[0]!.outcome, rows[0]!.targetType, rows[0]!.subjectUserId], ['system', 'success', 'container', owner.id]);
  }
  const orphanRows = await audit('release.removeContainer', orphanId);
  assert.equal(orphanRows.length, 1, 'the orphan, with the owner its label names');
  assert.deepEqual([orphanRows[0]!.subjectUserId, orphanRows[0]!.detail?.orphan], [alice.id, true]);
  for (const [image, owner] of [[a1, alice], [b1, bob], [b2, bob], [c1, carol]] as const) {
    const rows = await audit('release.removeImage', image.id);
    assert.equal(rows.length, 1, `one removal of ${image.reference}: ${JSON.stringify(rows)}`);
    assert.deepEqual([rows[0]!.actorType, rows[0]!.outcome, rows[0]!.targetType, rows[0]!.subjectUserId], ['system', 'success', 'image', owner.id]);
    assert.equal(rows[0]!.detail?.refunded, image.charged, 'the amount refunded');
  }
  const [inUse] = await audit('release.removeImage', c2.id);
  assert.deepEqual([inUse?.outcome, inUse?.subjectUserId], ['failure', carol.id], 'the image in use: a failure, with its reason');
  assert.match(String(inUse!.detail?.reason), /in use/);
  // Carol's suspension for want of money, by her container's workflow.
  const [suspension] = await testDb().db.select().from(auditLog).where(and(eq(auditLog.action, 'container.suspend'), eq(auditLog.targetId, suspended.id)));
  assert.deepEqual([suspension?.actorType, suspension?.subjectUserId, suspension?.workflowId], ['system', carol.id, `container-${suspended.id}`]);

  const overview = await app.inject({ method: 'GET', url: '/api/v1/admin/releases', headers: bearer(admin) });
  assert.equal(overview.json().schedule.id, 'berth-nightly-release');
  assert.ok(overview.json().schedule.nextRuns.length > 0);
  assert.equal(overview.json().items[0].id, release.id);
  const denied = await app.inject({ method: 'GET', url: '/api/v1/admin/releases', headers: bearer(alice.token) });
  assert.equal(denied.statusCode, 403);

  // Running it again refunds nothing twice.
  const again = new Date();
  const viaApi = await app.inject({ method: 'POST', url: '/api/v1/admin/releases', headers: bearer(admin) });
  assert.equal(viaApi.statusCode, 202);
  await runsSince(again);
  for (const user of [alice, bob, carol]) {
    const refunds = await testDb().db.select().from(ledgerEntries).where(and(eq(ledgerEntries.userId, user.id), eq(ledgerEntries.kind, 'release_refund')));
    assert.equal(new Set(refunds.map((r) => r.idempotencyKey)).size, refunds.length);
  }
  // Nor audits a removal twice: each removed image has its one entry, the first run's.
  const removals = await testDb().db.select().from(auditLog).where(and(eq(auditLog.action, 'release.removeImage'), eq(auditLog.outcome, 'success'), inArray(auditLog.targetId, [a1.id, b1.id, b2.id, c1.id])));
  assert.deepEqual(removals.map((r) => r.workflowId), [release.id, release.id, release.id, release.id]);
});

test('nightly release survives the control worker being killed mid-run, with no double refund', async (t) => {
  const app = await buildTestApp(t);
  // Four users with two pulls each, all at once: within the pulls in flight one user may have.
  const users_ = await Promise.all(Array.from({ length: 4 }, () => createUser(app, { balance: 100_000 })));
  const pulled: Array<{ id: string; charged: number; userId: string }> = await Promise.all(
    Array.from({ length: 8 }, async (_, i) => {
      const user = users_[i % 4]!;
      const image = await pull(app, user, await pushUniqueImage('crash'), HOST_IDS[i % 2]!);
      return { ...image, userId: user.id };
    }),
  );
  const since = new Date(Date.now() - 1000);
  await trigger();
  // Kill the control worker as soon as the run has started.
  for (let i = 0; i < 100; i++) {
    const rows = await testDb().db.select().from(releaseRuns).where(gt(releaseRuns.startedAt, since));
    if (rows.length) break;
    await sleep(100);
  }
  await killStackProcess('worker-control');
  await stackStart('worker-control');

  const runs = await runsSince(since);
  assert.equal(runs.length, 1);
  assert.equal(runs[0]!.status, 'completed');
  const left = await testDb().db.select().from(images).where(inArray(images.id, pulled.map((p) => p.id)));
  assert.equal(left.length, 0, 'every image released');
  for (const image of pulled) {
    const refunds = await testDb().db.select().from(ledgerEntries).where(eq(ledgerEntries.idempotencyKey, `image-refund-${image.id}`));
    assert.equal(refunds.length, 1);
    assert.equal(refunds[0]!.amount, image.charged);
  }
});

test('a long release continues as new between batches, carrying its report, and refunds once', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 100_000 });
  const pulled: Array<{ id: string; charged: number; reference: string }> = [];
  for (let i = 0; i < 5; i++) pulled.push(await pull(app, user, await pushUniqueImage('can'), HOST_IDS[i % 2]!));

  // Batches of two and a tiny history budget: every batch ends the run and a new one goes on.
  const temporal = await connectTemporal(baseConfig.temporal);
  t.after(() => temporal.connection.close());
  const workflowId = `release-can-${randomUUID()}`;
  const handle = await temporal.workflow.start('nightlyRelease', {
    taskQueue: CONTROL_TASK_QUEUE,
    workflowId,
    args: [{ concurrency: 2, batchSize: 2, historyLimit: 10 }],
  });
  const report = (await handle.result()) as { images: { removed: number; failed: number }; refundedTotal: number };

  const first = await temporal.workflow.getHandle(workflowId, handle.firstExecutionRunId).describe();
  assert.equal(first.status.name, 'CONTINUED_AS_NEW');
  let runCount = 0;
  for await (const run of temporal.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    assert.ok(['CONTINUED_AS_NEW', 'COMPLETED'].includes(run.status.name), run.status.name);
    runCount++;
  }
  assert.ok(runCount >= 3, `runs in the chain: ${runCount}`);

  assert.ok(report.images.removed >= pulled.length, 'the report carried every batch');
  const left = await testDb().db.select().from(images).where(inArray(images.id, pulled.map((p) => p.id)));
  assert.deepEqual(left, [], 'every image released');
  const refunds = await testDb().db.select().from(ledgerEntries).where(and(eq(ledgerEntries.userId, user.id), eq(ledgerEntries.kind, 'release_refund')));
  assert.equal(refunds.length, pulled.length, 'one refund per image');
  assert.ok(refunds.every((e) => e.reason === `nightly release ${workflowId}`), 'the release is the reason, across runs');
  assert.equal(refunds.reduce((sum, e) => sum + e.amount, 0), pulled.reduce((sum, p) => sum + p.charged, 0));
  const [row] = await testDb().db.select().from(releaseRuns).where(eq(releaseRuns.id, workflowId));
  assert.equal(row?.status, 'completed', 'one stored run for the whole chain');
  assert.equal(row?.refundedTotal, report.refundedTotal);
});

test('the schedule: the configured cron in its timezone, overlap skip, a short catch-up window; a pause from the CLI holds', async (t) => {
  const { release } = loadControlWorkerConfig(process.env);
  assert.deepEqual([release.cron, release.timezone], ['30 23 * * *', 'UTC'], 'the stack runs the defaults');
  const temporal = await connectTemporal(baseConfig.temporal);
  t.after(() => temporal.connection.close());
  const handle = temporal.schedule.getHandle(RELEASE_SCHEDULE_ID);
  const schedule = await handle.describe();
  assert.equal(schedule.action.type, 'startWorkflow');
  assert.equal(schedule.action.type === 'startWorkflow' && schedule.action.workflowType, 'nightlyRelease');
  assert.equal(schedule.spec.timezone, 'UTC');
  assert.equal(schedule.policies.overlap, ScheduleOverlapPolicy.SKIP);
  assert.equal(schedule.policies.catchupWindow, 10 * 60_000);
  const next = schedule.info.nextActionTimes;
  assert.ok(next.length >= 2);
  for (const at of next) assert.deepEqual([at.getUTCHours(), at.getUTCMinutes(), at.getUTCSeconds()], [23, 30, 0], at.toISOString());
  assert.equal(next[1]!.getTime() - next[0]!.getTime(), 24 * 3600_000, 'once a day');

  // Paused by an operator with the real CLI, then resumed.
  await cli('schedule', 'toggle', '--schedule-id', RELEASE_SCHEDULE_ID, '--pause', '--reason', 'berth test');
  try {
    const paused = await handle.describe();
    assert.equal(paused.state.paused, true);
    assert.equal(paused.state.note, 'berth test');
  } finally {
    await cli('schedule', 'toggle', '--schedule-id', RELEASE_SCHEDULE_ID, '--unpause', '--reason', 'berth test done');
  }
  assert.equal((await handle.describe()).state.paused, false);
});
