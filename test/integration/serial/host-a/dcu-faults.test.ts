/**
 * DCU under faults that act on the whole stack, so they run in the serial pass's host-a lane
 * (scripts/test.sh): MinIO stopped while the upload phase runs (every test's uploads and
 * downloads would fail meanwhile; nothing in the host-b lane uses MinIO), and host-a's worker
 * SIGKILLed while compressing (every activity on host-a would be retried). Each brings the
 * process back with `scripts/stack.sh up` in a finally, and keeps the outage short.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeTimeoutType } from '@temporalio/common';
import type { BucketItem, IncompleteUploadedBucketItem } from 'minio';
import { connectTemporal } from '../../../../core/temporal.js';
import { CONTROL_TASK_QUEUE, hostTaskQueue } from '../../../../core/temporal-names.js';
import { dcuWorkflowId } from '../../../../contracts/dcu.js';
import { SHA256_METADATA } from '../../../../activities/storage.js';
import { baseConfig, buildTestApp, createUser } from '../../../support/app.js';
import { pushUniqueImage } from '../../../support/images.js';
import { activityRuns as activityRunsOf } from '../../../support/history.js';
import { killStackProcess, processGone, stackPid, stackStart } from '../../../support/stack.js';
import { BUCKET, CONTROL_ACTIVITIES, GZIP_DIR, HOST_STEP_ATTEMPTS, LONG_WAIT, PACKAGING_ACTIVITIES, hostConfig, listAll, localFilesOf, minio, removedAfterAll, rowOf, sha256, startTask, storedSha256, waitEnded, type TaskData } from '../../../support/dcu.js';
import { sleep } from '../../../support/wait.js';

const temporal = await connectTemporal(baseConfig.temporal);
after(() => temporal.connection.close());

const MINIO_HEALTH = `${hostConfig.minio.useSSL ? 'https' : 'http'}://${hostConfig.minio.endPoint}:${hostConfig.minio.port}/minio/health/live`;

// ------------------------------------------------------------------ the stack's processes

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const minioUp = () => fetch(MINIO_HEALTH).then((r) => r.ok, () => false);

// ------------------------------------------------------------------ API, rows, histories

/**
 * Waits until the task's workflow has `activity` running on a worker (started, not only
 * scheduled); returns the identity of that worker ("<pid>@<host>").
 */
async function waitRunning(taskId: string, activity: string, limitMs = 300_000): Promise<string> {
  const handle = temporal.workflow.getHandle(dcuWorkflowId(taskId));
  for (const end = Date.now() + limitMs; Date.now() < end; await sleep(25)) {
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    const running = pending.find((a) => a.activityType?.name === activity && a.lastStartedTime);
    if (running) return running.lastWorkerIdentity ?? '';
  }
  throw new Error(`${activity} of task ${taskId} did not start`);
}

/** The pid of the host worker behind a worker identity, checked to be workers/host (its .ts, or the compiled .js) for `hostId`. */
async function hostWorkerPid(identity: string, hostId: string): Promise<number> {
  const pid = Number(identity.split('@')[0]);
  const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ');
  const environ = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
  assert.match(cmdline, /workers\/host\.(ts|js)\b/, `pid ${pid} is a host worker`);
  assert.ok(environ.includes(`BERTH_HOST_ID=${hostId}`), `pid ${pid} is ${hostId}'s worker`);
  return pid;
}

/** Each activity of a task's workflow, from its history: type, the attempt that ended it, its outcome. */
const activityRuns = (taskId: string) => activityRunsOf(temporal, dcuWorkflowId(taskId));

/** No bucket yet (a fresh stack whose first upload is still to come) lists as nothing. */
const orNone = <T>(list: Promise<T[]>): Promise<T[]> =>
  list.catch((error: unknown) => {
    if ((error as { code?: string }).code === 'NoSuchBucket') return [];
    throw error;
  });
const uploadsUnder = async (prefix: string) =>
  orNone(listAll(minio.listIncompleteUploads(BUCKET, prefix, true) as unknown as AsyncIterable<IncompleteUploadedBucketItem>));
const objectsUnder = async (prefix: string) => orNone(listAll(minio.listObjectsV2(BUCKET, prefix, true) as AsyncIterable<BucketItem>));

// ------------------------------------------------------------------ fixtures

const { pulled, taskIds } = removedAfterAll();

/** ~100 MB of random bytes: compressing takes seconds, long enough to act while it runs. */
/**
 * A large image of the test's own: not memoized, since the second DCU of an image another
 * task completed is a copy of that task's object, with no compress phase to fail or kill.
 */
const bigImage = async () => {
  const image = await pushUniqueImage('dcu-faults', 100 * 1024);
  pulled.add(`host-a ${image}`).add(`host-b ${image}`);
  return image;
};

// ------------------------------------------------------------------ (a) MinIO down during the upload

test('MinIO stopped for the upload: the upload retries, the task fails with a clear message and keeps its archive; a new start of the image uploads it without compressing again', { timeout: 600_000 }, async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 1_000 });
  const image = await bigImage();

  // MinIO goes down before the task starts: the download and compress phases do not use it,
  // so the task gets as far as the upload, and every attempt of the upload phase meets MinIO
  // down. (Killing it once compression began raced with a compression that finished first.)
  // Back up in the finally: the outage lasts the task's download and compress, then the
  // upload's retries (about 30 s).
  const minioPid = await stackPid('minio');
  let taskId: string;
  let first: TaskData | undefined;
  let restartedMeanwhile: boolean;
  try {
    await killStackProcess('minio');
    assert.equal(await minioUp(), false, 'MinIO is down');
    taskId = await startTask(app, user, image, 'host-a');
    taskIds.push(taskId);
    // Its end: the assertions below show how far it got (compressed once, the upload retried to its limit).
    first = await waitEnded(app, user.token, taskId, LONG_WAIT);
    // The stack is shared: someone else's `stack.sh up` may have started MinIO again meanwhile.
    restartedMeanwhile = (await stackPid('minio').catch(() => minioPid)) !== minioPid && (await minioUp());
  } finally {
    await stackStart('minio');
  }
  assert.ok(await minioUp(), 'MinIO is back');
  assert.ok(first);

  assert.ok(
    first.state === 'failed' || !restartedMeanwhile,
    'MinIO was started again by another `scripts/stack.sh up` on this shared stack before the upload gave up: run this test again',
  );
  assert.equal(first.state, 'failed', JSON.stringify(first));
  assert.equal(first.progress, -1);
  assert.match(first.error_message, new RegExp(`^uploading failed after ${HOST_STEP_ATTEMPTS} attempts: `), first.error_message);
  assert.match(first.error_message, /ECONNREFUSED|ECONNRESET|socket hang up/, 'the cause: MinIO cannot be reached');
  assert.match(first.sha256 ?? '', /^[0-9a-f]{64}$/, 'compression had finished');

  const runs = await activityRuns(taskId);
  const upload = runs.filter((r) => r.type === 'dcuUpload');
  assert.equal(upload.length, 1);
  assert.equal(upload[0]!.attempt, HOST_STEP_ATTEMPTS, 'the upload activity was retried by its policy');
  assert.equal(upload[0]!.outcome, 'failed');
  assert.equal(upload[0]!.retryState, 'MAXIMUM_ATTEMPTS_REACHED');
  assert.equal(runs.filter((r) => r.type === 'dcuCompress').length, 1, 'compressed once');
  assert.ok(!runs.some((r) => r.type === 'dcuRemoveLocalFiles'), 'the archive is not discarded after a failed upload');
  const endedAt = (await rowOf(taskId))!.endTime!.getTime();
  t.diagnostic(
    `upload phase gave up ${((upload[0]!.endedAt! - upload[0]!.scheduledAt) / 1000).toFixed(1)} s after it began; ` +
      `task failed after ${((endedAt - upload[0]!.scheduledAt) / 1000).toFixed(1)} s`,
  );

  // The archive stayed, complete: the one compression made. Nothing of it in MinIO.
  assert.deepEqual(await localFilesOf(taskId), [first.gzip_file_name], 'the archive, no partial file');
  const kept = await readFile(join(GZIP_DIR, first.gzip_file_name));
  assert.equal(sha256(kept), first.sha256);
  assert.equal(kept.length, first.compressed_bytes);
  assert.deepEqual(await objectsUnder(`${user.username}/`), []);

  // Later, MinIO back: the same user starts the same image on the same host again.
  const retryId = await startTask(app, user, image, 'host-a');
  taskIds.push(retryId);
  const second = await waitEnded(app, user.token, retryId, LONG_WAIT);
  assert.equal(second.state, 'completed', JSON.stringify(second));
  assert.equal(second.minio_object_name, first.minio_object_name);
  assert.equal(second.sha256, first.sha256);
  assert.equal(second.size_bytes, first.size_bytes);
  assert.equal(second.compressed_bytes, first.compressed_bytes);

  const types = (await activityRuns(retryId)).map((r) => [r.type, r.outcome]);
  assert.ok(!types.some(([type]) => type === 'dcuCompress'), `not compressed again: ${JSON.stringify(types)}`);
  assert.ok(types.some(([type, outcome]) => type === 'dcuAdoptArchive' && outcome === 'completed'), 'the kept archive was taken over');
  assert.deepEqual(await localFilesOf(taskId), [], 'the kept archive moved to the new task');
  assert.deepEqual(await localFilesOf(retryId), [second.gzip_file_name]);

  const info = await minio.statObject(BUCKET, second.minio_object_name);
  assert.equal(info.metaData[SHA256_METADATA], first.sha256);
  assert.equal(info.size, first.compressed_bytes);
  assert.deepEqual(await uploadsUnder(`${user.username}/`), [], 'no unfinished multipart upload');
  assert.deepEqual((await objectsUnder(`${user.username}/`)).map((o) => o.name), [second.minio_object_name]);
});

// ------------------------------------------------------------------ (c) host worker killed mid-compress

test('host worker SIGKILLed while compressing: once it is back the compress phase runs again (attempt 2) and the task completes', { timeout: 600_000 }, async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 1_000 });
  const image = await bigImage();
  const hostId = 'host-a';
  const taskId = await startTask(app, user, image, hostId);
  taskIds.push(taskId);

  // The worker that runs the compress activity: the one in the pid file, unless concurrent
  // `stack.sh up` runs on this shared stack left a duplicate polling the same queue.
  const pid = await hostWorkerPid(await waitRunning(taskId, 'dcuCompress'), hostId);
  const tracked = await stackPid(`worker-${hostId}`);
  if (pid !== tracked) t.diagnostic(`compress runs on pid ${pid}, not on worker-${hostId}.pid's ${tracked}: a duplicate host worker`);
  let killedAt: number;
  try {
    process.kill(pid, 'SIGKILL');
    killedAt = Date.now();
    await processGone(pid);
    assert.equal((await rowOf(taskId))?.state, 'compressing', 'killed while compressing');
  } finally {
    await stackStart('worker-host-a');
  }
  const restarted = await stackPid(`worker-${hostId}`);
  assert.notEqual(restarted, pid);
  assert.ok(alive(restarted), `worker-${hostId} runs again`);
  assert.ok(!alive(pid));

  const data = await waitEnded(app, user.token, taskId, LONG_WAIT);
  assert.equal(data.state, 'completed', JSON.stringify(data));

  const runs = await activityRuns(taskId);
  assert.deepEqual(runs.map((r) => r.type), PACKAGING_ACTIVITIES, 'each phase once: only the compress activity was retried');
  for (const r of runs) assert.equal(r.queue, CONTROL_ACTIVITIES.includes(r.type) ? CONTROL_TASK_QUEUE : hostTaskQueue(hostId), r.type);
  const compress = runs.find((r) => r.type === 'dcuCompress')!;
  assert.ok((compress.attempt ?? 1) >= 2, `compress attempted again (attempt ${compress.attempt})`);
  assert.equal(compress.outcome, 'completed');
  assert.equal(decodeTimeoutType(compress.lastFailure?.timeoutFailureInfo?.timeoutType), 'HEARTBEAT', 'the killed attempt ended by its heartbeat timeout');
  t.diagnostic(`killed → compress done in ${((compress.endedAt! - killedAt) / 1000).toFixed(1)} s (attempt ${compress.attempt})`);

  // The archive: whole, no partial file of the killed attempt; the object in MinIO.
  assert.deepEqual(await localFilesOf(taskId), [data.gzip_file_name], 'no partial file left');
  const local = await readFile(join(GZIP_DIR, data.gzip_file_name));
  assert.equal(sha256(local), data.sha256);
  const info = await minio.statObject(BUCKET, data.minio_object_name);
  assert.equal(await storedSha256(data.minio_object_name), data.sha256);
  assert.equal(info.size, data.compressed_bytes);
  const remote: Buffer[] = [];
  for await (const chunk of await minio.getObject(BUCKET, data.minio_object_name)) remote.push(chunk as Buffer);
  assert.equal(sha256(Buffer.concat(remote)), data.sha256, 'the object is the archive');
});
