/**
 * DCU under faults, on the real stack (real Docker, MinIO, PostgreSQL, Temporal; nothing
 * mocked): crafted input, a gzip dir that cannot be written. MinIO stopped while the upload
 * phase runs and a host worker SIGKILLed while compressing act on the whole stack: they are
 * in serial/dcu-faults.test.ts.
 */
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eq } from 'drizzle-orm';
import { ApplicationFailure } from '@temporalio/common';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { dcuTasks } from '../../db/schema.js';
import { connectTemporal } from '../../core/temporal.js';
import { parseImageReference } from '../../core/image-ref.js';
import { createDcuHostActivities } from '../../activities/dcu-host.js';
import { dcuWorkflow, dcuWorkflowId, type DcuInput } from '../../contracts/dcu.js';
import { adminToken, baseConfig, buildTestApp, createUser, testDb } from '../support/app.js';
import { pushUniqueImage } from '../support/images.js';
import { activityRuns as activityRunsOf, closedStatus } from '../support/history.js';
import { REGISTRY, dockerFor } from '../support/stack.js';
import { HOST_STEP_ATTEMPTS, LONG_WAIT, dcuApi, hostConfig, minio, quiet, removedAfterAll, rowOf, startOwnHost, waitEnded } from '../support/dcu.js';

// Workers made here (the fake host below) log only errors, and leave signals to the test runner.
Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });

const run = promisify(execFile);
const temporal = await connectTemporal(baseConfig.temporal);
after(() => temporal.connection.close());

const BUSYBOX = `${REGISTRY}/library/busybox:1.35`;

// ------------------------------------------------------------------ API, rows, histories

/** Each activity of a task's workflow, from its history. */
const activityRuns = (taskId: string) => activityRunsOf(temporal, dcuWorkflowId(taskId));

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

const { pulled, taskIds } = removedAfterAll();

async function pullOn(hostId: string, reference: string): Promise<void> {
  const docker = dockerFor(hostId);
  const stream = await docker.pull(reference);
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
    await temporal.workflow.start(dcuWorkflow.type, { taskQueue: dcuWorkflow.taskQueue, workflowId: dcuWorkflowId(taskId), args: [input] });

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
    assert.equal(await closedStatus(temporal, dcuWorkflowId(taskId)), 'FAILED');
    t.diagnostic(`failed ${((compress[0]!.endedAt! - compress[0]!.scheduledAt) / 1000).toFixed(1)} s after the compress phase began`);
  } finally {
    await stop();
  }
});
