/**
 * The DCU cleanup schedules, triggered with the temporal CLI: their runs delete every local
 * archive and every object older than the retention, on every registered host, so this test
 * runs in the serial pass (scripts/test.sh), alone (a host of another test's own, registered
 * meanwhile, would be swept too; an archive another test made old on purpose would go).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { and, eq } from 'drizzle-orm';
import { auditLog, dcuTasks } from '../../../db/schema.js';
import { loadControlWorkerConfig } from '../../../core/config.js';
import { connectTemporal } from '../../../core/temporal.js';
import { DCU_SCHEDULES } from '../../../contracts/dcu-cleanup.js';
import { baseConfig, buildTestApp, createUser, testDb } from '../../support/app.js';
import { pushUniqueImage } from '../../support/images.js';
import { dockerFor } from '../../support/stack.js';
import { BUCKET, FUNDS, GZIP_DIR, assertErrorEnvelope, dcuApi, ended, minio, rowOf, startTaskChecked, statusOf, storedSha256, temporalCli, waitFor } from '../../support/dcu.js';
import { triggerScheduleAndWait } from '../../support/schedules.js';

const temporal = await connectTemporal(baseConfig.temporal);
after(() => temporal.connection.close());

const DAY_MS = 86_400_000;

const pulledImages: Array<[string, string]> = [];
after(async () => {
  for (const [hostId, reference] of pulledImages) {
    await dockerFor(hostId).getImage(reference).remove({ force: true }).catch(() => undefined);
  }
});

/** The system's audit entries of `action` about a DCU task. */
const auditOf = (action: string, taskId: string) =>
  testDb().db.select().from(auditLog).where(and(eq(auditLog.action, action), eq(auditLog.targetId, taskId)));

test('cleanup schedules exist with the configured crons, and run when triggered with the temporal CLI', { timeout: 600_000 }, async (t) => {
  const app = await buildTestApp(t);
  const control = loadControlWorkerConfig(process.env).dcu;
  const { stdout } = await temporalCli(['schedule', 'describe', '--schedule-id', DCU_SCHEDULES.gzipCleanup, '-o', 'json']);
  assert.match(stdout, /dcuGzipCleanup/);
  for (const [id, type, days] of [
    [DCU_SCHEDULES.gzipCleanup, 'dcuGzipCleanup', control.gzipRetentionDays],
    [DCU_SCHEDULES.objectCleanup, 'dcuObjectCleanup', control.objectRetentionDays],
  ] as const) {
    const description = await temporal.schedule.getHandle(id).describe();
    assert.equal(description.action.type, 'startWorkflow');
    assert.equal(description.action.workflowType, type);
    assert.deepEqual(description.action.args, [{ retentionDays: days }]);
  }
  // The crons the stack configures (the defaults): archives daily at midnight UTC, objects on Sundays.
  assert.deepEqual([control.gzipCleanupCron, control.objectCleanupCron], ['0 0 * * *', '0 0 * * 0']);
  const nextRuns = async (id: string) => (await temporal.schedule.getHandle(id).describe()).info.nextActionTimes;
  const gzipNext = await nextRuns(DCU_SCHEDULES.gzipCleanup);
  const objectNext = await nextRuns(DCU_SCHEDULES.objectCleanup);
  for (const at of [...gzipNext, ...objectNext]) assert.deepEqual([at.getUTCHours(), at.getUTCMinutes()], [0, 0], at.toISOString());
  assert.equal(gzipNext[1]!.getTime() - gzipNext[0]!.getTime(), 24 * 3600_000, 'archives: every day');
  assert.ok(objectNext.every((at) => at.getUTCDay() === 0), 'objects: on Sundays');
  assert.equal(objectNext[1]!.getTime() - objectNext[0]!.getTime(), 7 * 24 * 3600_000, 'objects: every week');

  // A task of its own, and another user's recent one as the control that must survive.
  const user = await createUser(app, { balance: FUNDS });
  // An image of its own: an image another task packaged already would be copied, with no local archive.
  const image = await pushUniqueImage('dcu-cleanup', 16);
  pulledImages.push(['host-a', image], ['host-b', image]);
  const taskId = await startTaskChecked(app, user, image);
  const task = await waitFor(app, user.token, taskId, ended);
  assert.equal(task.state, 'completed', JSON.stringify(task));
  const other = await createUser(app, { balance: FUNDS });
  const recent = await pushUniqueImage('dcu-cleanup-keep', 16);
  pulledImages.push(['host-a', recent], ['host-b', recent]);
  const keep = await waitFor(app, other.token, await startTaskChecked(app, other, recent), ended);
  assert.equal(keep.state, 'completed', JSON.stringify(keep));

  // Local archives: this task's is made older than the retention, a fresh file is not.
  const oldArchive = join(GZIP_DIR, task.gzip_file_name);
  const old = new Date(Date.now() - (control.gzipRetentionDays + 2) * DAY_MS);
  await utimes(oldArchive, old, old);
  const fresh = join(GZIP_DIR, `${randomUUID()}_fresh.tar.gz`);
  const notAnArchive = join(GZIP_DIR, `${randomUUID()}-notes.txt`);
  await writeFile(fresh, 'fresh');
  await writeFile(notAnArchive, 'not an archive');
  await utimes(notAnArchive, old, old);
  try {
    const { workflowId: gzipRun, result: gzip } = await triggerScheduleAndWait<{ hosts: Array<{ hostId: string; deleted?: string[]; error?: string }> }>(
      temporal,
      DCU_SCHEDULES.gzipCleanup,
    );
    const hostIds = gzip.hosts.map((h) => h.hostId).sort();
    assert.ok(hostIds.includes('host-a') && hostIds.includes('host-b'), `every registered host swept: ${hostIds.join(', ')}`);
    assert.ok(gzip.hosts.some((h) => h.deleted?.includes(task.gzip_file_name)));
    await assert.rejects(stat(oldArchive), { code: 'ENOENT' });
    assert.ok((await stat(fresh)).isFile(), 'a fresh archive is kept');
    assert.ok((await stat(notAnArchive)).isFile(), 'only archives are touched');
    // Audited: the system removed the user's archive, in the cleanup's run, once per host that
    // reported removing it (the stack's two host workers share one archive directory).
    const reportedBy = gzip.hosts.filter((h) => h.deleted?.includes(task.gzip_file_name)).map((h) => h.hostId).sort();
    const archiveAudit = (await auditOf('dcu.cleanupArchive', taskId)).filter((r) => r.workflowId === gzipRun);
    assert.deepEqual(archiveAudit.map((r) => String(r.detail?.hostId)).sort(), reportedBy, JSON.stringify(archiveAudit));
    for (const entry of archiveAudit) {
      assert.deepEqual(
        [entry.actorType, entry.targetType, entry.subjectUserId, entry.outcome, entry.detail?.fileName],
        ['system', 'dcu_task', user.id, 'success', task.gzip_file_name],
      );
    }
  } finally {
    await rm(fresh, { force: true });
    await rm(notAnArchive, { force: true });
  }

  // Objects: this task ended longer ago than the retention (end_time moved back); the shared one did not.
  await testDb()
    .db.update(dcuTasks)
    .set({ endTime: new Date(Date.now() - (control.objectRetentionDays + 1) * DAY_MS) })
    .where(eq(dcuTasks.id, taskId));
  const { workflowId: objectRun, result: objects } = await triggerScheduleAndWait<{ deleted: string[]; expiredTasks: number }>(temporal, DCU_SCHEDULES.objectCleanup);
  assert.ok(objects.deleted.includes(task.minio_object_name), JSON.stringify(objects));
  await assert.rejects(minio.statObject(BUCKET, task.minio_object_name), (error: { code?: string }) => error.code === 'NotFound' || error.code === 'NoSuchKey');
  assert.equal((await rowOf(taskId))?.artifactsExpired, true);
  assert.equal((await statusOf(app, user.token, taskId)).artifacts_expired, true);
  assertErrorEnvelope(await dcuApi(app, user.token, 'GET', `/api/dcu/download/${taskId}`), 410);

  assert.equal(await storedSha256(keep.minio_object_name), keep.sha256, 'a recent object is kept');
  assert.equal((await rowOf(keep.task_id))?.artifactsExpired, false);

  // Audited: the system removed the user's object (target the task, subject its user), once, in the cleanup's run.
  const objectAudit = await auditOf('dcu.cleanupObject', taskId);
  assert.equal(objectAudit.length, 1, JSON.stringify(objectAudit));
  const [removedObject] = objectAudit;
  assert.equal(removedObject!.actorType, 'system');
  assert.equal(removedObject!.workflowId, objectRun);
  assert.equal(removedObject!.targetType, 'dcu_task');
  assert.equal(removedObject!.subjectUserId, user.id);
  assert.equal(removedObject!.outcome, 'success');
  assert.deepEqual([removedObject!.detail?.objectName, removedObject!.detail?.objectRemoved], [task.minio_object_name, true]);
  assert.deepEqual(await auditOf('dcu.cleanupObject', keep.task_id), [], 'nothing of the kept task');
});
