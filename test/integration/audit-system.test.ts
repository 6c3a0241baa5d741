/**
 * What the system does to users' things is in the audit log (actor `system`, the workflow's id,
 * the owner as subject): a container suspended for want of money and the states reconciliation
 * records, on the real stack; the writes of every audited activity (containers, the nightly
 * release's removals and refunds, the DCU cleanups) run directly on the real database, retried,
 * to show each entry is written once; and the audit retention schedule, triggered with the
 * temporal CLI, deleting only entries older than its days. The release's and the cleanups' runs
 * on the stack are checked in the serial pass (test/integration/serial/release.test.ts, dcu.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { and, eq, inArray, sql } from 'drizzle-orm';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type { Info } from '@temporalio/activity';
import { auditLog, containers, dcuTasks, images, users } from '../../db/schema.js';
import { connectTemporal } from '../../core/temporal.js';
import { loadControlWorkerConfig } from '../../core/config.js';
import { dockerName } from '../../core/container-labels.js';
import { containerWorkflowId } from '../../contracts/container.js';
import { AUDIT_RETENTION_SCHEDULE_ID } from '../../contracts/audit-retention.js';
import type { AuditRetentionResult } from '../../contracts/audit-retention.js';
import type { ReleaseReport } from '../../contracts/nightly-release.js';
import { createContainerDbActivities } from '../../activities/containers-db.js';
import { createImageDbActivities } from '../../activities/images-db.js';
import { createReleaseActivities } from '../../activities/release.js';
import { createDcuDbActivities } from '../../activities/dcu-db.js';
import { createAuditDbActivities } from '../../activities/audit-db.js';
import { baseConfig, bearer, buildTestApp, createUser, testDb, type TestUser } from '../support/app.js';
import { cleanupScope, containersConfig, flatPrice, pullHttpd, rowOf, run } from '../support/containers.js';
import { dockerFor } from '../support/stack.js';
import { triggerScheduleAndWait } from '../support/schedules.js';
import { eventually } from '../support/wait.js';

const temporal = await connectTemporal(baseConfig.temporal);
test.after(() => temporal.connection.close());

const DAY_MS = 86_400_000;
type AuditRow = typeof auditLog.$inferSelect;

/** The entries of `action` about `targetId`, oldest first. */
const auditOf = (action: string, targetId: string): Promise<AuditRow[]> =>
  testDb().db.select().from(auditLog).where(and(eq(auditLog.action, action), eq(auditLog.targetId, targetId))).orderBy(auditLog.id);

/** Waits for `n` entries of `action` about `targetId` (the activity writes them as the state is recorded). */
const auditEventually = (action: string, targetId: string, n = 1) =>
  eventually(`${n} ${action} entr${n === 1 ? 'y' : 'ies'} for ${targetId}`, async () => {
    const rows = await auditOf(action, targetId);
    return rows.length >= n && rows;
  });

/** The system's entry about the user's thing, by the workflow named. */
function assertSystemEntry(row: AuditRow | undefined, expected: { subject: string | null; workflowId: string; targetType: string; outcome?: string }) {
  assert.ok(row, 'an entry');
  assert.equal(row.actorType, 'system');
  assert.equal(row.actorUserId, null);
  assert.equal(row.subjectUserId, expected.subject);
  assert.equal(row.workflowId, expected.workflowId);
  assert.equal(row.targetType, expected.targetType);
  assert.equal(row.outcome, expected.outcome ?? 'success');
}

/**
 * An activity's context as the worker gives it: the workflow that scheduled it, its id in that
 * run and the attempt. Running a function twice in one environment is an activity retried.
 */
const activityEnv = (workflowId: string, info: Partial<Info> = {}) =>
  new MockActivityEnvironment(
    { workflowExecution: { workflowId, runId: randomUUID() }, activityId: String(Math.floor(Math.random() * 1e6)), scheduledTimestampMs: Date.now(), attempt: 1, ...info },
    { logger: new DefaultLogger('ERROR') },
  );

/** A container record of `user` on host-a in `state`, with no workflow (released when the test ends). */
async function containerRecord(t: { after: (fn: () => Promise<unknown>) => void }, user: TestUser, state: 'running' | 'stopped' = 'running') {
  const [row] = await testDb()
    .db.insert(containers)
    .values({
      userId: user.id,
      hostId: 'host-a',
      imageReference: '127.0.0.1:5000/library/busybox:1.35',
      name: `audit-${randomUUID().slice(0, 8)}`,
      // Outside BERTH_PORT_RANGE: no allocation of the API's can meet it.
      hostPort: 40_000 + Math.floor(Math.random() * 20_000),
      containerPort: 80,
      memoryMb: 64,
      cpuMillis: 100,
      state,
    })
    .returning();
  // Released, so that nothing (the nightly release in the serial pass) finds it live.
  t.after(() => testDb().db.update(containers).set({ state: 'removed', removedAt: sql`coalesce(${containers.removedAt}, now())` }).where(eq(containers.id, row!.id)));
  return row!;
}

// ------------------------------------------------------------------------------------------
// On the stack: the container workflow's suspension and reconciliation, the retention schedule

test('a container suspended for want of money: one container.suspend entry, the system by its workflow, the owner as subject', async (t) => {
  const scope = cleanupScope(t);
  const app = await buildTestApp(scope, { containers: containersConfig({ prices: flatPrice(7), billingPeriodMs: 2000 }) });
  const user = await createUser(app, { balance: 1000 });
  const image = await pullHttpd(app, user);
  await testDb().db.update(users).set({ balance: 14 }).where(eq(users.id, user.id)); // two periods
  const c = await run(app, user, { imageId: image.id, cmd: ['sh', '-c', 'trap "exit 0" TERM; httpd -f -p 80 -h /www & wait'] });
  scope.after(() => app.inject({ method: 'DELETE', url: `/api/v1/containers/${c.id}`, headers: bearer(user.token) }));
  await eventually('suspension', async () => (await rowOf(c.id)).state === 'suspended', 30);

  const [entry, ...more] = await auditEventually('container.suspend', c.id);
  assertSystemEntry(entry, { subject: user.id, workflowId: containerWorkflowId(c.id), targetType: 'container' });
  assert.deepEqual(more, [], 'one suspension, one entry');
  assert.equal(entry!.detail?.reasonCode, 'insufficient_funds');
  assert.deepEqual([entry!.detail?.from, entry!.detail?.state], ['running', 'suspended']);
  // The user sees it in their own audit.
  const mine = await app.inject({ method: 'GET', url: '/api/v1/users/me/audit?action=container.suspend', headers: bearer(user.token) });
  assert.equal(mine.statusCode, 200, mine.body);
  assert.ok(mine.json().items.some((e: { id: number }) => e.id === entry!.id), mine.body);
});

test('reconciliation: a container that died, and one removed outside Berth, are audited as container.reconcile', async (t) => {
  const scope = cleanupScope(t);
  const app = await buildTestApp(scope, { containers: containersConfig({ prices: flatPrice(1), billingPeriodMs: 60_000 }) });
  const user = await createUser(app, { balance: 10_000 });
  const image = await pullHttpd(app, user, 'host-b');
  const a = await run(app, user, { imageId: image.id });
  const b = await run(app, user, { imageId: image.id });
  // Should an assertion fail, both are removed all the same (a 404 for one already removed).
  for (const c of [a, b]) scope.after(() => app.inject({ method: 'DELETE', url: `/api/v1/containers/${c.id}`, headers: bearer(user.token) }));

  await dockerFor('host-b').getContainer(dockerName(a.id)).kill();
  await eventually('exited', async () => (await rowOf(a.id)).state === 'exited');
  const [exited, ...moreExited] = await auditEventually('container.reconcile', a.id);
  assertSystemEntry(exited, { subject: user.id, workflowId: containerWorkflowId(a.id), targetType: 'container' });
  assert.deepEqual([exited!.detail?.from, exited!.detail?.state, exited!.detail?.reasonCode], ['running', 'exited', 'exited']);
  assert.deepEqual(moreExited, []);

  // A forced removal kills the container first: Docker may report its death (exited) before it is gone.
  await dockerFor('host-b').getContainer(dockerName(b.id)).remove({ force: true });
  await eventually('removed', async () => (await rowOf(b.id)).state === 'removed');
  const ofB = await eventually('the removal’s entry', async () => {
    const rows = await auditOf('container.reconcile', b.id);
    return rows.some((r) => r.detail?.state === 'removed') && rows;
  });
  const removed = ofB.filter((r) => r.detail?.state === 'removed');
  assert.equal(removed.length, 1, JSON.stringify(ofB.map((r) => r.detail)));
  assertSystemEntry(removed[0], { subject: user.id, workflowId: containerWorkflowId(b.id), targetType: 'container' });
  assert.equal(removed[0]!.detail?.reasonCode, 'removed_outside');
  assert.ok(ofB.every((r) => ['exited', 'removed'].includes(String(r.detail?.state))), 'its death, then its removal, nothing else');

  // What the user asked for is not the system's: their removal of `a` adds no system entry.
  const deleted = await app.inject({ method: 'DELETE', url: `/api/v1/containers/${a.id}`, headers: bearer(user.token) });
  assert.equal(deleted.statusCode, 200, deleted.body);
  const ofA = await testDb().db.select().from(auditLog).where(and(eq(auditLog.actorType, 'system'), eq(auditLog.targetId, a.id)));
  assert.deepEqual(ofA.map((r) => r.id), [exited!.id], JSON.stringify(ofA.map((r) => r.action)));
});

test('the retention schedule: daily, with the configured days; triggered with the temporal CLI it deletes only entries older than them', async () => {
  const { audit } = loadControlWorkerConfig(process.env);
  const schedule = await temporal.schedule.getHandle(AUDIT_RETENTION_SCHEDULE_ID).describe();
  assert.equal(schedule.action.type, 'startWorkflow');
  assert.equal(schedule.action.type === 'startWorkflow' && schedule.action.workflowType, 'auditRetention');
  assert.deepEqual(schedule.action.type === 'startWorkflow' && schedule.action.args, [{ retentionDays: audit.retentionDays }]);
  const next = schedule.info.nextActionTimes;
  assert.ok(next.length >= 2);
  for (const at of next) assert.deepEqual([at.getUTCHours(), at.getUTCMinutes()], [3, 0], at.toISOString());
  assert.equal(next[1]!.getTime() - next[0]!.getTime(), DAY_MS, 'once a day');

  const days = audit.retentionDays;
  const marker = `test.retention.${randomUUID()}`;
  await testDb()
    .db.insert(auditLog)
    .values({ actorType: 'system', action: marker, outcome: 'success', at: new Date(Date.now() - (days + 30) * DAY_MS) });
  // Younger than the retention by an hour (and than any other test's purge: the accounts test's is 365 days).
  const [young] = await testDb()
    .db.insert(auditLog)
    .values({ actorType: 'system', action: marker, outcome: 'success', at: new Date(Date.now() - Math.min(days, 365) * DAY_MS + 3_600_000) })
    .returning();

  const { workflowId, result } = await triggerScheduleAndWait<AuditRetentionResult>(temporal, AUDIT_RETENTION_SCHEDULE_ID);
  assert.equal(result.retentionDays, days);
  const left = await testDb().db.select().from(auditLog).where(eq(auditLog.action, marker));
  assert.deepEqual(left.map((r) => r.id), [young!.id], 'the old entry went, the young one stays');
  if (result.deleted > 0) {
    const [purge] = await testDb().db.select().from(auditLog).where(and(eq(auditLog.action, 'audit.purge'), eq(auditLog.workflowId, workflowId)));
    assert.deepEqual(purge?.detail, { deleted: result.deleted, retentionDays: days }, 'the purge says so in the log');
  }
});

// ------------------------------------------------------------------------------------------
// The audited activities, run directly on the real database (retried: each entry once)

test('container activities: suspension and reconciliation audited in the state change’s transaction, once when retried; users’ own changes not', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app);
  const activities = createContainerDbActivities({ db: testDb().db });
  const row = await containerRecord(t, user);
  const workflowId = containerWorkflowId(row.id);

  const suspend = activityEnv(workflowId);
  const patch = { state: 'suspended' as const, stateReason: 'insufficient balance for the next billing period', stateReasonCode: 'insufficient_funds' as const, exitCode: 0 };
  await suspend.run(() => activities.recordContainerState(row.id, patch));
  await suspend.run(() => activities.recordContainerState(row.id, patch)); // a retry after the commit
  assert.equal((await auditOf('container.suspend', row.id)).length, 1, 'once');
  // Suspended again by another step (seen started outside Berth with nothing to pay): a new entry, once.
  const again = activityEnv(workflowId);
  await again.run(() => activities.recordContainerState(row.id, patch));
  await again.run(() => activities.recordContainerState(row.id, patch));
  const suspensions = await auditOf('container.suspend', row.id);
  assert.equal(suspensions.length, 2);
  for (const entry of suspensions) assertSystemEntry(entry, { subject: user.id, workflowId, targetType: 'container' });
  assert.deepEqual(suspensions.map((e) => [e.detail?.from, e.detail?.state, e.detail?.reasonCode]), [
    ['running', 'suspended', 'insufficient_funds'],
    ['suspended', 'suspended', 'insufficient_funds'],
  ]);

  // Its user starts it (no reason: not audited); Docker reports it exited (reconciliation, audited once).
  await activityEnv(workflowId).run(() => activities.recordContainerState(row.id, { state: 'running', stateReason: null, stateReasonCode: null }));
  const exit = activityEnv(workflowId);
  const exited = { state: 'exited' as const, stateReason: 'exited with code 137', stateReasonCode: 'exited' as const, exitCode: 137 };
  await exit.run(() => activities.recordContainerState(row.id, exited));
  await exit.run(() => activities.recordContainerState(row.id, exited));
  // Removed outside Berth: audited with its release, once.
  const gone = activityEnv(workflowId);
  await gone.run(() => activities.releaseContainer(row.id, 'removed', 'removed outside Berth', 'removed_outside'));
  await gone.run(() => activities.releaseContainer(row.id, 'removed', 'removed outside Berth', 'removed_outside'));
  const reconciled = await auditOf('container.reconcile', row.id);
  assert.deepEqual(reconciled.map((e) => [e.detail?.from, e.detail?.state, e.detail?.reasonCode, e.detail?.exitCode ?? null]), [
    ['running', 'exited', 'exited', 137],
    ['exited', 'removed', 'removed_outside', null],
  ]);
  for (const entry of reconciled) assertSystemEntry(entry, { subject: user.id, workflowId, targetType: 'container' });

  // A user's stop and removal are not the system's.
  const other = await containerRecord(t, user);
  await activityEnv(containerWorkflowId(other.id)).run(() => activities.recordContainerState(other.id, { state: 'stopped', stateReason: null, stateReasonCode: null }));
  await activityEnv(containerWorkflowId(other.id)).run(() => activities.releaseContainer(other.id, 'removed', null, null));
  assert.deepEqual(await testDb().db.select().from(auditLog).where(and(eq(auditLog.targetId, other.id), eq(auditLog.actorType, 'system'))), []);
});

test('release activities: an image removal audited with its refund; orphans and failures with the run’s end; each once', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 100 });
  const db = testDb().db;
  const releaseId = `release-audit-${randomUUID()}`;
  const release = createReleaseActivities({ db, temporal });
  const imageActivities = createImageDbActivities({ db, pricePerMb: 1, temporal });
  const imageRow = (charged: number) =>
    db
      .insert(images)
      .values({
        userId: user.id,
        hostId: 'host-a',
        reference: `127.0.0.1:5000/audit/${randomUUID().slice(0, 8)}:latest`,
        repository: 'audit',
        tag: 'latest',
        imageId: `sha256:${randomUUID().replace(/-/g, '')}`,
        sizeBytes: 1024,
        charged,
      })
      .returning()
      .then(([r]) => r!);
  const refunded = await imageRow(5);
  const failed = await imageRow(3);
  t.after(() => db.delete(images).where(inArray(images.id, [refunded.id, failed.id])));

  // The release's removeImage child refunds and deletes the record: audited in that transaction.
  const child = activityEnv(`image-remove-${refunded.id}`);
  assert.deepEqual(await child.run(() => imageActivities.refundAndDeleteImage(refunded.id, `nightly release ${releaseId}`, { releaseId })), { refunded: 5, deleted: true });
  assert.deepEqual(await child.run(() => imageActivities.refundAndDeleteImage(refunded.id, `nightly release ${releaseId}`, { releaseId })), { refunded: 0, deleted: false });
  const [removal, ...moreRemovals] = await auditOf('release.removeImage', refunded.id);
  assertSystemEntry(removal, { subject: user.id, workflowId: releaseId, targetType: 'image' });
  assert.deepEqual(moreRemovals, []);
  assert.equal(removal!.detail?.refunded, 5, 'the amount refunded');
  assert.equal(removal!.detail?.removeImageWorkflowId, `image-remove-${refunded.id}`);
  // A user's own removal (no release) is the API's to audit.
  const own = await imageRow(0);
  await activityEnv(`image-remove-${own.id}`).run(() => imageActivities.refundAndDeleteImage(own.id, 'image removed'));
  assert.deepEqual(await auditOf('release.removeImage', own.id), []);

  // A container whose update went through on an earlier attempt (its workflow has ended, its record is released).
  const container = await containerRecord(t, user);
  await db.update(containers).set({ state: 'removed', removedAt: sql`now()` }).where(eq(containers.id, container.id));
  const retried = activityEnv(releaseId, { attempt: 2 });
  await retried.run(() => release.removeContainerForRelease(container.id));
  await retried.run(() => release.removeContainerForRelease(container.id));
  const [removedContainer, ...moreContainers] = await auditOf('release.removeContainer', container.id);
  assertSystemEntry(removedContainer, { subject: user.id, workflowId: releaseId, targetType: 'container' });
  assert.deepEqual(moreContainers, [], 'keyed by the release and the container: once');

  // The run's end: the orphan it removed, the container and the image it could not remove.
  const failedContainer = await containerRecord(t, user);
  const orphanId = randomUUID();
  await release.recordReleaseStart(releaseId);
  const report: ReleaseReport = {
    containers: { removed: 2, failed: 2 },
    images: { removed: 1, failed: 1 },
    refundedTotal: 5,
    failures: [
      { phase: 'containers', id: failedContainer.id, hostId: 'host-a', reason: 'the host did not answer' },
      { phase: 'containers', id: 'host host-b', hostId: 'host-b', reason: 'no poller' },
      { phase: 'images', id: failed.id, hostId: 'host-a', reason: `image ${failed.reference} is in use` },
    ],
    orphans: [{ id: orphanId, hostId: 'host-b', dockerId: 'f00d', userId: user.id }],
  };
  const end = activityEnv(releaseId);
  await end.run(() => release.recordReleaseEnd(releaseId, report));
  await end.run(() => release.recordReleaseEnd(releaseId, report));
  const [orphan, ...moreOrphans] = await auditOf('release.removeContainer', orphanId);
  assertSystemEntry(orphan, { subject: user.id, workflowId: releaseId, targetType: 'container' });
  assert.deepEqual([orphan!.detail?.orphan, orphan!.detail?.dockerId, moreOrphans.length], [true, 'f00d', 0]);
  const [containerFailure, ...moreContainerFailures] = await auditOf('release.removeContainer', failedContainer.id);
  assertSystemEntry(containerFailure, { subject: user.id, workflowId: releaseId, targetType: 'container', outcome: 'failure' });
  assert.equal(containerFailure!.detail?.reason, 'the host did not answer');
  assert.deepEqual(moreContainerFailures, []);
  const [imageFailure, ...moreImageFailures] = await auditOf('release.removeImage', failed.id);
  assertSystemEntry(imageFailure, { subject: user.id, workflowId: releaseId, targetType: 'image', outcome: 'failure' });
  assert.match(String(imageFailure!.detail?.reason), /in use/);
  assert.deepEqual(moreImageFailures, []);
  assert.deepEqual(await auditOf('release.removeContainer', 'host host-b'), [], 'a host is not a user’s thing');
});

test('DCU cleanup activities: the tasks whose objects went, objects no task names, local archives; each once', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app);
  const db = testDb().db;
  const activities = createDcuDbActivities({ db });
  const objectName = `${user.username}/audit_latest-${randomUUID().slice(0, 12)}.tar.gz`;
  const [task] = await db
    .insert(dcuTasks)
    .values({ userId: user.id, username: user.username, dockerImageName: 'busybox', state: 'completed', minioObjectName: objectName, endTime: new Date(Date.now() - 30 * DAY_MS) })
    .returning();
  const stray = `${user.username}/stray-${randomUUID().slice(0, 8)}.tar.gz`;

  const objectRun = `berth-dcu-object-cleanup-audit-${randomUUID()}`;
  const mark = activityEnv(objectRun);
  const input = { taskIds: [task!.id], objectNames: [objectName, stray] };
  assert.equal(await mark.run(() => activities.dcuMarkArtifactsExpired(input)), 1);
  assert.equal(await mark.run(() => activities.dcuMarkArtifactsExpired(input)), 0, 'a retry marks nothing');
  const [expired, ...moreExpired] = await auditOf('dcu.cleanupObject', task!.id);
  assertSystemEntry(expired, { subject: user.id, workflowId: objectRun, targetType: 'dcu_task' });
  assert.deepEqual([expired!.detail?.objectName, expired!.detail?.objectRemoved], [objectName, true]);
  assert.deepEqual(moreExpired, [], 'once, although the retry marked nothing');
  const [strayEntry, ...moreStray] = await auditOf('dcu.cleanupObject', stray);
  assertSystemEntry(strayEntry, { subject: user.id, workflowId: objectRun, targetType: 'dcu_object' });
  assert.deepEqual(moreStray, []);

  const gzipRun = `berth-dcu-gzip-cleanup-audit-${randomUUID()}`;
  const archive = `${task!.id}_audit_latest-0123456789ab.tar.gz`;
  const strayFile = `${randomUUID().slice(0, 8)}-stray.tar.gz`;
  const sweep = activityEnv(gzipRun);
  const swept = { hosts: [{ hostId: 'host-a', deleted: [archive, `${archive}.2.partial`] }, { hostId: 'host-b', deleted: [strayFile] }] };
  assert.equal(await sweep.run(() => activities.dcuAuditGzipCleanup(swept)), 3);
  assert.equal(await sweep.run(() => activities.dcuAuditGzipCleanup(swept)), 0, 'a retry writes none again');
  const archives = await auditOf('dcu.cleanupArchive', task!.id);
  assert.deepEqual(archives.map((e) => [e.detail?.fileName, e.detail?.hostId]), [[archive, 'host-a'], [`${archive}.2.partial`, 'host-a']]);
  for (const entry of archives) assertSystemEntry(entry, { subject: user.id, workflowId: gzipRun, targetType: 'dcu_task' });
  const [unowned] = await auditOf('dcu.cleanupArchive', strayFile);
  assert.deepEqual([unowned?.targetType, unowned?.subjectUserId, unowned?.workflowId], ['dcu_archive', null, gzipRun]);
});

test('purgeAuditLog: entries older than its days go, younger ones stay; the purge is in the log', async () => {
  const db = testDb().db;
  const marker = `test.purge.${randomUUID()}`;
  // Both younger than the accounts test's own purge (365 days), which runs alongside.
  await db.insert(auditLog).values({ actorType: 'system', action: marker, outcome: 'success', at: new Date(Date.now() - 300 * DAY_MS) });
  const [young] = await db.insert(auditLog).values({ actorType: 'system', action: marker, outcome: 'success', at: new Date(Date.now() - 200 * DAY_MS) }).returning();
  const workflowId = `berth-audit-retention-test-${randomUUID()}`;
  const deleted = await activityEnv(workflowId).run<[], number, () => Promise<number>>(() => createAuditDbActivities({ db }).purgeAuditLog(250));
  assert.ok(deleted >= 1);
  const left = await db.select().from(auditLog).where(eq(auditLog.action, marker));
  assert.deepEqual(left.map((r) => r.id), [young!.id], 'the old entry went, the young one stays');
  const [purge] = await db.select().from(auditLog).where(and(eq(auditLog.action, 'audit.purge'), eq(auditLog.workflowId, workflowId)));
  assertSystemEntry(purge, { subject: null, workflowId, targetType: 'audit_log' });
  assert.equal(purge!.detail?.retentionDays, 250);
});
