/**
 * DCU under faults, on the real stack (real Docker, MinIO, PostgreSQL, Temporal; nothing
 * mocked): crafted input, a gzip dir that cannot be written, MinIO stopped while the upload
 * phase runs, a host worker SIGKILLed while compressing. Tests that stop a stack process
 * bring it back with `scripts/stack.sh up` in a finally, and keep the outage short.
 */
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eq } from 'drizzle-orm';
import { ApplicationFailure, decodeRetryState, decodeTimeoutType } from '@temporalio/common';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { BucketItem, IncompleteUploadedBucketItem } from 'minio';
import { dcuTasks } from '../../db/schema.js';
import { connectTemporal } from '../../core/temporal.js';
import { parseImageReference } from '../../core/image-ref.js';
import { CONTROL_TASK_QUEUE, hostTaskQueue, workflowIds } from '../../core/temporal-names.js';
import { createDcuHostActivities } from '../../activities/dcu-host.js';
import { SHA256_METADATA } from '../../activities/storage.js';
import type { DcuInput } from '../../workflows/dcu.js';
import { adminToken, baseConfig, buildTestApp, createUser, testDb } from '../support/app.js';
import { pushUniqueImage } from '../support/images.js';
import { closedStatus } from '../support/history.js';
import { REGISTRY, dockerFor, killStackProcess, processGone, stackPid, stackUp } from '../support/stack.js';
import { BUCKET, CONTROL_ACTIVITIES, GZIP_DIR, PACKAGING_ACTIVITIES, dcuApi, hostConfig, listAll, localFilesOf, minio, quiet, rowOf, sha256, startOwnHost, startTask, waitEnded, type TaskData } from '../support/dcu.js';
import { sleep } from '../support/wait.js';

// Workers made here (the fake host below) log only errors, and leave signals to the test runner.
Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });

const run = promisify(execFile);
const temporal = await connectTemporal(baseConfig.temporal);
after(() => temporal.connection.close());

const MINIO_HEALTH = `${hostConfig.minio.useSSL ? 'https' : 'http'}://${hostConfig.minio.endPoint}:${hostConfig.minio.port}/minio/health/live`;
const BUSYBOX = `${REGISTRY}/library/busybox:1.35`;
/** The retry policy of every host step (workflows/activity-options.ts onHost). */
const HOST_STEP_ATTEMPTS = 5;

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

/** How waitEnded polls for the large tasks here: every 200 ms, giving up after 8 minutes. */
const LONG_WAIT = { limitMs: 480_000, pollMs: 200 };

/**
 * Waits until the task's workflow has `activity` running on a worker (started, not only
 * scheduled); returns the identity of that worker ("<pid>@<host>").
 */
async function waitRunning(taskId: string, activity: string, limitMs = 300_000): Promise<string> {
  const handle = temporal.workflow.getHandle(workflowIds.dcu(taskId));
  for (const end = Date.now() + limitMs; Date.now() < end; await sleep(25)) {
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    const running = pending.find((a) => a.activityType?.name === activity && a.lastStartedTime);
    if (running) return running.lastWorkerIdentity ?? '';
  }
  throw new Error(`${activity} of task ${taskId} did not start`);
}

/** The pid of the host worker behind a worker identity, checked to be `workers/host.ts` for `hostId`. */
async function hostWorkerPid(identity: string, hostId: string): Promise<number> {
  const pid = Number(identity.split('@')[0]);
  const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ');
  const environ = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
  assert.match(cmdline, /workers\/host\.ts/, `pid ${pid} is a host worker`);
  assert.ok(environ.includes(`BERTH_HOST_ID=${hostId}`), `pid ${pid} is ${hostId}'s worker`);
  return pid;
}

type HistoryEvent = NonNullable<Awaited<ReturnType<ReturnType<typeof temporal.workflow.getHandle>['fetchHistory']>>['events']>[number];
type Failure = NonNullable<HistoryEvent['activityTaskFailedEventAttributes']>['failure'];

const ms = (ts: HistoryEvent['eventTime']) => Number(String(ts?.seconds ?? 0)) * 1000 + Math.floor((ts?.nanos ?? 0) / 1e6);

/** Each activity of a task's workflow, from its history: type, the attempt that ended it, its outcome. */
interface ActivityRun {
  type: string;
  queue: string;
  scheduledAt: number;
  endedAt?: number;
  attempt?: number;
  lastFailure?: Failure;
  outcome?: 'completed' | 'failed' | 'timedOut' | 'canceled';
  failure?: Failure;
  retryState?: string;
}

async function activityRuns(taskId: string): Promise<ActivityRun[]> {
  const events = (await temporal.workflow.getHandle(workflowIds.dcu(taskId)).fetchHistory()).events ?? [];
  const runs = new Map<string, ActivityRun>();
  for (const e of events) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) {
      runs.set(String(e.eventId), { type: scheduled.activityType?.name ?? '', queue: scheduled.taskQueue?.name ?? '', scheduledAt: ms(e.eventTime) });
    }
    const started = e.activityTaskStartedEventAttributes;
    if (started) Object.assign(runs.get(String(started.scheduledEventId))!, { attempt: started.attempt ?? 1, lastFailure: started.lastFailure });
    const done =
      (e.activityTaskCompletedEventAttributes && (['completed', e.activityTaskCompletedEventAttributes] as const)) ||
      (e.activityTaskFailedEventAttributes && (['failed', e.activityTaskFailedEventAttributes] as const)) ||
      (e.activityTaskTimedOutEventAttributes && (['timedOut', e.activityTaskTimedOutEventAttributes] as const)) ||
      (e.activityTaskCanceledEventAttributes && (['canceled', e.activityTaskCanceledEventAttributes] as const));
    if (done) {
      const [outcome, attrs] = done;
      const failed = attrs as Partial<NonNullable<HistoryEvent['activityTaskFailedEventAttributes']>>;
      Object.assign(runs.get(String(attrs.scheduledEventId))!, {
        outcome,
        endedAt: ms(e.eventTime),
        failure: failed.failure,
        retryState: decodeRetryState(failed.retryState),
      });
    }
  }
  return [...runs.values()];
}

const uploadsUnder = async (prefix: string) =>
  listAll(minio.listIncompleteUploads(BUCKET, prefix, true) as unknown as AsyncIterable<IncompleteUploadedBucketItem>);
const objectsUnder = async (prefix: string) => listAll(minio.listObjectsV2(BUCKET, prefix, true) as AsyncIterable<BucketItem>);

/** The envelope of an error: exactly code, status, message, data null; JSON, not problem+json. */
function assertErrorEnvelope(res: { statusCode: number; headers: Record<string, unknown>; json: () => unknown; body: string }, status: number, what: string) {
  assert.equal(res.statusCode, status, `${what}: ${res.body.slice(0, 300)}`);
  assert.match(String(res.headers['content-type']), /^application\/json/, what);
  const body = res.json() as { code: number; status: number; message: string; data: unknown };
  assert.deepEqual(Object.keys(body).sort(), ['code', 'data', 'message', 'status'], what);
  assert.equal(body.code, status, what);
  assert.equal(body.status, status, what);
  assert.equal(body.data, null, what);
  assert.ok(body.message.length > 0 && body.message.length < 2000, `${what}: a short message`);
  return body;
}

// ------------------------------------------------------------------ fixtures

const pulled = new Set<string>();
const taskIds: string[] = [];
after(async () => {
  for (const key of pulled) {
    const [hostId, reference] = key.split(' ') as [string, string];
    await dockerFor(hostId).getImage(reference).remove({ force: true }).catch(() => undefined);
  }
  // Local archives of these tests are large: do not leave them to the nightly sweep.
  const names = await readdir(GZIP_DIR).catch(() => [] as string[]);
  for (const name of names) if (taskIds.some((id) => name.startsWith(id))) await rm(join(GZIP_DIR, name), { force: true });
});

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

async function pullOn(hostId: string, reference: string): Promise<void> {
  const docker = dockerFor(hostId);
  const stream = (await docker.pull(reference)) as unknown as NodeJS.ReadableStream;
  await new Promise((resolve, reject) => docker.modem.followProgress(stream, (error: Error | null) => (error ? reject(error) : resolve(null))));
}

/**
 * A tmpfs mounted with `options` on a new temporary directory (a read-only or a tiny one:
 * root ignores mode bits, so chmod cannot make a directory unwritable); null when this
 * machine cannot mount, and the caller skips. Unmounted and removed after the test.
 */
async function mountDir(t: TestContext, options: string): Promise<string | null> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-dcu-faults-'));
  let mounted = false;
  t.after(async () => {
    if (mounted) await run('umount', [dir]);
    await rmdir(dir);
  });
  try {
    await run('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
    mounted = true;
  } catch (error) {
    t.diagnostic(`cannot mount a tmpfs (${(error as Error).message.split('\n')[0]})`);
    return null;
  }
  return dir;
}

// ------------------------------------------------------------------ (d) crafted input

test('crafted username, docker_image_name, host (../, spaces, control characters, 10 kB): 400 in the envelope, for a user and an admin; nothing starts', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 1_000 });
  const admin = await adminToken(app);
  const big = 'a'.repeat(10 * 1024);

  const images = [
    '../etc/passwd',
    '../../busybox',
    `${REGISTRY}/../busybox:1.35`,
    `${REGISTRY}/library/../../busybox:1.35`,
    'busybox:../x',
    'busybox@sha256:../../x',
    'busy box',
    ' busybox',
    'busybox ',
    `${REGISTRY}/library/busybox:1.35 extra`,
    'busybox\n',
    '\tbusybox',
    'busybox\r\nX-Injected: 1',
    'busy\u0000box',
    'busybox\u0000',
    '\u001b[31mbusybox',
    'busybox\u007f',
    big,
    `${REGISTRY}/${big}:v1`,
  ];
  const usernames = ['../x', '../../etc/passwd', `${user.username}/../admin`, 'a b', ` ${user.username}`, `${user.username}\n`, `ctl\u0000x`, `${user.username}\u0000`, '\u001b[0m', big, ''];
  const hostsCrafted = ['../host-a', 'host-a/..', 'host a', 'host-a\n', 'host\u0000a', big];

  for (const [who, token] of [
    ['user', user.token],
    ['admin', admin],
  ] as const) {
    const start = (payload: object) => dcuApi(app, token, 'POST', '/api/dcu/start', payload);
    for (const image of images) {
      // An unknown host behind the crafted value: had the value passed, the answer would be 422, not 400.
      const body = assertErrorEnvelope(await start({ username: user.username, docker_image_name: image, host: 'host-z' }), 400, `${who} image ${JSON.stringify(image.slice(0, 40))}`);
      assert.match(body.message, /docker_image_name/);
      assert.ok(!body.message.includes(big), 'the 10 kB value is not echoed back');
    }
    for (const username of usernames) {
      const body = assertErrorEnvelope(await start({ username, docker_image_name: BUSYBOX, host: 'host-z' }), 400, `${who} username ${JSON.stringify(username.slice(0, 40))}`);
      assert.match(body.message, /username/);
    }
    for (const host of hostsCrafted) {
      assertErrorEnvelope(await start({ username: user.username, docker_image_name: BUSYBOX, host }), 400, `${who} host ${JSON.stringify(host.slice(0, 40))}`);
    }
    // The query's filters: a control character is a 400 (a NUL used to reach PostgreSQL: 500).
    for (const qs of ['username=%00', 'username=a%0Ab', 'docker_image_name=%00', 'docker_image_name=busybox%0D%0A', `docker_image_name=${big}`, `username=${big}`]) {
      assertErrorEnvelope(await dcuApi(app, token, 'GET', `/api/dcu/query?${qs}`), 400, `${who} query ${qs.slice(0, 40)}`);
    }
    // A filter that merely looks like a path matches nothing.
    const path = await dcuApi(app, token, 'GET', '/api/dcu/query?username=..%2F..%2Fetc&docker_image_name=..%2F');
    assert.equal(path.statusCode, 200, path.body);
    assert.deepEqual(path.json().data, { total: 0, items: [] });
  }

  // The valid name, for contrast, passes validation (and stops at the unknown host).
  assertErrorEnvelope(await dcuApi(app, user.token, 'POST', '/api/dcu/start', { username: user.username, docker_image_name: BUSYBOX, host: 'host-z' }), 422, 'valid input');
  assert.equal((await testDb().db.select().from(dcuTasks).where(eq(dcuTasks.userId, user.id))).length, 0, 'nothing was started');
});

// ------------------------------------------------------------------ (b) a gzip dir that cannot be written

test('compress activity: a read-only gzip dir and a full one fail with the reason, and leave no file', { timeout: 180_000 }, async (t) => {
  await pullOn('host-a', BUSYBOX);
  const readOnly = await mountDir(t, 'ro,size=1m');
  const full = await mountDir(t, 'size=64k'); // busybox's archive is larger than 64 KiB: ENOSPC mid-write
  if (!readOnly || !full) return t.skip('needs to mount a tmpfs (root)');

  for (const [dir, reason] of [
    [readOnly, /EROFS|read-only file system/i],
    [full, /ENOSPC|no space left/i],
  ] as const) {
    const host = createDcuHostActivities({ docker: dockerFor('host-a'), hostId: 'host-a', gzipDir: dir });
    const fileName = `${randomUUID()}_faults.tar.gz`;
    await assert.rejects(quiet().run(host.dcuCompress, { taskId: randomUUID(), reference: BUSYBOX, fileName }), (error: unknown) => {
      assert.ok(error instanceof ApplicationFailure, String(error));
      assert.match(error.message, reason);
      return true;
    });
    assert.deepEqual(await readdir(dir), [], `nothing left in the ${dir === full ? 'full' : 'read-only'} dir: no archive, no partial file`);
  }
});

test('a host whose gzip dir cannot be written: the task ends failed once the compress retries are spent, with the reason; nothing left', { timeout: 300_000 }, async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 1_000 });
  const dir = await mountDir(t, 'ro,size=1m');
  if (!dir) return t.skip('needs to mount a tmpfs (root)');
  // An image of its own: one another task packaged already would be copied, not compressed.
  const image = await pushUniqueImage('dcu-faults-ro', 16);
  pulled.add(`host-a ${image}`);
  await pullOn('host-a', image);

  // A host of its own: the real host activities, on host-a's daemon, with the read-only dir as
  // BERTH_DCU_GZIP_DIR. Registered as down, so nothing else is ever sent to it.
  const { hostId, stop } = await startOwnHost('faults', 'dcu-faults', {
    registryCredentials: {},
    pullStallTimeoutMs: hostConfig.pullStallTimeoutMs,
    minio,
    // The 1 MB tmpfs is below the free-disk guard: off, so the write itself fails.
    dcu: { ...hostConfig.dcu, gzipDir: dir, minFreeMb: 0 },
  });
  const taskId = randomUUID();
  taskIds.push(taskId);
  try {
    // What POST /api/dcu/start does, for a host the API would not pick.
    const reference = parseImageReference(image).reference;
    await testDb().db.insert(dcuTasks).values({ id: taskId, userId: user.id, username: user.username, hostId, dockerImageName: image, state: 'idle' });
    const input: DcuInput = { taskId, userId: user.id, username: user.username, hostId, reference };
    await temporal.workflow.start('dcu', { taskQueue: CONTROL_TASK_QUEUE, workflowId: workflowIds.dcu(taskId), args: [input] });

    const data = await waitEnded(app, user.token, taskId, LONG_WAIT);
    assert.equal(data.state, 'failed', JSON.stringify(data));
    assert.equal(data.progress, -1);
    assert.match(data.error_message, new RegExp(`^compressing failed after ${HOST_STEP_ATTEMPTS} attempts: `));
    assert.match(data.error_message, /EROFS|read-only file system/i);
    assert.equal((await rowOf(taskId))?.state, 'failed');
    assert.equal(data.sha256, null, 'no archive was recorded');

    const runs = await activityRuns(taskId);
    const compress = runs.filter((r) => r.type === 'dcuCompress');
    assert.equal(compress.length, 1);
    assert.equal(compress[0]!.attempt, HOST_STEP_ATTEMPTS, 'compress was retried by its policy');
    assert.equal(compress[0]!.outcome, 'failed');
    assert.equal(compress[0]!.retryState, 'MAXIMUM_ATTEMPTS_REACHED');
    assert.ok(!runs.some((r) => r.type === 'dcuUpload'), 'no upload without an archive');
    assert.ok(runs.some((r) => r.type === 'dcuRemoveLocalFiles' && r.outcome === 'completed'), 'the compensation ran');
    assert.deepEqual(await readdir(dir), [], 'no archive, no partial file');
    assert.equal(await closedStatus(temporal, workflowIds.dcu(taskId)), 'FAILED');
    t.diagnostic(`failed ${((compress[0]!.endedAt! - compress[0]!.scheduledAt) / 1000).toFixed(1)} s after the compress phase began`);
  } finally {
    await stop();
  }
});

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
  let taskId = '';
  let first: TaskData | undefined;
  let restartedMeanwhile = false;
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
    await stackUp();
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
  const hostId = 'host-b';
  const taskId = await startTask(app, user, image, hostId);
  taskIds.push(taskId);

  // The worker that runs the compress activity: the one in the pid file, unless concurrent
  // `stack.sh up` runs on this shared stack left a duplicate polling the same queue.
  const pid = await hostWorkerPid(await waitRunning(taskId, 'dcuCompress'), hostId);
  const tracked = await stackPid(`worker-${hostId}`);
  if (pid !== tracked) t.diagnostic(`compress runs on pid ${pid}, not on worker-${hostId}.pid's ${tracked}: a duplicate host worker`);
  let killedAt = 0;
  try {
    process.kill(pid, 'SIGKILL');
    killedAt = Date.now();
    await processGone(pid);
    assert.equal((await rowOf(taskId))?.state, 'compressing', 'killed while compressing');
  } finally {
    await stackUp();
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
  assert.equal(info.metaData[SHA256_METADATA], data.sha256);
  assert.equal(info.size, data.compressed_bytes);
  const remote: Buffer[] = [];
  for await (const chunk of await minio.getObject(BUCKET, data.minio_object_name)) remote.push(chunk as Buffer);
  assert.equal(sha256(Buffer.concat(remote)), data.sha256, 'the object is the archive');
});
