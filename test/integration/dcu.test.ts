/**
 * DCU (Download-Compress-Upload) on the real stack: the original API and envelope, the
 * `dcu` workflow on a host's queue, the archive in the host's gzip dir and in MinIO,
 * `docker load` of it on the other host, cancellation (API and temporal CLI). The cleanup
 * schedules, which act on every archive and object, are tested in serial/dcu.test.ts.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { eq } from 'drizzle-orm';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type { BucketItem, IncompleteUploadedBucketItem } from 'minio';
import { dcuTasks } from '../../db/schema.js';
import { connectTemporal } from '../../core/temporal.js';
import { dcuWorkflowId } from '../../contracts/dcu.js';
import { dcuGzipCleanupWorkflow, dcuObjectCleanupWorkflow, type DcuGzipCleanupResult, type DcuObjectCleanupResult } from '../../contracts/dcu-cleanup.js';
import { createStorageActivities, SHA256_METADATA, type DcuUploaded } from '../../activities/storage.js';
import { createDcuHostActivities, type DcuArchive } from '../../activities/dcu-host.js';
import { createDcuDbActivities } from '../../activities/dcu-db.js';
import { dcuCharge } from '../../billing/prices.js';
import { adminToken, baseConfig, bearer, buildTestApp, createUser, testDb } from '../support/app.js';
import { inspectOn, pushUniqueImage } from '../support/images.js';
import { closedStatus } from '../support/history.js';
import { REGISTRY, dockerFor } from '../support/stack.js';
import { BUCKET, CONTROL_ACTIVITIES, FUNDS, GZIP_DIR, PACKAGING_ACTIVITIES, assertErrorEnvelope, dcuApi, ended, listAll, localFilesOf, minio, objectBytes, rowOf, sha256, startTaskChecked, statusOf, storedSha256, temporalCli, waitFor } from '../support/dcu.js';
import { sleep } from '../support/wait.js';

const temporal = await connectTemporal(baseConfig.temporal);
after(() => temporal.connection.close());

const TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;

async function historyOf(taskId: string) {
  return (await temporal.workflow.getHandle(dcuWorkflowId(taskId)).fetchHistory()).events ?? [];
}

const objectsUnder = async (prefix: string) =>
  (await minio.bucketExists(BUCKET)) ? listAll(minio.listObjectsV2(BUCKET, prefix, true) as AsyncIterable<BucketItem>) : [];
const uploadsUnder = async (prefix: string) =>
  (await minio.bucketExists(BUCKET))
    ? listAll(minio.listIncompleteUploads(BUCKET, prefix, true) as unknown as AsyncIterable<IncompleteUploadedBucketItem>)
    : [];

/** Memoized fixtures: each test calls them, so tests run in any order. */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let promise: Promise<T> | undefined;
  return () => (promise ??= make());
}

const pulledImages: Array<[string, string]> = [];
after(async () => {
  for (const [hostId, reference] of pulledImages) {
    await dockerFor(hostId).getImage(reference).remove({ force: true }).catch(() => undefined);
  }
});

/** One completed task of a small unique image, on host-a. */
const completedTask = once(async () => {
  const app = await buildTestApp({ after } as unknown as Parameters<typeof buildTestApp>[0]);
  const user = await createUser(app, { balance: FUNDS });
  const image = await pushUniqueImage('dcu', 64);
  pulledImages.push(['host-a', image], ['host-b', image]);
  const taskId = await startTaskChecked(app, user, image, 'host-a');
  const data = await waitFor(app, user.token, taskId, ended);
  assert.equal(data.state, 'completed', JSON.stringify(data));
  return { user, image, taskId, data };
});

/** A large image (~100 MB of random bytes) so that each phase lasts long enough to cancel. */
const largeImage = once(async () => {
  const image = await pushUniqueImage('dcu-large', 100 * 1024);
  pulledImages.push(['host-a', image], ['host-b', image]);
  return image;
});

test('start → completed: status fields, the archive on disk and in MinIO, the row, the workflow history', { timeout: 300_000 }, async (t) => {
  const app = await buildTestApp(t);
  const { user, image, taskId, data } = await completedTask();

  assert.equal(data.task_id, taskId);
  assert.equal(data.state_display, 'Completed');
  assert.equal(data.progress, 100);
  assert.equal(data.docker_image_name, image);
  assert.equal(data.username, user.username);
  assert.equal(data.host, 'host-a');
  assert.equal(data.error_message, '');
  assert.match(data.start_time, TIME);
  assert.match(data.end_time, TIME);
  assert.ok(Number.isInteger(data.duration) && data.duration >= 0);
  assert.equal(data.artifacts_expired, false);
  const repo = image.slice(0, image.lastIndexOf(':')).replace(/[^A-Za-z0-9._-]/g, '_');
  const objectPattern = new RegExp(`^${user.username.replace(/[.-]/g, '\\$&')}/${repo.replace(/[.-]/g, '\\$&')}_v1-[0-9a-f]{12}\\.tar\\.gz$`);
  assert.match(data.minio_object_name, objectPattern);
  assert.equal(data.gzip_file_name, `${taskId}_${data.minio_object_name.split('/')[1]}`);
  assert.match(data.sha256, /^[0-9a-f]{64}$/);
  assert.ok(data.size_bytes > 64 * 1024, 'the tar holds the random layer');
  assert.ok(data.compressed_bytes > 0);
  assert.equal(data.bytes_done, data.compressed_bytes);
  assert.equal(data.bytes_total, data.compressed_bytes);

  // The short digest is the image's id on the host that pulled it.
  const onA = await inspectOn('host-a', image);
  assert.ok(onA);
  assert.ok(data.minio_object_name.endsWith(`-${onA.Id.slice('sha256:'.length, 'sha256:'.length + 12)}.tar.gz`));

  // The row in PostgreSQL.
  const row = await rowOf(taskId);
  assert.equal(row?.state, 'completed');
  assert.equal(row?.sha256, data.sha256);
  assert.equal(row?.sizeBytes, data.size_bytes);
  assert.equal(row?.compressedBytes, data.compressed_bytes);
  assert.equal(row?.minioObjectName, data.minio_object_name);
  assert.equal(row?.imageId, onA.Id, 'the image id is recorded');
  assert.equal(row?.charged, dcuCharge(data.size_bytes, baseConfig.dcu.pricePerGb), 'charged every started GB of tar');

  // The archive in the gzip dir: complete, no partial file beside it.
  const local = await readFile(join(GZIP_DIR, data.gzip_file_name));
  assert.equal(local.length, data.compressed_bytes);
  assert.equal(sha256(local), data.sha256);
  assert.deepEqual(await localFilesOf(taskId), [data.gzip_file_name]);
  assert.equal(gunzipSync(local).length, data.size_bytes, 'the tar size is the uncompressed size');

  // The object in MinIO: sha256 metadata = the task's = the bytes'; uploaded in parts (multipart ETag).
  const info = await minio.statObject(BUCKET, data.minio_object_name);
  assert.equal(await storedSha256(data.minio_object_name), data.sha256, 'its sha256 tag (uploaded while compressing)');
  assert.equal(info.size, data.compressed_bytes);
  assert.match(info.etag, /-\d+$/, 'a multipart upload');
  const remote = await objectBytes(data.minio_object_name);
  assert.equal(sha256(remote), data.sha256);
  assert.deepEqual(await uploadsUnder(`${user.username}/`), [], 'no unfinished upload');

  // The workflow: each phase its own activity, on host-a's queue, transitions persisted in order.
  const events = await historyOf(taskId);
  const scheduled = events.flatMap((e) => {
    const a = e.activityTaskScheduledEventAttributes;
    return a ? [{ type: a.activityType?.name, queue: a.taskQueue?.name, input: a.input }] : [];
  });
  assert.deepEqual(scheduled.map((s) => s.type), PACKAGING_ACTIVITIES);
  for (const s of scheduled) assert.equal(s.queue, CONTROL_ACTIVITIES.includes(String(s.type)) ? 'berth-control' : 'berth-host-host-a', String(s.type));
  const handle = temporal.workflow.getHandle(dcuWorkflowId(taskId));
  assert.equal(await closedStatus(temporal, handle.workflowId), 'COMPLETED');
  const queried = await handle.query<{ state: string; sha256: string }>('status');
  assert.equal(queried.state, 'completed');
  assert.equal(queried.sha256, data.sha256);

  // The owner finds it in a query.
  const listed = await dcuApi(app, user.token, 'GET', '/api/dcu/query');
  assert.equal(listed.json().data.total, 1);
  assert.equal(listed.json().data.items[0].task_id, taskId);
});

test('the archive is real: docker load on the other host, and run it', { timeout: 300_000 }, async () => {
  const { image, data } = await completedTask();
  const hostB = dockerFor('host-b');
  await hostB.getImage(image).remove({ force: true }).catch(() => undefined);
  assert.equal(await inspectOn('host-b', image), null, 'host-b does not have the image before');

  const archive = await objectBytes(data.minio_object_name);
  const loading = await hostB.loadImage(Readable.from(archive), { quiet: true });
  const output = await new Promise<Array<{ error?: string; stream?: string }>>((resolve, reject) =>
    hostB.modem.followProgress(loading, (error: Error | null, messages: Array<{ error?: string }>) => (error ? reject(error) : resolve(messages))),
  );
  assert.ok(!output.some((m) => m.error), JSON.stringify(output));
  const loaded = await inspectOn('host-b', image);
  assert.ok(loaded, 'docker load put the tagged image on host-b');
  assert.equal(loaded.Id, (await inspectOn('host-a', image))!.Id, 'the same image id as on host-a');

  const container = await hostB.createContainer({ Image: image, Cmd: ['sh', '-c', 'echo dcu-archive-ok; test -s /blob'] });
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const logs = await container.logs({ stdout: true, stderr: true });
    assert.equal(StatusCode, 0);
    assert.match(logs.toString('utf8'), /dcu-archive-ok/);
  } finally {
    await container.remove({ force: true });
    await hostB.getImage(image).remove({ force: true }).catch(() => undefined);
  }
});

test('download: 302 to a presigned MinIO URL that serves the archive', { timeout: 300_000 }, async (t) => {
  const app = await buildTestApp(t);
  const { user, taskId, data } = await completedTask();
  const res = await dcuApi(app, user.token, 'GET', `/api/dcu/download/${taskId}`);
  assert.equal(res.statusCode, 302, res.body);
  const location = String(res.headers.location);
  assert.match(location, /^http:\/\/127\.0\.0\.1:9000\/.*X-Amz-Signature=/);
  const fetched = await fetch(location);
  assert.equal(fetched.status, 200);
  assert.match(fetched.headers.get('content-disposition') ?? '', /attachment; filename=".*\.tar\.gz"/);
  const bytes = Buffer.from(await fetched.arrayBuffer());
  assert.equal(sha256(bytes), data.sha256);
});

test('an unknown image fails with the registry’s reason and progress -1', { timeout: 120_000 }, async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: FUNDS });
  const image = `${REGISTRY}/library/no-such-repo-${randomUUID().slice(0, 8)}:v1`;
  const taskId = await startTaskChecked(app, user, image);
  const data = await waitFor(app, user.token, taskId, ended);
  assert.equal(data.state, 'failed');
  assert.equal(data.state_display, 'Failed');
  assert.equal(data.progress, -1);
  assert.match(data.error_message, /not found/);
  // In Berth's words: the registry's own text stays in the host worker's log.
  assert.match(data.error_message, /^not found: \S+ is not in 127\.0\.0\.1:5000$/);
  assert.match(data.end_time, TIME);
  assert.equal(data.minio_object_name, '');
  assert.equal(data.gzip_file_name, '');

  const row = await rowOf(taskId);
  assert.equal(row?.state, 'failed');
  assert.equal(row?.errorMessage, data.error_message);
  assert.equal(await closedStatus(temporal, dcuWorkflowId(taskId)), 'FAILED');
  const events = await historyOf(taskId);
  const pulls = events.filter((e) => e.activityTaskStartedEventAttributes && e.activityTaskStartedEventAttributes.attempt === 1);
  assert.ok(pulls.length > 0);
  assert.ok(!events.some((e) => e.activityTaskStartedEventAttributes && (e.activityTaskStartedEventAttributes.attempt ?? 1) > 1), 'non-retryable: no second attempt');
});

test('bad input is a 400, a missing token a 401, an unknown route a 404: all in the envelope', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: FUNDS });
  const start = (payload: unknown) => dcuApi(app, user.token, 'POST', '/api/dcu/start', payload);

  assert.match(assertErrorEnvelope(await start({ username: user.username }), 400).message, /docker_image_name/);
  assert.match(assertErrorEnvelope(await start({ username: user.username, docker_image_name: 'Busy Box' }), 400).message, /docker_image_name|whitespace|invalid/i);
  assert.match(assertErrorEnvelope(await start({ username: user.username, docker_image_name: 'Busybox' }), 400).message, /lowercase/);
  assertErrorEnvelope(await start({ username: user.username, docker_image_name: '' }), 400);
  assertErrorEnvelope(
    await app.inject({ method: 'POST', url: '/api/dcu/start', headers: { ...bearer(user.token), 'content-type': 'application/json' }, payload: '{"username": ' }),
    400,
  );
  assertErrorEnvelope(await dcuApi(app, user.token, 'GET', '/api/dcu/status/not-a-uuid'), 400);
  assertErrorEnvelope(await dcuApi(app, user.token, 'GET', '/api/dcu/query?state=sleeping'), 400);
  assertErrorEnvelope(await dcuApi(app, user.token, 'GET', '/api/dcu/query?page=abc'), 400);
  assertErrorEnvelope(await start({ username: user.username, docker_image_name: 'busybox', host: 'host-z' }), 422);

  assert.match(assertErrorEnvelope(await dcuApi(app, null, 'POST', '/api/dcu/start', { username: user.username, docker_image_name: 'busybox' }), 401).message, /Authorization/);
  assertErrorEnvelope(await dcuApi(app, 'not-a-token', 'GET', `/api/dcu/status/${randomUUID()}`), 401);
  assertErrorEnvelope(await dcuApi(app, user.token, 'GET', '/api/dcu/nothing-here'), 404);
  assertErrorEnvelope(await dcuApi(app, user.token, 'GET', `/api/dcu/status/${randomUUID()}`), 404);

  // Health is open, in the envelope too; other routes keep problem+json.
  const health = await dcuApi(app, null, 'GET', '/api/dcu/health');
  assert.equal(health.statusCode, 200);
  assert.equal(health.json().code, 0);
  assert.equal(health.json().data.status, 'healthy');
  const elsewhere = await dcuApi(app, null, 'GET', '/api/v1/users/me');
  assert.match(String(elsewhere.headers['content-type']), /^application\/problem\+json/);

  assert.equal((await testDb().db.select().from(dcuTasks).where(eq(dcuTasks.userId, user.id))).length, 0, 'nothing was started');
});

test('without an Accept-Language asking for English, the texts are the original service\'s Chinese', { timeout: 300_000 }, async (t) => {
  const app = await buildTestApp(t);
  const { user, image, taskId } = await completedTask();
  const dcu = (method: 'GET' | 'POST', url: string, headers: Record<string, string> = {}, payload?: object) =>
    app.inject({ method, url, headers: { ...bearer(user.token), ...headers }, ...(payload ? { payload } : {}) });

  // The status and the list: 成功, 已完成; the envelope and the fields as they are in English.
  const notEnglish: Array<Record<string, string>> = [{}, { 'accept-language': 'zh-CN,zh;q=0.9,en;q=0.8' }, { 'accept-language': 'fr' }, { 'accept-language': '*' }];
  for (const headers of notEnglish) {
    const status = await dcu('GET', `/api/dcu/status/${taskId}`, headers);
    assert.equal(status.statusCode, 200, status.body);
    const body = status.json<{ code: number; status: number; message: string; data: { state: string; state_display: string } }>();
    assert.deepEqual([body.code, body.status, body.message], [0, 200, '成功'], JSON.stringify(headers));
    assert.equal(body.data.state, 'completed');
    assert.equal(body.data.state_display, '已完成', JSON.stringify(headers));
  }
  const listed = (await dcu('GET', `/api/dcu/query?docker_image_name=${encodeURIComponent(image)}`)).json();
  assert.equal(listed.message, '成功');
  assert.deepEqual(listed.data.items.map((i: { state_display: string }) => i.state_display), ['已完成']);
  // English when the first choice is English, whatever follows.
  for (const language of ['en', 'en-US', 'en-GB,zh-CN;q=0.5', 'zh-CN;q=0.5, en-US']) {
    const status = (await dcu('GET', `/api/dcu/status/${taskId}`, { 'accept-language': language })).json();
    assert.deepEqual([status.message, status.data.state_display], ['success', 'Completed'], language);
  }

  // Errors: the service's own, in Chinese; the others named by their status, the English detail after it.
  assert.equal(assertErrorEnvelope(await dcu('GET', `/api/dcu/status/${randomUUID()}`), 404).message, '任务不存在。');
  assert.equal(assertErrorEnvelope(await dcu('POST', `/api/dcu/cancel/${taskId}`), 409).message, '任务已结束（已完成）。');
  assert.match(assertErrorEnvelope(await dcu('POST', '/api/dcu/start', {}, { username: user.username }), 400).message, /^请求无效：.*docker_image_name/);
  assert.match(assertErrorEnvelope(await dcu('POST', '/api/dcu/start', {}, { username: 'someone-else', docker_image_name: image }), 403).message, /^username 必须是您自己的用户名/);
  assert.equal(assertErrorEnvelope(await dcu('POST', '/api/dcu/start', {}, { username: user.username, docker_image_name: image, host: 'host-z' }), 422).message, '主机 "host-z" 不存在。');
  assert.match(assertErrorEnvelope(await app.inject({ method: 'GET', url: `/api/dcu/status/${taskId}` }), 401).message, /^未通过身份验证：/);
  assert.equal(assertErrorEnvelope(await dcu('GET', '/api/dcu/nothing-here'), 404).message, '没有此路由：GET /api/dcu/nothing-here。');
  assert.equal(assertErrorEnvelope(await dcu('GET', '/api/dcu/nothing-here', { 'accept-language': 'en' }), 404).message, 'No route GET /api/dcu/nothing-here.');

  // A start: 任务已启动 (by a user of its own: the shared task's owner keeps one task for the other tests).
  const starter = await createUser(app, { balance: FUNDS });
  const started = await app.inject({
    method: 'POST',
    url: '/api/dcu/start',
    headers: bearer(starter.token),
    payload: { username: starter.username, docker_image_name: image, host: 'host-a' },
  });
  assert.equal(started.statusCode, 200, started.body);
  assert.equal(started.json().message, '任务已启动');
  const again = await waitFor(app, starter.token, started.json().data.task_id, ended);
  assert.equal(again.state, 'completed', JSON.stringify(again));
});

test('a user sees and starts only their own tasks; an admin sees all', { timeout: 300_000 }, async (t) => {
  const app = await buildTestApp(t);
  const { user: owner, taskId } = await completedTask();
  const other = await createUser(app, { balance: FUNDS });

  assertErrorEnvelope(await dcuApi(app, other.token, 'GET', `/api/dcu/status/${taskId}`), 404);
  assertErrorEnvelope(await dcuApi(app, other.token, 'POST', `/api/dcu/cancel/${taskId}`), 404);
  assertErrorEnvelope(await dcuApi(app, other.token, 'GET', `/api/dcu/download/${taskId}`), 404);
  const mismatch = await dcuApi(app, other.token, 'POST', '/api/dcu/start', { username: owner.username, docker_image_name: 'busybox' });
  assert.match(assertErrorEnvelope(mismatch, 403).message, /username/);
  const theirs = await dcuApi(app, other.token, 'GET', `/api/dcu/query?username=${owner.username}`);
  assert.deepEqual(theirs.json().data, { total: 0, items: [] });

  const admin = await adminToken(app);
  assert.equal((await statusOf(app, admin, taskId)).task_id, taskId);
  const all = await dcuApi(app, admin, 'GET', `/api/dcu/query?username=${owner.username}`);
  assert.equal(all.json().data.total, 1);
  assertErrorEnvelope(await dcuApi(app, owner.token, 'POST', `/api/dcu/cancel/${taskId}`), 409);
  assertErrorEnvelope(
    await dcuApi(app, admin, 'POST', '/api/dcu/start', { username: `nobody-${randomUUID().slice(0, 8)}`, docker_image_name: 'busybox' }),
    400,
  );
});

test('query: substring filter, state filter, paging, page_size capped, empty parameters', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: FUNDS });
  const token = randomUUID().slice(0, 8);
  const base = Date.now() - 3_600_000;
  const rows = Array.from({ length: 105 }, (_, i) => ({
    userId: user.id,
    username: user.username,
    dockerImageName: i < 3 ? `${REGISTRY}/team-${token}/app-${i}:1.${i}` : `${REGISTRY}/other/app-${i}:latest`,
    state: i % 2 === 0 ? ('failed' as const) : ('completed' as const),
    createdAt: new Date(base + i * 1000),
  }));
  await testDb().db.insert(dcuTasks).values(rows);
  const query = async (qs: string) => {
    const res = await dcuApi(app, user.token, 'GET', `/api/dcu/query?${qs}`);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().code, 0);
    return res.json().data as { total: number; items: Array<{ docker_image_name: string; state: string; task_id: string }> };
  };

  const matching = await query(`docker_image_name=team-${token}`);
  assert.equal(matching.total, 3);
  assert.deepEqual(
    matching.items.map((i) => i.docker_image_name),
    [2, 1, 0].map((i) => `${REGISTRY}/team-${token}/app-${i}:1.${i}`),
    'newest first',
  );
  assert.equal((await query(`docker_image_name=TEAM-${token.toUpperCase()}`)).total, 3, 'case-insensitive');
  assert.equal((await query('docker_image_name=%25')).total, 0, 'a % matches literally');
  assert.equal((await query(`docker_image_name=team-${token}&state=failed`)).total, 2);

  const page1 = await query(`docker_image_name=team-${token}&page=1&page_size=2`);
  const page2 = await query(`docker_image_name=team-${token}&page=2&page_size=2`);
  const page3 = await query(`docker_image_name=team-${token}&page=3&page_size=2`);
  assert.deepEqual([page1.total, page2.total, page3.total], [3, 3, 3]);
  assert.deepEqual([page1.items.length, page2.items.length, page3.items.length], [2, 1, 0]);
  assert.equal(new Set([...page1.items, ...page2.items].map((i) => i.task_id)).size, 3);

  const capped = await query('page_size=1000');
  assert.equal(capped.total, 105);
  assert.equal(capped.items.length, 100, 'page_size is capped at 100');
  const defaults = await query('docker_image_name=&username=&state=&page=&page_size=');
  assert.equal(defaults.total, 105);
  assert.equal(defaults.items.length, 10);
  assert.ok(defaults.items.every((i) => i.state === 'failed' || i.state === 'completed'));
});

test('cancel through the API: the running phase stops, nothing partial stays, the task fails "cancelled"', { timeout: 600_000 }, async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: FUNDS });
  const image = await largeImage();
  const taskId = await startTaskChecked(app, user, image, 'host-a');
  // Cancel once a phase activity is running on the host (not merely scheduled).
  const handle = temporal.workflow.getHandle(dcuWorkflowId(taskId));
  let runningPhase: string | undefined;
  for (let i = 0; i < 1200 && !runningPhase; i++) {
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    runningPhase = pending.find((a) => ['dockerPull', 'dcuCompress', 'dcuUpload'].includes(a.activityType?.name ?? '') && a.lastStartedTime)
      ?.activityType?.name ?? undefined;
    if (!runningPhase) await sleep(50);
  }
  assert.ok(runningPhase, 'a phase activity started');
  const running = await statusOf(app, user.token, taskId);
  assert.ok(['downloading', 'compressing', 'uploading'].includes(running.state), running.state);
  assert.equal(running.progress, { downloading: 25, compressing: 50, uploading: 75 }[running.state as 'downloading']);

  const cancel = await dcuApi(app, user.token, 'POST', `/api/dcu/cancel/${taskId}`);
  assert.equal(cancel.statusCode, 200, cancel.body);
  assert.equal(cancel.json().data.cancel_requested, true);
  const data = await waitFor(app, user.token, taskId, ended);
  assert.equal(data.state, 'failed');
  assert.equal(data.error_message, 'cancelled');
  assert.equal(data.progress, -1);
  assert.equal((await rowOf(taskId))?.errorMessage, 'cancelled');

  assert.deepEqual(await localFilesOf(taskId), [], 'no archive or partial file');
  assert.deepEqual(await objectsUnder(`${user.username}/`), [], 'no object');
  assert.deepEqual(await uploadsUnder(`${user.username}/`), [], 'no unfinished multipart upload');

  const events = await historyOf(taskId);
  assert.ok(events.some((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'cancel'));
  const scheduled = new Map(events.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [[String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name]] : [])));
  const cancelRequested = events.flatMap((e) => (e.activityTaskCancelRequestedEventAttributes ? [scheduled.get(String(e.activityTaskCancelRequestedEventAttributes.scheduledEventId))] : []));
  if (cancelRequested.length === 0) {
    // The phase seen running may have finished before the workflow took the signal: then the
    // cancel came between phases, and no later phase may have been scheduled after it.
    const signaledAt = events.find((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'cancel')!.eventId;
    const completed = events.find((e) => e.activityTaskCompletedEventAttributes && scheduled.get(String(e.activityTaskCompletedEventAttributes.scheduledEventId)) === runningPhase);
    assert.ok(completed && Number(String(completed.eventId)) < Number(String(signaledAt)), `${runningPhase} was neither cancelled nor done before the cancel`);
    const phasesAfter = events.filter((e) => Number(String(e.eventId)) > Number(String(signaledAt)) && ['dockerPull', 'dcuCompress', 'dcuUpload'].includes(e.activityTaskScheduledEventAttributes?.activityType?.name ?? ''));
    assert.deepEqual(phasesAfter, [], 'no phase scheduled after the cancel');
  } else {
    assert.deepEqual(cancelRequested, [runningPhase], 'the running phase activity was cancelled');
  }
  assert.equal(await closedStatus(temporal, dcuWorkflowId(taskId)), 'FAILED');
  assertErrorEnvelope(await dcuApi(app, user.token, 'POST', `/api/dcu/cancel/${taskId}`), 409);
});

test('cancel with the temporal CLI while compressing: the compress activity removes its partial file', { timeout: 600_000 }, async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: FUNDS });
  const image = await largeImage();
  const taskId = await startTaskChecked(app, user, image, 'host-b');
  const compressing = await waitFor(app, user.token, taskId, (d) => d.state !== 'idle' && d.state !== 'downloading', 6000);
  assert.equal(compressing.state, 'compressing', 'still compressing when cancelled');
  // The record says compressing a moment before the compress activity is scheduled: wait until it runs.
  const handle = temporal.workflow.getHandle(dcuWorkflowId(taskId));
  let compressRunning = false;
  for (let i = 0; i < 600 && !compressRunning; i++) {
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    compressRunning = pending.some((a) => a.activityType?.name === 'dcuCompress' && a.lastStartedTime);
    if (!compressRunning) await sleep(50);
  }
  assert.ok(compressRunning, 'the compress activity started');

  await temporalCli(['workflow', 'signal', '--workflow-id', dcuWorkflowId(taskId), '--name', 'cancel']);
  const data = await waitFor(app, user.token, taskId, ended);
  assert.equal(data.state, 'failed');
  assert.equal(data.error_message, 'cancelled');
  assert.deepEqual(await localFilesOf(taskId), [], 'no archive or partial file');
  assert.deepEqual(await objectsUnder(`${user.username}/`), [], 'no object');
  assert.deepEqual(await uploadsUnder(`${user.username}/`), [], 'no unfinished multipart upload');

  const events = await historyOf(taskId);
  const scheduled = new Map(events.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [[String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name]] : [])));
  const acknowledged = events.flatMap((e) => (e.activityTaskCanceledEventAttributes ? [scheduled.get(String(e.activityTaskCanceledEventAttributes.scheduledEventId))] : []));
  const trail = events.map((e) => `${e.eventType}${e.activityTaskScheduledEventAttributes ? `:${e.activityTaskScheduledEventAttributes.activityType?.name}` : ''}`);
  assert.deepEqual(acknowledged, ['dcuCompress'], `the compress activity acknowledged the cancel: ${trail.join(' ')}`);
});

test('activities: a cancelled upload aborts its multipart upload; a cancelled compress leaves no partial file', { timeout: 120_000 }, async () => {
  await mkdir(GZIP_DIR, { recursive: true });
  const storage = createStorageActivities({ minio, bucket: BUCKET, partSizeBytes: 5 * 1024 * 1024, gzipDir: GZIP_DIR });
  const fileName = `${randomUUID()}_activity-test.tar.gz`;
  const bytes = randomBytes(23 * 1024 * 1024);
  await writeFile(join(GZIP_DIR, fileName), bytes);
  const prefix = `act-${randomUUID().slice(0, 8)}`;
  const input = { taskId: randomUUID(), fileName, objectName: `${prefix}/${fileName}`, sha256: sha256(bytes), username: prefix, reference: 'test' };
  try {
    const cancelled = new MockActivityEnvironment({ attempt: 1 });
    const beats: Array<{ bytesDone: number }> = [];
    cancelled.on('heartbeat', (details: { bytesDone: number }) => {
      beats.push(details);
      if (details.bytesDone > 0) cancelled.cancel('CANCELLED'); // after the first part
    });
    await assert.rejects(cancelled.run(storage.dcuUpload, input), CancelledFailure);
    assert.ok(beats.some((b) => b.bytesDone === 5 * 1024 * 1024), 'one part was sent before the cancel');
    assert.deepEqual(await uploadsUnder(`${prefix}/`), [], 'the multipart upload was aborted');
    assert.deepEqual(await objectsUnder(`${prefix}/`), []);

    const uploaded: DcuUploaded = await new MockActivityEnvironment().run(storage.dcuUpload, input);
    assert.equal(uploaded.parts, 5);
    assert.equal((await minio.statObject(BUCKET, input.objectName)).metaData[SHA256_METADATA], input.sha256);
    const again: DcuUploaded = await new MockActivityEnvironment().run(storage.dcuUpload, input);
    assert.equal(again.parts, 0, 'a retry finds the object complete and uploads nothing');
    assert.deepEqual(await new MockActivityEnvironment().run(storage.dcuRemoveObject, input.objectName), { removed: true, abortedUploads: 0 });
    assert.deepEqual(await objectsUnder(`${prefix}/`), []);
  } finally {
    await rm(join(GZIP_DIR, fileName), { force: true });
  }

  const docker = dockerFor('host-a');
  const busybox = `${REGISTRY}/library/busybox:1.35`;
  const pull = await docker.pull(busybox);
  await new Promise((resolve, reject) => docker.modem.followProgress(pull, (error: Error | null) => (error ? reject(error) : resolve(null))));
  const host = createDcuHostActivities({ docker, hostId: 'host-a', gzipDir: GZIP_DIR });
  const archive = `${randomUUID()}_compress-test.tar.gz`;
  const compress = new MockActivityEnvironment({ attempt: 1 });
  compress.on('heartbeat', () => compress.cancel('CANCELLED'));
  await assert.rejects(compress.run(host.dcuCompress, { taskId: randomUUID(), reference: busybox, fileName: archive }), CancelledFailure);
  assert.deepEqual((await readdir(GZIP_DIR)).filter((n) => n.startsWith(archive)), [], 'no partial file');

  const done: DcuArchive = await new MockActivityEnvironment({ attempt: 1 }).run(host.dcuCompress, { taskId: randomUUID(), reference: busybox, fileName: archive });
  const written = await readFile(join(GZIP_DIR, archive));
  assert.equal(sha256(written), done.sha256);
  assert.equal(written.length, done.compressedBytes);
  assert.deepEqual(await new MockActivityEnvironment().run(host.dcuRemoveLocalFiles, archive), [archive]);
  const quiet = new DefaultLogger('ERROR');
  await assert.rejects(new MockActivityEnvironment({}, { logger: quiet }).run(host.dcuRemoveLocalFiles, '../../etc/passwd.tar.gz'), /invalid archive name/);
});

test('the transition activity persists legal transitions only, and a repeated one is a no-op', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: FUNDS });
  const [row] = await testDb()
    .db.insert(dcuTasks)
    .values({ userId: user.id, username: user.username, dockerImageName: 'busybox' })
    .returning();
  const taskId = row!.id;
  const activities = createDcuDbActivities({ db: testDb().db });
  const env = () => new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') });
  const transition = (to: 'downloading' | 'compressing' | 'completed' | 'failed', patch = {}) =>
    env().run(activities.dcuTransition, { taskId, to, patch });

  await assert.rejects(transition('completed'), /illegal transition idle → completed/);
  await assert.rejects(transition('compressing'), /illegal transition idle → compressing/);
  assert.equal((await rowOf(taskId))?.state, 'idle', 'a refused transition changes nothing');

  assert.deepEqual(await transition('downloading', { hostId: 'host-a' }), { from: 'idle', to: 'downloading', changed: true });
  const downloading = await rowOf(taskId);
  assert.equal(downloading?.state, 'downloading');
  assert.ok(downloading?.startTime, 'start_time set on the first working state');
  assert.deepEqual(await transition('downloading'), { from: 'downloading', to: 'downloading', changed: false }, 'a retry is a no-op');

  assert.deepEqual(await transition('failed', { errorMessage: 'boom' }), { from: 'downloading', to: 'failed', changed: true });
  const failed = await rowOf(taskId);
  assert.equal(failed?.errorMessage, 'boom');
  assert.ok(failed?.endTime, 'end_time set on a terminal state');
  await assert.rejects(transition('compressing'), /illegal transition failed → compressing/);
  await assert.rejects(transition('completed'), /illegal transition failed → completed/);
  assert.equal((await rowOf(taskId))?.state, 'failed');
});

test('the cleanups list the hosts with listHostIds (not the DCU-named dcuListHosts); a retention of a century removes nothing', { timeout: 180_000 }, async () => {
  const activityTypes = async (workflowId: string) =>
    ((await temporal.workflow.getHandle(workflowId).fetchHistory()).events ?? []).flatMap((e) =>
      e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType?.name ?? ''] : [],
    );
  // Started directly (not through their schedules), on ids of their own: with this cutoff no file or object is old enough.
  const start = <W extends typeof dcuGzipCleanupWorkflow | typeof dcuObjectCleanupWorkflow>(workflow: W) =>
    temporal.workflow.start(workflow.type, {
      taskQueue: workflow.taskQueue,
      workflowId: `test-${workflow.type}-${randomUUID().slice(0, 8)}`,
      args: [{ retentionDays: 36_500 }],
    });

  const gzip = await start(dcuGzipCleanupWorkflow);
  const swept = (await gzip.result()) as DcuGzipCleanupResult;
  assert.ok(new Date(swept.cutoff).getUTCFullYear() < 1950, swept.cutoff);
  for (const hostId of ['host-a', 'host-b']) assert.ok(swept.hosts.some((h) => h.hostId === hostId), `${hostId} was swept`);
  for (const h of swept.hosts) if ('deleted' in h) assert.deepEqual(h.deleted, [], h.hostId);
  const gzipSteps = await activityTypes(gzip.workflowId);
  assert.equal(gzipSteps[0], 'listHostIds', gzipSteps.join(' '));
  assert.ok(!gzipSteps.includes('dcuListHosts'), gzipSteps.join(' '));

  const objects = await start(dcuObjectCleanupWorkflow);
  const result = (await objects.result()) as DcuObjectCleanupResult;
  assert.deepEqual([result.deleted, result.expiredTasks], [[], 0]);
  const objectSteps = await activityTypes(objects.workflowId);
  assert.deepEqual(objectSteps.slice(0, 2), ['dcuTasksEndedBefore', 'listHostIds'], objectSteps.join(' '));
  assert.ok(!objectSteps.includes('dcuListHosts'), objectSteps.join(' '));
});
