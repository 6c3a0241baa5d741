/**
 * DCU tests' shared helpers: host-a's DCU storage (its gzip dir, the MinIO bucket), the DCU
 * API (/api/dcu) and its task status, the task rows, and the activities of a packaging run.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { eq } from 'drizzle-orm';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, NativeConnection, Worker } from '@temporalio/worker';
import { dcuTasks, hosts } from '../../db/schema.js';
import { loadHostWorkerConfig } from '../../core/config.js';
import { minioClient } from '../../core/minio.js';
import { hostTaskQueue } from '../../core/temporal-names.js';
import { createHostActivities } from '../../activities/host-activities.js';
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

// ------------------------------------------------------------------ the API

/** A request to the DCU API, with the token as bearer (none when null). */
export function dcuApi(app: App, token: string | null, method: 'GET' | 'POST', url: string, payload?: unknown) {
  return app.inject({ method, url, headers: token ? bearer(token) : {}, ...(payload !== undefined ? { payload: payload as object } : {}) });
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
}

/** A task's status (asserting a 200). */
export async function statusOf(app: App, token: string, taskId: string): Promise<TaskData> {
  const res = await dcuApi(app, token, 'GET', `/api/dcu/status/${taskId}`);
  assert.equal(res.statusCode, 200, res.body);
  return res.json().data;
}

export const ended = (d: { state: string }) => d.state === 'completed' || d.state === 'failed';

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

/** An object's bytes, read from the bucket. */
export async function objectBytes(objectName: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await minio.getObject(BUCKET, objectName)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

// ------------------------------------------------------------------ hosts and the workflow

/**
 * A host of the test's own, `<prefix>-<8 hex digits>`: its row, registered as down (so the API
 * never sends it anything), and a worker on its queue running the real host activities on
 * host-a's daemon with `deps` (MinIO, the DCU settings of the test's choosing). stop() shuts the
 * worker down and deletes the host's rows (its DCU tasks, then the host).
 */
export async function startOwnHost(
  prefix: string,
  engineId: string,
  deps: Omit<Parameters<typeof createHostActivities>[0], 'docker' | 'hostId'>,
): Promise<{ hostId: string; stop: () => Promise<void> }> {
  const hostId = `${prefix}-${randomUUID().slice(0, 8)}`;
  await testDb().db.insert(hosts).values({
    id: hostId,
    dockerEndpoint: `unix://${dockerSocket('host-a')}`,
    engineId,
    engineVersion: '0',
    lastHeartbeatAt: new Date(Date.now() - 3_600_000),
  });
  const connection = await NativeConnection.connect({ address: baseConfig.temporal.address });
  const worker = await Worker.create({
    connection,
    namespace: baseConfig.temporal.namespace,
    taskQueue: hostTaskQueue(hostId),
    activities: createHostActivities({ ...deps, docker: dockerFor('host-a'), hostId }),
  });
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
  'dcuUpload',
  'dcuChargeAndComplete',
];

/** Those of them that run on the control queue; the others run on the task's host's queue. */
export const CONTROL_ACTIVITIES: readonly string[] = ['dcuTransition', 'dcuCheckBalance', 'dcuKeptArchive', 'dcuReusableObjects', 'dcuChargeAndComplete'];
