/**
 * Records workflow histories made by an earlier commit's workflow code, for the replay test
 * (test/integration/replay.test.ts): a workflow that runs for months must keep replaying on
 * today's code, so each change of emitted commands is guarded by patched(), and a history
 * of the code before it proves the guard.
 *
 *   set -a; . ~/.local/state/berth/berth.env; set +a
 *   node --import tsx test/support/record-history.ts <commit> <dcu|container> <out.json>
 *
 * The old workflow code (read with git archive; nothing in the checkout changes) runs in a
 * worker of this script's own, on a task queue of its own, with today's control activities;
 * its host steps go to host-a's worker of the stack.
 */
import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { defaultPayloadConverter } from '@temporalio/common';
import { dcuTasks } from '../../db/schema.js';
import { connectTemporal } from '../../core/temporal.js';
import { parseImageReference } from '../../core/image-ref.js';
import { workflowIds } from '../../core/temporal-names.js';
import { createControlActivities } from '../../activities/control-activities.js';
import { baseConfig, bearer, buildTestApp, createUser, testDb } from './app.js';
import { pushUniqueImage } from './images.js';
import { historyToObject } from './history.js';

const [commit, kind, out] = process.argv.slice(2);
if (!commit || !out || (kind !== 'dcu' && kind !== 'container')) {
  console.error('usage: record-history.ts <commit> <dcu|container> <out.json>');
  process.exit(2);
}
Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });
const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const closers: Array<() => Promise<unknown>> = [];
const temporal = await connectTemporal(baseConfig.temporal);
const app = await buildTestApp({ after: (fn: () => Promise<unknown>) => void closers.push(fn) } as never);

const old = await mkdtemp(join(tmpdir(), 'berth-record-'));
await run('bash', ['-o', 'pipefail', '-c', `git -C "${ROOT}" archive ${commit} workflows core activities db services | tar -x -C "${old}"`]);
await symlink(join(ROOT, 'node_modules'), join(old, 'node_modules'));
await writeFile(join(old, 'package.json'), JSON.stringify({ type: 'module' }));

const taskQueue = `record-${randomUUID().slice(0, 8)}`;
const connection = await NativeConnection.connect({ address: baseConfig.temporal.address });
const worker = await Worker.create({
  connection,
  namespace: baseConfig.temporal.namespace,
  taskQueue,
  workflowsPath: join(old, 'workflows', 'index.ts'),
  // Today's database steps on this queue: the old code's calls still match them.
  activities: createControlActivities({ db: testDb().db, pricePerMb: 1, temporal }),
});

const user = await createUser(app, { balance: 100_000 });
const workflowId = await worker.runUntil(async () => {
  if (kind === 'dcu') {
    const image = await pushUniqueImage('record-dcu', 16);
    const taskId = randomUUID();
    await testDb().db.insert(dcuTasks).values({ id: taskId, userId: user.id, username: user.username, hostId: 'host-a', dockerImageName: image, state: 'idle' });
    const input = { taskId, userId: user.id, username: user.username, hostId: 'host-a', reference: parseImageReference(image).reference };
    const handle = await temporal.workflow.start('dcu', { taskQueue, workflowId: workflowIds.dcu(taskId), args: [input] });
    await handle.result();
    return handle.workflowId;
  }
  // A container created (through today's API, so its row exists), run by the old code, then removed.
  const pulled = await app.inject({ method: 'POST', url: '/api/v1/images/pull?wait=true', headers: bearer(user.token), payload: { image: '127.0.0.1:5000/library/httpd:latest', host: 'host-a' } });
  if (pulled.statusCode !== 201) throw new Error(`pull: ${pulled.body}`);
  const created = await app.inject({ method: 'POST', url: '/api/v1/containers', headers: bearer(user.token), payload: { imageId: pulled.json().id } });
  if (created.statusCode !== 202) throw new Error(`create: ${created.body}`);
  const { id } = created.json<{ id: string }>();
  // Today's API started the workflow on berth-control: it is replaced by the old code's run.
  const current = temporal.workflow.getHandle(workflowIds.container(id));
  const started = (await current.fetchHistory()).events?.[0]?.workflowExecutionStartedEventAttributes;
  const firstArg = defaultPayloadConverter.fromPayload(started!.input!.payloads![0]!);
  await current.terminate('re-run by the old workflow code');
  const workflowId = `${workflowIds.container(id)}-old`;
  const handle = await temporal.workflow.start('container', { taskQueue, workflowId, args: [firstArg] });
  for (let i = 0; i < 100 && (await handle.query<{ status: string }>('describe')).status === 'creating'; i++) await new Promise((r) => setTimeout(r, 200));
  await handle.executeUpdate('stop');
  await handle.executeUpdate('remove');
  await handle.result();
  return handle.workflowId;
});
// protobufjs's own JSON form (the CLI's proto3 JSON would need the SDK's historyFromJSON, which
// fails here on two copies of protobufjs); loadHistory reads it back.
const history = await temporal.workflow.getHandle(workflowId).fetchHistory();
await writeFile(out, JSON.stringify(historyToObject(history), null, 1));
console.log(`wrote ${out}: ${history.events?.length} events of ${workflowId}`);
await connection.close();
for (const close of closers) await close();
await rm(old, { recursive: true, force: true });
await temporal.connection.close();
process.exit(0);
