/**
 * The DCU workflow's patches hold: a history made by the workflow code of the last commit
 * (before reuse and the charge) replays without a determinism error on today's code. The old
 * code runs in a worker of the test's own, on a task queue of its own, with today's control
 * activities; its host steps go to host-a's worker of the stack.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { eq } from 'drizzle-orm';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { dcuTasks } from '../../db/schema.js';
import { connectTemporal } from '../../core/temporal.js';
import { parseImageReference } from '../../core/image-ref.js';
import { workflowIds } from '../../core/temporal-names.js';
import { createControlActivities } from '../../activities/control-activities.js';
import { baseConfig, buildTestApp, createUser, testDb } from '../support/app.js';
import { pushUniqueImage } from '../support/images.js';
import { dockerFor } from '../support/stack.js';

Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const temporal = await connectTemporal(baseConfig.temporal);
after(() => temporal.connection.close());

test('a DCU history made by the previous workflow code replays on today’s (patched) code', { timeout: 600_000 }, async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 1_000 });
  const image = await pushUniqueImage('dcu-replay', 16);
  t.after(() => dockerFor('host-a').getImage(image).remove({ force: true }).catch(() => undefined));

  // The last commit's code, read from git (nothing in the checkout changes).
  const old = await mkdtemp(join(tmpdir(), 'berth-dcu-replay-'));
  t.after(() => rm(old, { recursive: true, force: true }));
  await run('bash', ['-o', 'pipefail', '-c', `git -C "${ROOT}" archive HEAD workflows core activities db services | tar -x -C "${old}"`]);
  await symlink(join(ROOT, 'node_modules'), join(old, 'node_modules'));
  await writeFile(join(old, 'package.json'), JSON.stringify({ type: 'module' }));
  await writeFile(join(old, 'workflows', 'dcu-only.ts'), "export { dcu } from './dcu.js';\n");

  const taskQueue = `dcu-replay-${randomUUID().slice(0, 8)}`;
  const connection = await NativeConnection.connect({ address: baseConfig.temporal.address });
  t.after(() => connection.close());
  const worker = await Worker.create({
    connection,
    namespace: baseConfig.temporal.namespace,
    taskQueue,
    workflowsPath: join(old, 'workflows', 'dcu-only.ts'),
    // The database steps (today's, which the old code's calls still match) on this queue.
    activities: createControlActivities({ db: testDb().db, pricePerMb: 1, temporal }),
  });
  const taskId = randomUUID();
  t.after(() => testDb().db.delete(dcuTasks).where(eq(dcuTasks.id, taskId)));
  const history = await worker.runUntil(async () => {
    await testDb().db.insert(dcuTasks).values({ id: taskId, userId: user.id, username: user.username, hostId: 'host-a', dockerImageName: image, state: 'idle' });
    // The old input: no price.
    const input = { taskId, userId: user.id, username: user.username, hostId: 'host-a', reference: parseImageReference(image).reference };
    const handle = await temporal.workflow.start('dcu', { taskQueue, workflowId: workflowIds.dcu(taskId), args: [input] });
    const result = (await handle.result()) as { state: string };
    assert.equal(result.state, 'completed');
    return handle.fetchHistory();
  });
  const types = (history.events ?? []).flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType?.name] : []));
  assert.ok(!types.includes('dcuReusableObjects') && types.includes('dcuCompress'), `made by the old code: ${types.join(' ')}`);
  const row = (await testDb().db.select().from(dcuTasks).where(eq(dcuTasks.id, taskId)))[0];
  assert.equal(row?.state, 'completed');
  assert.equal(row?.charged, 0, 'a task started before the charge completes free');

  // Today's code replays it: reuse and the charge are behind patched(), so no determinism error.
  await Worker.runReplayHistory({ workflowsPath: join(ROOT, 'workflows', 'index.ts'), replayName: 'dcu-replay' }, history, workflowIds.dcu(taskId));
});
