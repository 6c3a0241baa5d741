/**
 * DCU cost and quota on the real stack: the per-user limit on tasks in flight (429 in the
 * envelope, counted under the user's row lock), the storage quota (409), the charge through
 * the ledger once the upload completed (once; a balance that cannot pay fails the task and
 * removes its object), the reuse of another task's archive by a server-side copy in MinIO
 * (no second compress), and a host that refuses DCU work for want of free disk.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { and, eq } from 'drizzle-orm';
import { ApplicationFailure } from '@temporalio/common';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { BucketItem } from 'minio';
import { dcuTasks, ledgerEntries, users } from '../../db/schema.js';
import { connectTemporal } from '../../core/temporal.js';
import { parseImageReference } from '../../core/image-ref.js';
import { GB } from '../../core/sizes.js';
import { dcuCharge } from '../../billing/prices.js';
import { InsufficientFundsError } from '../../billing/ledger.js';
import { createDcuDbActivities } from '../../activities/dcu-db.js';
import { createDcuHostActivities, freeBytes } from '../../activities/dcu-host.js';
import { FailureType } from '../../core/failures.js';
import { IMAGE_METADATA, SHA256_METADATA } from '../../activities/storage.js';
import { dcuWorkflow, dcuWorkflowId, type DcuInput } from '../../contracts/dcu.js';
import { balanceOf, baseConfig, buildTestApp, createUser, testDb, type TestUser } from '../support/app.js';
import { inspectOn, pushUniqueImage } from '../support/images.js';
import { closedStatus } from '../support/history.js';
import { REGISTRY, dockerFor } from '../support/stack.js';
import { BUCKET, FUNDS, GZIP_DIR, hostConfig, minio, objectBytes, quiet, rowOf, sha256, startRequest, startOwnHost, startTask, waitEnded, type TaskData } from '../support/dcu.js';
import type { ApiConfig } from '../../core/config.js';

// The worker made here (a host of its own) logs only errors, and leaves signals to the test runner.
Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });

const temporal = await connectTemporal(baseConfig.temporal);
after(() => temporal.connection.close());

const PRICE = baseConfig.dcu.pricePerGb;

/** The app with DCU limits of the test's choosing (the rest as the stack configures it). */
const appWith = (t: Parameters<typeof buildTestApp>[0], dcu: Partial<ApiConfig['dcu']> = {}) =>
  buildTestApp(t, { dcu: { ...baseConfig.dcu, ...dcu } });

/** The envelope of an error: code = status, data null, JSON. */
function assertErrorEnvelope(res: { statusCode: number; headers: Record<string, unknown>; body: string; json: () => unknown }, status: number): string {
  assert.equal(res.statusCode, status, res.body);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const body = res.json() as { code: number; status: number; message: string; data: unknown };
  assert.deepEqual(Object.keys(body).sort(), ['code', 'data', 'message', 'status']);
  assert.equal(body.code, status);
  assert.equal(body.status, status);
  assert.equal(body.data, null);
  return body.message;
}

const tasksOf = (userId: string) => testDb().db.select().from(dcuTasks).where(eq(dcuTasks.userId, userId));
const dcuChargesOf = (userId: string) =>
  testDb().db.select().from(ledgerEntries).where(and(eq(ledgerEntries.userId, userId), eq(ledgerEntries.kind, 'dcu_charge')));

async function activityTypes(taskId: string): Promise<string[]> {
  const events = (await temporal.workflow.getHandle(dcuWorkflowId(taskId)).fetchHistory()).events ?? [];
  return events.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType?.name ?? ''] : []));
}

async function objectsUnder(prefix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const item of minio.listObjectsV2(BUCKET, prefix, true) as AsyncIterable<BucketItem>) if (item.name) names.push(item.name);
  return names;
}

const pulled: Array<[string, string]> = [];
const localFiles: string[] = [];
after(async () => {
  for (const [hostId, reference] of pulled) await dockerFor(hostId).getImage(reference).remove({ force: true }).catch(() => undefined);
  const names = await readdir(GZIP_DIR).catch(() => [] as string[]);
  for (const name of names) if (localFiles.some((id) => name.startsWith(id))) await rm(join(GZIP_DIR, name), { force: true });
});

async function uniqueImage(prefix: string, kb: number): Promise<string> {
  const image = await pushUniqueImage(prefix, kb);
  pulled.push(['host-a', image], ['host-b', image]);
  return image;
}

// ------------------------------------------------------------------ tasks in flight

test('three starts at once with a limit of 2: two tasks, one 429 in the envelope; a start is accepted again once they ended', { timeout: 300_000 }, async (t) => {
  const app = await appWith(t, { maxInFlight: 2 });
  const user = await createUser(app, { balance: FUNDS });
  const image = await uniqueImage('dcu-limit', 4 * 1024);

  const responses = await Promise.all([0, 1, 2].map(() => startRequest(app, user, image)));
  const statuses = responses.map((r) => r.statusCode).sort();
  assert.deepEqual(statuses, [200, 200, 429], responses.map((r) => r.body).join('\n'));
  const refused = responses.find((r) => r.statusCode === 429)!;
  assert.match(assertErrorEnvelope(refused, 429), /2 DCU tasks in flight, the most allowed is 2/);
  const started = responses.filter((r) => r.statusCode === 200).map((r) => r.json().data.task_id as string);
  localFiles.push(...started);
  assert.deepEqual((await tasksOf(user.id)).map((r) => r.id).sort(), [...started].sort(), 'the refused start left no row');

  for (const taskId of started) assert.equal((await waitEnded(app, user.token, taskId)).state, 'completed');
  const again = await startTask(app, user, image);
  localFiles.push(again);
  assert.equal((await waitEnded(app, user.token, again)).state, 'completed');
});

test('a task row whose workflow is gone stops counting once the limit is reached: it is marked failed', { timeout: 300_000 }, async (t) => {
  const app = await appWith(t, { maxInFlight: 1 });
  const user = await createUser(app, { balance: FUNDS });
  // A row left "downloading" two minutes ago with no workflow (an operator terminated it, say).
  const [stale] = await testDb()
    .db.insert(dcuTasks)
    .values({ userId: user.id, username: user.username, hostId: 'host-a', dockerImageName: 'x', state: 'downloading', createdAt: new Date(Date.now() - 120_000) })
    .returning();
  const image = await uniqueImage('dcu-stale', 16);
  const taskId = await startTask(app, user, image);
  localFiles.push(taskId);
  const row = await rowOf(stale!.id);
  assert.equal(row?.state, 'failed');
  assert.match(row?.errorMessage ?? '', /workflow ended without finishing/);
  assert.equal((await waitEnded(app, user.token, taskId)).state, 'completed');
});

// ------------------------------------------------------------------ charge, reuse, quota

/** User A's completed DCU of an image of its own (~12 MB of random bytes), on host-a. */
let firstTask: Promise<{ owner: TestUser; image: string; taskId: string; data: TaskData }> | undefined;
function completedFirst() {
  return (firstTask ??= (async () => {
    const app = await appWith({ after } as unknown as Parameters<typeof buildTestApp>[0]);
    const owner = await createUser(app, { balance: FUNDS });
    const image = await uniqueImage('dcu-reuse', 12 * 1024);
    const taskId = await startTask(app, owner, image);
    localFiles.push(taskId);
    const data = await waitEnded(app, owner.token, taskId);
    assert.equal(data.state, 'completed', JSON.stringify(data));
    return { owner, image, taskId, data };
  })());
}

test('a completed DCU is charged once, through the ledger: every started GB of tar at the price', { timeout: 300_000 }, async () => {
  const { owner, taskId, data } = await completedFirst();
  const amount = Math.ceil(data.size_bytes! / GB) * PRICE;
  assert.equal(amount, dcuCharge(data.size_bytes!, PRICE));
  assert.ok(amount > 0);
  const charges = await dcuChargesOf(owner.id);
  assert.equal(charges.length, 1);
  assert.equal(charges[0]!.amount, -amount);
  assert.equal(charges[0]!.idempotencyKey, `dcu-charge-${taskId}`);
  assert.equal(charges[0]!.balanceAfter, FUNDS - amount);
  assert.equal(await balanceOf(owner.id), FUNDS - amount);
  assert.equal((await rowOf(taskId))?.charged, amount);
  assert.equal(data.charged, amount, 'the status shows the charge (made with the completed transition)');

  // The charge step again (a retried activity): the same entry, nothing moved.
  const db = createDcuDbActivities({ db: testDb().db });
  const again = await quiet().run(db.dcuChargeAndComplete, { taskId, userId: owner.id, reference: 'x', pricePerGb: PRICE, complete: {} });
  assert.deepEqual(again, { amount, applied: false });
  assert.equal((await dcuChargesOf(owner.id)).length, 1);
  assert.equal(await balanceOf(owner.id), FUNDS - amount);
});

test('the second DCU of an image, by another user: a server-side copy of the archive, no compress, the same sha256 and sizes; charged too', { timeout: 300_000 }, async (t) => {
  const app = await appWith(t);
  const { owner, image, taskId: firstId, data: first } = await completedFirst();
  const other = await createUser(app, { balance: FUNDS });
  const began = performance.now();
  const taskId = await startTask(app, other, image);
  const data = await waitEnded(app, other.token, taskId);
  const wallMs = performance.now() - began;
  localFiles.push(taskId);
  assert.equal(data.state, 'completed', JSON.stringify(data));
  assert.equal(data.sha256, first.sha256);
  assert.equal(data.size_bytes, first.size_bytes);
  assert.equal(data.compressed_bytes, first.compressed_bytes);
  assert.equal(data.gzip_file_name, '', 'no local archive was made');
  assert.equal(data.minio_object_name, `${other.username}/${first.minio_object_name.split('/')[1]}`, "the user's own object");

  // The history: a copy, no compress, no upload.
  const types = await activityTypes(taskId);
  assert.ok(types.includes('dcuCopyObject'), types.join(' '));
  assert.ok(!types.includes('dcuCompress'), `not compressed again: ${types.join(' ')}`);
  assert.ok(!types.includes('dcuUpload'), `not uploaded again: ${types.join(' ')}`);
  const handle = temporal.workflow.getHandle(dcuWorkflowId(taskId));
  assert.equal(await closedStatus(temporal, handle.workflowId), 'COMPLETED');
  assert.equal((await handle.query<{ reusedFrom: string }>('status')).reusedFrom, first.minio_object_name);

  // The copy in MinIO: the same sha256 metadata and bytes, this task's other metadata.
  const info = await minio.statObject(BUCKET, data.minio_object_name);
  assert.equal(info.metaData[SHA256_METADATA], first.sha256);
  assert.equal(info.metaData[IMAGE_METADATA], parseImageReference(image).reference);
  assert.equal(info.metaData['task-id'], taskId);
  assert.equal(info.size, first.compressed_bytes);
  assert.equal(sha256(await objectBytes(data.minio_object_name)), first.sha256);
  assert.equal((await minio.statObject(BUCKET, first.minio_object_name)).metaData['task-id'], firstId, 'the source is untouched');

  // The row: image id recorded, charged like a packaged one.
  const row = await rowOf(taskId);
  assert.equal(row?.imageId, (await inspectOn('host-a', image))!.Id);
  const amount = dcuCharge(first.size_bytes!, PRICE);
  assert.equal(row?.charged, amount);
  const charges = await dcuChargesOf(other.id);
  assert.deepEqual(charges.map((c) => [c.amount, c.idempotencyKey]), [[-amount, `dcu-charge-${taskId}`]]);
  assert.equal((await dcuChargesOf(owner.id)).length, 1, "the first user's charge is unchanged");

  const taskMs = row.endTime!.getTime() - row.createdAt.getTime();
  t.diagnostic(`reuse of a ${(first.size_bytes! / 1e6).toFixed(1)} MB tar (${(first.compressed_bytes! / 1e6).toFixed(1)} MB archive): row created → completed ${taskMs} ms; start → completed seen by polling ${wallMs.toFixed(0)} ms`);
});

test('the same user again: the archive is their own object already; nothing copied, and a failure would not remove it', { timeout: 300_000 }, async (t) => {
  const app = await appWith(t);
  const { owner, image, data: first } = await completedFirst();
  const taskId = await startTask(app, owner, image);
  const data = await waitEnded(app, owner.token, taskId);
  assert.equal(data.state, 'completed', JSON.stringify(data));
  assert.equal(data.minio_object_name, first.minio_object_name);
  assert.equal(data.sha256, first.sha256);
  const types = await activityTypes(taskId);
  assert.ok(types.includes('dcuCopyObject') && !types.includes('dcuCompress') && !types.includes('dcuUpload'), types.join(' '));
  assert.deepEqual(await objectsUnder(`${owner.username}/`), [first.minio_object_name], 'one object');
  assert.equal((await dcuChargesOf(owner.id)).length, 2, 'each task is charged');
});

test('the storage quota: a user whose stored archives reach it is refused with the usage and the quota (409)', { timeout: 300_000 }, async (t) => {
  const { owner, image, data: first } = await completedFirst();
  const small = await appWith(t, { quotaMb: 1 });
  const before = (await tasksOf(owner.id)).length;
  const message = assertErrorEnvelope(await startRequest(small, owner, image), 409);
  assert.match(message, /DCU storage quota reached/);
  // Each stored object counts once, whatever the number of tasks that name it.
  const mb = Math.round((first.compressed_bytes! / 1024 / 1024) * 10) / 10;
  assert.match(message, new RegExp(`use ${mb.toString().replace('.', '\\.')} MB of your 1 MB quota`), message);
  assert.equal((await tasksOf(owner.id)).length, before, 'nothing was started');

  // Under a quota it has not reached, the same user starts.
  const roomy = await appWith(t, { quotaMb: 1024 });
  const res = await startRequest(roomy, owner, image);
  assert.equal(res.statusCode, 200, res.body);
  assert.equal((await waitEnded(roomy, owner.token, res.json().data.task_id)).state, 'completed');
});

// ------------------------------------------------------------------ balance

test('a start needs one GB’s price in the balance; two tasks with only that much: one is charged, the other fails "insufficient balance", its object removed, nothing charged', { timeout: 300_000 }, async (t) => {
  const price = 10;
  const app = await appWith(t, { pricePerGb: price, maxInFlight: 2 });
  const poor = await createUser(app, { balance: price - 1 });
  const refused = assertErrorEnvelope(await startRequest(app, poor, `${REGISTRY}/library/busybox:1.35`), 409);
  assert.match(refused, /insufficient balance: a DCU task costs 10 per started GB of image and your balance is 9/);
  assert.equal((await tasksOf(poor.id)).length, 0);

  const user = await createUser(app, { balance: price });
  const [one, two] = await Promise.all([uniqueImage('dcu-funds', 64), uniqueImage('dcu-funds', 64)]);
  const ids = await Promise.all([startTask(app, user, one), startTask(app, user, two)]);
  localFiles.push(...ids);
  const ended = await Promise.all(ids.map((id) => waitEnded(app, user.token, id)));
  const done = ended.filter((d) => d.state === 'completed');
  const failed = ended.filter((d) => d.state === 'failed');
  assert.equal(done.length, 1, JSON.stringify(ended));
  assert.equal(failed.length, 1, JSON.stringify(ended));
  // Failed at its completion (both passed the check before any work: neither was charged yet), or,
  // when the other had completed by then, at that check.
  assert.match(failed[0]!.error_message, /^insufficient balance: packaging .* costs 10(; The balance \(0\) cannot pay 10\.|, the balance is 0)$/);

  assert.equal(await balanceOf(user.id), 0);
  const charges = await dcuChargesOf(user.id);
  assert.deepEqual(charges.map((c) => [c.amount, c.idempotencyKey]), [[-price, `dcu-charge-${done[0]!.task_id}`]], 'the completed task only');
  assert.equal((await rowOf(failed[0]!.task_id))?.charged, 0);
  assert.equal(failed[0]!.charged, 0);
  assert.equal(done[0]!.charged, price);
  assert.deepEqual(await objectsUnder(`${user.username}/`), [done[0]!.minio_object_name], "the failed task's object was removed");
  assert.deepEqual((await readdir(GZIP_DIR)).filter((n) => n.startsWith(failed[0]!.task_id)), [], 'and its local archive');
  assert.equal(await closedStatus(temporal, dcuWorkflowId(failed[0]!.task_id)), 'FAILED');
  assert.match(assertErrorEnvelope(await startRequest(app, user, one), 409), /your balance is 0/);
});

test('a balance that cannot pay for the image fails the task before any compress or upload', { timeout: 300_000 }, async (t) => {
  const app = await appWith(t, { pricePerGb: PRICE });
  const user = await createUser(app, { balance: PRICE });
  const image = await uniqueImage('dcu-broke', 16);
  const taskId = await startTask(app, user, image);
  localFiles.push(taskId);
  // Spent elsewhere between the start (which saw one GB's price) and the work.
  await testDb().db.update(users).set({ balance: 0 }).where(eq(users.id, user.id));
  const data = await waitEnded(app, user.token, taskId);
  assert.equal(data.state, 'failed');
  assert.match(data.error_message, new RegExp(`^insufficient balance: packaging this image \\(.* MB\\) costs ${PRICE}, the balance is 0$`));
  const types = await activityTypes(taskId);
  assert.ok(types.includes('dcuCheckBalance'), types.join(' '));
  assert.ok(!types.includes('dcuCompress') && !types.includes('dcuUpload') && !types.includes('dcuCopyObject'), `no work was done: ${types.join(' ')}`);
  assert.deepEqual(await objectsUnder(`${user.username}/`), []);
  assert.equal((await dcuChargesOf(user.id)).length, 0);
});

test('the balance check: the expected charge of the image against the balance, non-retryable when short', async () => {
  const activities = createDcuDbActivities({ db: testDb().db });
  const user = (await testDb().db.insert(users).values({ username: `dcu-check-${randomUUID().slice(0, 8)}`, passwordHash: 'x', balance: 25 }).returning())[0]!;
  after(() => testDb().db.delete(users).where(eq(users.id, user.id)));
  await activities.dcuCheckBalance({ userId: user.id, imageBytes: 2 * GB, pricePerGb: 10 });
  await assert.rejects(activities.dcuCheckBalance({ userId: user.id, imageBytes: 2 * GB + 1, pricePerGb: 10 }), (error: unknown) => {
    // The worker's interceptor makes it the non-retryable InsufficientFunds failure (workers/run-worker.ts).
    assert.ok(error instanceof InsufficientFundsError);
    assert.match(error.message, /^insufficient balance: packaging this image \(2048 MB\) costs 30, the balance is 25$/);
    return true;
  });
});

// ------------------------------------------------------------------ free disk on the host

test('compress activity: a host with less free disk than BERTH_DCU_MIN_FREE_MB refuses, non-retryably, and writes nothing', { timeout: 120_000 }, async () => {
  const image = await uniqueImage('dcu-disk', 16);
  const dir = await mkdtemp(join(tmpdir(), 'berth-dcu-disk-'));
  try {
    const docker = dockerFor('host-a');
    const stream = await docker.pull(image);
    await new Promise((resolve, reject) => docker.modem.followProgress(stream, (error: Error | null) => (error ? reject(error) : resolve(null))));
    const free = await freeBytes(dir);
    const minFreeMb = Math.ceil(free / 1024 / 1024) + 1024; // more than the disk has free
    const host = createDcuHostActivities({ docker, hostId: 'host-a', gzipDir: dir, minFreeMb });
    await assert.rejects(quiet().run(host.dcuCompress, { taskId: randomUUID(), reference: image, fileName: `${randomUUID()}_disk.tar.gz` }), (error: unknown) => {
      assert.ok(error instanceof ApplicationFailure, String(error));
      assert.equal(error.type, FailureType.DcuDiskFull);
      assert.equal(error.nonRetryable, true);
      assert.match(error.message, new RegExp(`^host host-a refuses new DCU work: its archive disk has [0-9.]+ MB free, less than the ${minFreeMb} MB`));
      return true;
    });
    assert.deepEqual(await readdir(dir), [], 'nothing written');

    // The stack's own threshold leaves room on this machine: the same activity with it compresses.
    const ok = createDcuHostActivities({ docker, hostId: 'host-a', gzipDir: dir, minFreeMb: hostConfig.dcu.minFreeMb });
    const archive: { compressedBytes: number } = await quiet().run(ok.dcuCompress, { taskId: randomUUID(), reference: image, fileName: `${randomUUID()}_disk.tar.gz` });
    assert.ok(archive.compressedBytes > 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a task on a host short of disk fails at once with the host’s reason: compress tried once, nothing uploaded or charged', { timeout: 300_000 }, async (t) => {
  const app = await appWith(t);
  const user = await createUser(app, { balance: FUNDS });
  const image = await uniqueImage('dcu-disk-task', 16);
  const dir = await mkdtemp(join(tmpdir(), 'berth-dcu-disk-'));

  // A host of its own: the real host activities on host-a's daemon, with a minimum free space
  // above what the disk has. Registered as down, so nothing else is ever sent to it.
  const minFreeMb = Math.ceil((await freeBytes(dir)) / 1024 / 1024) + 1024;
  const { hostId, stop } = await startOwnHost('disk', 'dcu-limits', { ...hostConfig, minio, dcu: { ...hostConfig.dcu, gzipDir: dir, minFreeMb } });
  const taskId = randomUUID();
  try {
    // What POST /api/dcu/start does, for a host the API would not pick.
    await testDb().db.insert(dcuTasks).values({ id: taskId, userId: user.id, username: user.username, hostId, dockerImageName: image, state: 'idle' });
    const input: DcuInput = { taskId, userId: user.id, username: user.username, hostId, reference: parseImageReference(image).reference, pricePerGb: PRICE };
    await temporal.workflow.start(dcuWorkflow.type, { taskQueue: dcuWorkflow.taskQueue, workflowId: dcuWorkflowId(taskId), args: [input] });
    const data = await waitEnded(app, user.token, taskId);
    assert.equal(data.state, 'failed', JSON.stringify(data));
    assert.match(data.error_message, new RegExp(`^host ${hostId} refuses new DCU work: its archive disk has [0-9.]+ MB free, less than the ${minFreeMb} MB`));
    const types = await activityTypes(taskId);
    assert.equal(types.filter((type) => type === 'dcuCompress').length, 1);
    assert.ok(!types.includes('dcuUpload') && !types.includes('dcuChargeAndComplete'), types.join(' '));
    assert.equal((await rowOf(taskId))?.charged, 0);
    assert.equal((await dcuChargesOf(user.id)).length, 0);
    assert.deepEqual(await readdir(dir), []);
    assert.equal(await closedStatus(temporal, dcuWorkflowId(taskId)), 'FAILED');
  } finally {
    await stop();
    await rm(dir, { recursive: true, force: true });
  }
});
