/**
 * The DCU's upload overlapped with its compression (PATCHES.dcuOverlappedUpload), on the real
 * stack: the object's parts go to MinIO while `docker save | gzip` writes the archive. A host of
 * the test's own (startOwnHost: the real host activities on host-a's daemon, 5 MiB parts, a gzip
 * dir of its own) reaches MinIO through a loopback proxy of the test's (MinIOProxy), which can
 * break every connection mid-upload or slow the upload down; the stack's MinIO is never touched.
 *
 * The workflow runs on whatever control worker polls the namespace: against a private stack,
 * BERTH_TEMPORAL_NAMESPACE=berth-<name> (the stack's own workers run main's code).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client as MinioClient } from 'minio';
import { defaultPayloadConverter } from '@temporalio/common';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { dcuTasks } from '../../db/schema.js';
import { connectTemporal } from '../../core/temporal.js';
import { parseImageReference } from '../../core/image-ref.js';
import { dcuCancelSignal, dcuWorkflow, dcuWorkflowId, type DcuInput } from '../../contracts/dcu.js';
import type { DcuPackaged } from '../../activities/dcu-host.js';
import { baseConfig, buildTestApp, createUser, testDb, type TestUser } from '../support/app.js';
import { pushUniqueImage } from '../support/images.js';
import { activityRuns } from '../support/history.js';
import { dockerFor } from '../support/stack.js';
import { sleep } from '../support/wait.js';
import { BUCKET, LONG_WAIT, hostConfig, minio, objectBytes, sha256, startOwnHost, statusOf, storedSha256, waitEnded, waitFor } from '../support/dcu.js';
import type { App } from '../../api/app.js';

Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });

const temporal = await connectTemporal(baseConfig.temporal);
after(() => temporal.connection.close());

const PART = 5 * 1024 * 1024;
const pulledImages: string[] = [];
after(async () => {
  for (const image of pulledImages) await dockerFor('host-a').getImage(image).remove({ force: true }).catch(() => undefined);
});

/**
 * A TCP proxy on 127.0.0.1 in front of the stack's MinIO. `breakAfter(n)`: once n more bytes went
 * to MinIO, every connection is cut and new ones are closed at once, until `heal()`.
 * `slow()`: each connection pauses 200 ms after every MiB it forwards to MinIO (about 5 MB/s).
 */
class MinIOProxy {
  private server: Server = createServer((client) => this.accept(client));
  private sockets = new Set<Socket>();
  private sent = 0;
  private limit = Infinity;
  private broken = false;
  private throttled = false;
  port = 0;

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  breakAfter(bytes: number): void {
    this.limit = this.sent + bytes;
  }

  heal(): void {
    this.broken = false;
    this.limit = Infinity;
  }

  slow(): void {
    this.throttled = true;
  }

  /** Bytes forwarded to MinIO so far. */
  get sentBytes(): number {
    return this.sent;
  }

  get isBroken(): boolean {
    return this.broken;
  }

  private cut(): void {
    this.broken = true;
    for (const socket of this.sockets) socket.destroy();
  }

  private accept(client: Socket): void {
    if (this.broken) return void client.destroy();
    const upstream = connect(hostConfig.minio.port, hostConfig.minio.endPoint);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => undefined);
    }
    let sincePause = 0;
    client.on('data', (chunk: Buffer) => {
      this.sent += chunk.length;
      if (this.sent > this.limit) return this.cut();
      upstream.write(chunk);
      sincePause += chunk.length;
      if (this.throttled && sincePause >= 1 << 20) {
        sincePause = 0;
        client.pause();
        setTimeout(() => client.resume(), 200);
      }
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A host of the test's own whose MinIO is the proxy, with 5 MiB parts and a gzip dir of its own. */
async function ownHost(proxy: MinIOProxy) {
  const gzipDir = await mkdtemp(join(tmpdir(), 'berth-dcu-overlap-'));
  const proxied = new MinioClient({ ...hostConfig.minio, port: proxy.port, endPoint: '127.0.0.1', useSSL: false, region: 'us-east-1' });
  const host = await startOwnHost('overlap', 'dcu-overlap', {
    registryCredentials: {},
    pullStallTimeoutMs: hostConfig.pullStallTimeoutMs,
    minio: proxied,
    dcu: { ...hostConfig.dcu, gzipDir, minFreeMb: 0, partSizeBytes: PART },
  });
  return {
    ...host,
    gzipDir,
    stop: async () => {
      await host.stop();
      await rm(gzipDir, { recursive: true, force: true });
    },
  };
}

/** An image of random bytes (stored, not deflated: its archive is about its size), pulled on host-a. */
async function imageOf(mb: number): Promise<string> {
  const image = await pushUniqueImage('dcu-overlap', mb * 1024);
  const docker = dockerFor('host-a');
  const stream = await docker.pull(image);
  await new Promise((resolve, reject) => docker.modem.followProgress(stream, (e: Error | null) => (e ? reject(e) : resolve(null))));
  pulledImages.push(image);
  return image;
}

/** What POST /api/dcu/start does, for a host the API would not pick (registered down). */
async function startOn(hostId: string, user: TestUser, image: string): Promise<string> {
  const taskId = randomUUID();
  await testDb().db.insert(dcuTasks).values({ id: taskId, userId: user.id, username: user.username, hostId, dockerImageName: image, state: 'idle' });
  const input: DcuInput = { taskId, userId: user.id, username: user.username, hostId, reference: parseImageReference(image).reference };
  await temporal.workflow.start(dcuWorkflow.type, { taskQueue: dcuWorkflow.taskQueue, workflowId: dcuWorkflowId(taskId), args: [input] });
  return taskId;
}

/** The results of a workflow's completed dcuCompress activities. */
async function compressResults(taskId: string): Promise<DcuPackaged[]> {
  const events = (await temporal.workflow.getHandle(dcuWorkflowId(taskId)).fetchHistory()).events ?? [];
  const compress = new Set(events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'dcuCompress').map((e) => String(e.eventId)));
  return events
    .filter((e) => e.activityTaskCompletedEventAttributes && compress.has(String(e.activityTaskCompletedEventAttributes.scheduledEventId)))
    .map((e) => defaultPayloadConverter.fromPayload<DcuPackaged>(e.activityTaskCompletedEventAttributes!.result!.payloads![0]!));
}

const openUploads = async (objectName: string) => (await minio.findUploadId(BUCKET, objectName)) ?? null;

async function assertArchiveMatchesObject(gzipDir: string, data: { gzip_file_name: string; minio_object_name: string; sha256: string | null; compressed_bytes: number | null }) {
  const local = await readFile(join(gzipDir, data.gzip_file_name));
  assert.equal(local.length, data.compressed_bytes, 'the archive on disk has the recorded size');
  assert.equal(sha256(local), data.sha256, 'the archive on disk has the recorded sha256');
  const remote = await objectBytes(data.minio_object_name);
  assert.equal(remote.length, local.length, "the object's size is the archive's");
  assert.equal(sha256(remote), data.sha256, "the object's bytes are the archive's");
  assert.equal(await storedSha256(data.minio_object_name), data.sha256, 'the object carries the sha256');
  assert.equal(await openUploads(data.minio_object_name), null, 'no multipart upload left open');
}

let app: App;
let user: TestUser;
test.before(async () => {
  app = await buildTestApp({ after: () => undefined });
  user = await createUser(app, { balance: 1_000 });
});
after(() => app?.close());

test('overlapped upload: one dcuCompress sends the object in parts while it writes the archive; no dcuUpload; object and archive agree', { timeout: 600_000 }, async () => {
  const proxy = await new MinIOProxy().listen();
  const host = await ownHost(proxy);
  try {
    const image = await imageOf(24);
    const taskId = await startOn(host.hostId, user, image);
    const data = await waitEnded(app, user.token, taskId, LONG_WAIT);
    assert.equal(data.state, 'completed', JSON.stringify(data));
    await assertArchiveMatchesObject(host.gzipDir, data);
    const info = await minio.statObject(BUCKET, data.minio_object_name);
    assert.match(info.etag, /-[5-9]$/, 'a multipart upload of 5 MiB parts (24 MiB of random bytes: 5 or more)');
    const runs = await activityRuns(temporal, dcuWorkflowId(taskId));
    assert.deepEqual(runs.filter((r) => r.type === 'dcuCompress').map((r) => [r.attempt, r.outcome]), [[1, 'completed']]);
    assert.ok(!runs.some((r) => r.type === 'dcuUpload'), `no separate upload: ${runs.map((r) => r.type).join(' ')}`);
    const [result] = await compressResults(taskId);
    assert.equal(result?.uploaded, true, JSON.stringify(result));
  } finally {
    await host.stop();
    await proxy.close();
  }
});

test('MinIO cut mid-upload: the overlapped upload is aborted, compression goes on, and dcuUpload sends the kept archive (no second compress)', { timeout: 600_000 }, async () => {
  const proxy = await new MinIOProxy().listen();
  const host = await ownHost(proxy);
  try {
    const image = await imageOf(24);
    proxy.breakAfter(8 * 1024 * 1024); // past the first part, before the last
    const taskId = await startOn(host.hostId, user, image);
    // The overlapped upload failed once the proxy cut: compression ends, the task goes to uploading.
    await waitFor(app, user.token, taskId, (d) => d.state === 'uploading' || d.state === 'completed' || d.state === 'failed', 3000);
    assert.ok(proxy.isBroken, 'the proxy cut MinIO off mid-upload');
    await sleep(2_500); // the upload from disk meets MinIO cut off at least once
    proxy.heal();
    const data = await waitEnded(app, user.token, taskId, LONG_WAIT);
    assert.equal(data.state, 'completed', JSON.stringify(data));
    await assertArchiveMatchesObject(host.gzipDir, data);

    const runs = await activityRuns(temporal, dcuWorkflowId(taskId));
    assert.deepEqual(runs.filter((r) => r.type === 'dcuCompress').map((r) => [r.attempt, r.outcome]), [[1, 'completed']], 'compressed once, at its first attempt');
    const uploads = runs.filter((r) => r.type === 'dcuUpload');
    assert.equal(uploads.length, 1);
    assert.equal(uploads[0]!.outcome, 'completed');
    const [result] = await compressResults(taskId);
    assert.equal(result?.uploaded, false);
    assert.match(result?.uploadError ?? '', /ECONNRESET|socket hang up|EPIPE|ECONNREFUSED/, String(result?.uploadError));
    assert.deepEqual((await readdir(host.gzipDir)).filter((n) => n.startsWith(taskId)), [data.gzip_file_name], 'no partial file beside the archive');
  } finally {
    proxy.heal();
    await host.stop();
    await proxy.close();
  }
});

test('cancel mid-upload (overlapped): no object, no open multipart upload, no files', { timeout: 600_000 }, async () => {
  const proxy = await new MinIOProxy().listen();
  proxy.slow();
  const host = await ownHost(proxy);
  try {
    const image = await imageOf(48);
    const taskId = await startOn(host.hostId, user, image);
    const compressing = await waitFor(app, user.token, taskId, (d) => d.state === 'compressing' || d.state === 'failed' || d.state === 'completed', 3000);
    assert.equal(compressing.state, 'compressing', JSON.stringify(compressing));
    const objectName = (await statusOf(app, user.token, taskId)).minio_object_name;
    // Mid-upload: the multipart upload is open and more than a part went through the proxy.
    let uploadId: string | null = null;
    for (let i = 0; i < 1200 && !uploadId; i++) {
      const id = proxy.sentBytes > PART + (1 << 20) ? await openUploads(objectName) : null;
      if (id) uploadId = id;
      else await sleep(50);
    }
    assert.ok(uploadId, 'the upload was open, a part sent, while compressing');
    assert.equal((await statusOf(app, user.token, taskId)).state, 'compressing', 'still compressing');
    await temporal.workflow.getHandle(dcuWorkflowId(taskId)).signal(dcuCancelSignal);
    const data = await waitEnded(app, user.token, taskId, LONG_WAIT);
    assert.equal(data.state, 'failed');
    assert.match(data.error_message, /cancel/i);
    assert.equal(await storedSha256(objectName), null, 'no object');
    assert.equal(await openUploads(objectName), null, 'no multipart upload left open');
    assert.deepEqual((await readdir(host.gzipDir)).filter((n) => n.startsWith(taskId)), [], 'no archive, no partial file');
    const runs = await activityRuns(temporal, dcuWorkflowId(taskId));
    assert.deepEqual(runs.filter((r) => r.type === 'dcuCompress').map((r) => r.outcome), ['canceled'], 'the compress activity acknowledged the cancel');
  } finally {
    await host.stop();
    await proxy.close();
  }
});
