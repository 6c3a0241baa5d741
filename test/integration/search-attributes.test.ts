/**
 * Workflows findable by user, host and resource (issue 15, item 4): a user of the test's own
 * pulls an image, runs a container and packages an image (DCU) through the in-process API; then
 * the real temporal CLI's `workflow list --query 'BerthUserId="<id>"'`, and the client's
 * `workflow.list({ query })`, return exactly that user's workflows, another user's query none of
 * them, and the host and resource attributes narrow them down. Visibility is eventually
 * consistent: the queries are retried until they agree or the wait runs out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectTemporal } from '../../core/temporal.js';
import { containerWorkflowId } from '../../contracts/container.js';
import { dcuWorkflowId } from '../../contracts/dcu.js';
import { baseConfig, buildTestApp, createUser } from '../support/app.js';
import { BUSYBOX, cleanupScope, idler, pull, removeContainer, runContainer } from '../support/containers.js';
import { bearer } from '../support/app.js';
import { removedAfterAll, startTaskChecked, temporalCli, waitEnded } from '../support/dcu.js';
import { sleep } from '../support/wait.js';

const { taskIds } = removedAfterAll();

/** The workflow ids `temporal workflow list --query QUERY` prints (as JSON), sorted. */
async function listedByCli(query: string): Promise<string[]> {
  const { stdout } = await temporalCli(['workflow', 'list', '--query', query, '--output', 'json']);
  const executions = (stdout.trim() ? JSON.parse(stdout) : []) as Array<{ execution: { workflowId: string } }>;
  return executions.map((e) => e.execution.workflowId).sort();
}

/** The workflow ids the client's workflow.list({ query }) gives, sorted. */
async function listedByClient(temporal: Awaited<ReturnType<typeof connectTemporal>>, query: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const execution of temporal.workflow.list({ query })) ids.push(execution.workflowId);
  return ids.sort();
}

/** Retries `list` until it answers `expected` (visibility lags the starts), then asserts it does. */
async function eventuallyListed(what: string, list: () => Promise<string[]>, expected: string[]): Promise<void> {
  const want = [...expected].sort();
  let got: string[] = [];
  for (let i = 0; i < 100; i++) {
    got = await list();
    if (JSON.stringify(got) === JSON.stringify(want)) break;
    await sleep(200);
  }
  assert.deepEqual(got, want, what);
}

test("a user's pulls, containers and DCU tasks are listed by BerthUserId in the CLI and the client, and nobody else's are", { timeout: 300_000 }, async (t) => {
  const scope = cleanupScope(t);
  const app = await buildTestApp(scope);
  const temporal = await connectTemporal(baseConfig.temporal);
  scope.after(() => temporal.connection.close());
  const [alice, bob] = await Promise.all([createUser(app, { balance: 100_000 }), createUser(app, { balance: 100_000 })]);

  // Alice: a pull, a container from it, a DCU task; Bob: a pull of the same image on the same host.
  const imageId = await pull(app, alice, BUSYBOX, 'host-a');
  const bobImageId = await pull(app, bob, BUSYBOX, 'host-a');
  const pullIdOf = async (user: typeof alice, id: string) => {
    const res = await app.inject({ method: 'GET', url: `/api/v1/images/${id}`, headers: bearer(user.token) });
    assert.equal(res.statusCode, 200, res.body);
    return res.json<{ pullId: string }>().pullId;
  };
  const [alicePull, bobPull] = await Promise.all([pullIdOf(alice, imageId), pullIdOf(bob, bobImageId)]);
  const container = await runContainer(app, alice, idler(imageId));
  scope.after(() => removeContainer(app, alice, container.id));
  const taskId = await startTaskChecked(app, alice, BUSYBOX, 'host-a');
  taskIds.push(taskId);
  assert.equal((await waitEnded(app, alice.token, taskId)).state, 'completed');

  const alices = [alicePull, containerWorkflowId(container.id), dcuWorkflowId(taskId)];
  const byAlice = `BerthUserId="${alice.id}"`;
  await eventuallyListed(`temporal workflow list --query '${byAlice}'`, () => listedByCli(byAlice), alices);
  await eventuallyListed(`workflow.list({ query: '${byAlice}' })`, () => listedByClient(temporal, byAlice), alices);

  // Bob's query lists his pull only: none of Alice's.
  const byBob = `BerthUserId="${bob.id}"`;
  await eventuallyListed(`temporal workflow list --query '${byBob}'`, () => listedByCli(byBob), [bobPull]);

  // The host and the resource narrow a user's list down.
  await eventuallyListed('Alice on host-a', () => listedByCli(`${byAlice} AND BerthHostId="host-a"`), alices);
  assert.deepEqual(await listedByCli(`${byAlice} AND BerthHostId="host-b"`), []);
  assert.deepEqual(await listedByClient(temporal, `BerthResourceId="${container.id}"`), [containerWorkflowId(container.id)]);
  assert.deepEqual(await listedByClient(temporal, `BerthResourceId="${taskId}"`), [dcuWorkflowId(taskId)]);
  assert.deepEqual(await listedByCli(`BerthResourceId="${alicePull}" AND BerthUserId="${alice.id}"`), [alicePull]);
});
