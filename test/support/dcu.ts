/**
 * DCU tests' shared helpers: host-a's DCU storage (its gzip dir, the MinIO bucket), the DCU
 * API (/api/dcu) and its task status, the task rows, the temporal CLI, the cleanup of what a
 * file's tests pulled and archived, and the activities of a packaging run.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { createHash, randomUUID } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, NativeConnection, Worker } from '@temporalio/worker';
import { dcuTasks, hosts } from '../../db/schema.js';
import { loadHostWorkerConfig } from '../../core/config.js';
import { minioClient } from '../../core/minio.js';
import { hostTaskQueue } from '../../core/temporal-names.js';
import { temporalConnectionOptions } from '../../core/temporal.js';
import { createHostActivities } from '../../activities/host-activities.js';
import { bucketOperations } from '../../activities/multipart-upload.js';
import type { Tracing } from '../../core/tracing.js';
import { withTracing } from '../../workers/worker-tracing.js';
import type { App } from '../../api/app.js';
import { baseConfig, bearer, testDb, type TestUser } from './app.js';
import { dockerFor, dockerSocket } from './stack.js';
import { sleep } from './wait.js';

/** host-a's worker configuration, as the stack's environment gives it. */
export const hostConfig = loadHostWorkerConfig({ ...process.env, BERTH_HOST_ID: 'host-a' });
export const GZIP_DIR = hostConfig.dcu.gzipDir;
export const BUCKET = hostConfig.dcu.bucket;
export const minio = minioClient(hostConfig.minio);

export const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** An activity environment whose logger shows only errors (for activities expected to fail). */
export const quiet = () => new MockActivityEnvironment({ attempt: 1 }, { logger: new DefaultLogger('ERROR') });

/** Enough balance for any DCU task here (each costs one GB's price: the images are small). */
export const FUNDS = 1_000;

/** The retry policy of every host step (workflows/activity-profiles.ts HOST_MAX_ATTEMPTS). */
export const HOST_STEP_ATTEMPTS = 5;

/** How waitEnded polls for large tasks: every 200 ms, giving up after 8 minutes. */
export const LONG_WAIT = { limitMs: 480_000, pollMs: 200 };

/** Runs the real temporal CLI against the stack's server. */
export { temporalCli } from './schedules.js';

// ------------------------------------------------------------------ the API

/** English, for tests that read the DCU API's texts (without it, they are Chinese: api/dcu-messages.ts). */
export const ENGLISH = { 'accept-language': 'en' } as const;

/** A request to the DCU API in English, with the token as bearer (none when null). */
export function dcuApi(app: App, token: string | null, method: 'GET' | 'POST', url: string, payload?: unknown) {
  return app.inject({ method, url, headers: { ...ENGLISH, ...(token ? bearer(token) : {}) }, ...(payload !== undefined ? { payload: payload as object } : {}) });
}

/** POST /api/dcu/start of `image` on `host`, as `user`: the response, whatever it is. */
export const startRequest = (app: App, user: Pick<TestUser, 'token' | 'username'>, image: string, host = 'host-a') =>
  dcuApi(app, user.token, 'POST', '/api/dcu/start', { username: user.username, docker_image_name: image, host });

/** Starts a task (asserting a 200) and returns its id. */
export async function startTask(app: App, user: Pick<TestUser, 'token' | 'username'>, image: string, host = 'host-a'): Promise<string> {
  const res = await startRequest(app, user, image, host);
  assert.equal(res.statusCode, 200, res.body);
  return res.json().data.task_id;
}

/**
 * Starts a task (on `host`, or on the host the API picks when none is given) and asserts the
 * whole answer: a 200, code 0, status 200, a message, an idle task with a UUID. Returns its id.
 */
export async function startTaskChecked(app: App, user: Pick<TestUser, 'token' | 'username'>, image: string, host?: string): Promise<string> {
  const res = await dcuApi(app, user.token, 'POST', '/api/dcu/start', { username: user.username, docker_image_name: image, ...(host ? { host } : {}) });
  assert.equal(res.statusCode, 200, res.body);
  const body = res.json();
  assert.equal(body.code, 0);
  assert.equal(body.status, 200);
  assert.equal(typeof body.message, 'string');
  assert.equal(body.data.state, 'idle');
  assert.match(body.data.task_id, /^[0-9a-f-]{36}$/);
  return body.data.task_id;
}

/** The envelope of an error: exactly code, status, message, data null; JSON, not problem+json. */
export function assertErrorEnvelope(res: { statusCode: number; headers: Record<string, unknown>; json: () => unknown; body: string }, status: number) {
  assert.equal(res.statusCode, status, res.body);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const body = res.json() as { code: number; status: number; message: string; data: unknown };
  assert.deepEqual(Object.keys(body).sort(), ['code', 'data', 'message', 'status']);
  assert.notEqual(body.code, 0);
  assert.equal(body.status, status);
  assert.equal(body.data, null);
  assert.ok(body.message.length > 0);
  return body;
}

/** The fields of a task's status (`data` of GET /api/dcu/status/:id) that these tests read. */
export interface TaskData {
  task_id: string;
  state: string;
  progress: number;
  error_message: string;
  gzip_file_name: string;
  minio_object_name: string;
  sha256: string | null;
  size_bytes: number | null;
  compressed_bytes: number | null;
  duration: number;
  charged: number;
  artifacts_expired: boolean;
}

/** A task's status, every field as the API answers it, untyped (asserting a 200). */
async function statusData(app: App, token: string, taskId: string) {
  const res = await dcuApi(app, token, 'GET', `/api/dcu/status/${taskId}`);
  assert.equal(res.statusCode, 200, res.body);
  return res.json().data;
}

/** A task's status (asserting a 200). */
export async function statusOf(app: App, token: string, taskId: string): Promise<TaskData> {
  return statusData(app, token, taskId);
}

export const ended = (d: { state: string }) => d.state === 'completed' || d.state === 'failed';

/**
 * Polls the status route every 100 ms until `done` holds, and returns the task's status, every
 * field, untyped (no timing asserted: the bound of `limit` polls only stops a hung test).
 */
export async function waitFor(app: App, token: string, taskId: string, done: (data: { state: string }) => boolean, limit = 1200) {
  for (let i = 0; i < limit; i++) {
    const data = await statusData(app, token, taskId);
    if (done(data)) return data;
    await sleep(100);
  }
  throw new Error(`task ${taskId} did not reach the expected state`);
}

/**
 * Polls the status route every `pollMs` until the task ended, and returns its status (no
 * timing asserted: `limitMs` only stops a hung test).
 */
export async function waitEnded(app: App, token: string, taskId: string, { limitMs = 300_000, pollMs = 100 } = {}): Promise<TaskData> {
  for (const end = Date.now() + limitMs; Date.now() < end; await sleep(pollMs)) {
    const data = await statusOf(app, token, taskId);
    if (ended(data)) return data;
  }
  throw new Error(`task ${taskId} did not end`);
}

// ------------------------------------------------------------------ rows, files, objects

/** The task's row, or undefined. */
export const rowOf = async (taskId: string) => (await testDb().db.select().from(dcuTasks).where(eq(dcuTasks.id, taskId)))[0];

/** Local files of a task in host-a's gzip dir: its archive and any partial file. */
export const localFilesOf = async (taskId: string) => (await readdir(GZIP_DIR).catch(() => [] as string[])).filter((n) => n.startsWith(taskId));

export async function listAll<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of stream) items.push(item);
  return items;
}

/**
 * The sha256 an object was stored with: x-amz-meta-sha256, or the `sha256` tag of an archive
 * uploaded while it was compressed (activities/multipart-upload.ts); null when there is no object.
 */
export const storedSha256 = (objectName: string) => bucketOperations({ minio, bucket: BUCKET }).objectSha256(objectName);

/** An object's bytes, read from the bucket. */
export async function objectBytes(objectName: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await minio.getObject(BUCKET, objectName)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Images a file's tests pulled (`<host> <reference>` in `pulled`) and tasks whose local
 * archives they made (`taskIds`): an after-hook of the file removes those images from their
 * hosts and those archives from host-a's gzip dir (they are large: not left to the nightly sweep).
 */
export function removedAfterAll(): { pulled: Set<string>; taskIds: string[] } {
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
  return { pulled, taskIds };
}

// ------------------------------------------------------------------ hosts and the workflow

/**
 * A host of the test's own, `<prefix>-<8 hex digits>`: its row, registered as down (so the API
 * never sends it anything), and a worker on its queue running the real host activities on
 * host-a's daemon with `deps` (MinIO, the DCU settings of the test's choosing). stop() shuts the
 * worker down and deletes the host's rows (its DCU tasks, then the host). With `tracing` (given
 * the host's id), the worker traces its activities as a host worker does (workers/worker-tracing.ts).
 */
export async function startOwnHost(
  prefix: string,
  engineId: string,
  deps: Omit<Parameters<typeof createHostActivities>[0], 'docker' | 'hostId'>,
  opts: { tracing?: (hostId: string) => Tracing | null } = {},
): Promise<{ hostId: string; stop: () => Promise<void> }> {
  const hostId = `${prefix}-${randomUUID().slice(0, 8)}`;
  await testDb().db.insert(hosts).values({
    id: hostId,
    dockerEndpoint: `unix://${dockerSocket('host-a')}`,
    engineId,
    engineVersion: '0',
    lastHeartbeatAt: new Date(Date.now() - 3_600_000),
  });
  const connection = await NativeConnection.connect(temporalConnectionOptions(baseConfig.temporal));
  const worker = await Worker.create(
    withTracing(
      {
        connection,
        namespace: baseConfig.temporal.namespace,
        taskQueue: hostTaskQueue(hostId),
        activities: createHostActivities({ ...deps, docker: dockerFor('host-a'), hostId }),
      },
      opts.tracing?.(hostId) ?? null,
    ),
  );
  const running = worker.run();
  const stop = async () => {
    worker.shutdown();
    await running;
    await connection.close();
    await testDb().db.delete(dcuTasks).where(eq(dcuTasks.hostId, hostId));
    await testDb().db.delete(hosts).where(eq(hosts.id, hostId));
  };
  return { hostId, stop };
}

/** The activities a task that packages its image (no archive of another task to reuse) schedules, in order. */
export const PACKAGING_ACTIVITIES: readonly string[] = [
  'dcuTransition',
  // The Docker pull, under its new name (PATCHES.dcuDockerPullActivity; tasks started before it ran pullImage).
  'dockerPull',
  'inspectImage',
  'dcuCheckBalance',
  'dcuReusableObjects',
  'dcuKeptArchive',
  'dcuTransition',
  'dcuCompress',
  'dcuTransition',
  'dcuChargeAndComplete',
];

/** Those of them that run on the control queue; the others run on the task's host's queue. */
export const CONTROL_ACTIVITIES: readonly string[] = ['dcuTransition', 'dcuCheckBalance', 'dcuKeptArchive', 'dcuReusableObjects', 'dcuChargeAndComplete'];
