/**
 * A pull of a reference the caller already owns on that host (issue 17, item 1): answered by the
 * API from PostgreSQL, with no workflow started, and the same answer the workflow gives; a record
 * whose removal has started is not owned, so a pull racing a removal ends with the user owning
 * the image, on the host, paid for once more.
 *
 * Runs on the real stack; with a private stack, BERTH_TEMPORAL_NAMESPACE names its namespace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { WorkflowNotFoundError } from '@temporalio/client';
import { images } from '../../db/schema.js';
import { connectTemporal } from '../../core/temporal.js';
import { metricsRegistry } from '../../core/metrics.js';
import { balanceOf, baseConfig, bearer, buildTestApp, createUser, testDb } from '../support/app.js';
import { inspectOn, pullRequest as pull, pushUniqueImage, waitForPull } from '../support/images.js';
import { pullId as newPullId, pullImageWorkflow, type PullImageInput } from '../../contracts/pull-image.js';
import { createWorkflowRuns } from '../../services/workflow-runs.js';
import { parseImageReference } from '../../core/image-ref.js';
import { sleep } from '../support/wait.js';

const temporal = await connectTemporal(baseConfig.temporal);
test.after(() => temporal.connection.close());

/** The ids of the pullImage workflows started for a user, by its BerthUserId search attribute (sorted). */
async function pullWorkflowsOf(userId: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const execution of temporal.workflow.list({ query: `BerthUserId="${userId}" AND WorkflowType="${pullImageWorkflow.type}"` })) {
    ids.push(execution.workflowId);
  }
  return ids.sort();
}

/** Lists the user's pull workflows until the list is `expected` (visibility lags a start), then asserts it. */
async function listedPulls(userId: string, expected: string[]): Promise<void> {
  let got: string[] = [];
  for (let i = 0; i < 50; i++) {
    got = await pullWorkflowsOf(userId);
    if (JSON.stringify(got) === JSON.stringify([...expected].sort())) break;
    await sleep(200);
  }
  assert.deepEqual(got, [...expected].sort(), `the pull workflows listed for BerthUserId=${userId}`);
}

const dedupedCount = async () =>
  (await metricsRegistry.getSingleMetric('berth_pulls_total')!.get()).values.find((v) => v.labels.outcome === 'deduped')?.value ?? 0;

test('a dedup is answered from PostgreSQL, starts no workflow, and answers what the workflow answers', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 1000 });
  const reference = await pushUniqueImage();
  const first = await pull(app, user.token, { image: reference, host: 'host-a' });
  assert.equal(first.statusCode, 201, first.body);
  const owned = first.json();
  await listedPulls(user.id, [owned.pullId]);
  const balance = await balanceOf(user.id);
  const counted = await dedupedCount();

  // ?wait=true: 201, the owned image, Location the image; nothing written, nothing charged.
  const again = await pull(app, user.token, { image: reference, host: 'host-a' });
  assert.equal(again.statusCode, 201, again.body);
  assert.equal(again.headers.location, `/api/v1/images/${owned.id}`);
  assert.deepEqual(again.json(), owned);

  // Without ?wait: 202 with a pull id that GET (and its event stream) answers completed, deduped.
  const accepted = await pull(app, user.token, { image: reference, host: 'host-a' }, false);
  assert.equal(accepted.statusCode, 202, accepted.body);
  const { pullId } = accepted.json();
  assert.deepEqual(accepted.json(), { pullId, image: reference, host: 'host-a' });
  assert.equal(accepted.headers.location, `/api/v1/images/pulls/${pullId}`);
  const status = await waitForPull(app, user.token, pullId);
  assert.deepEqual(status, { pullId, state: 'completed', progress: null, image: owned, deduped: true });
  const events = await app.inject({ method: 'GET', url: `/api/v1/images/pulls/${pullId}/events`, headers: bearer(user.token) });
  assert.equal(events.statusCode, 200);
  assert.match(events.body, /event: done\ndata: /);
  assert.deepEqual(JSON.parse(events.body.split('event: done\ndata: ')[1]!.split('\n')[0]!), { image: owned, deduped: true });
  // Someone else's pull id is not found, as a workflow's would be.
  const other = await createUser(app, { balance: 0 });
  const foreign = await app.inject({ method: 'GET', url: `/api/v1/images/pulls/${pullId}`, headers: bearer(other.token) });
  assert.equal(foreign.statusCode, 404, foreign.body);

  // No workflow: not under the pull's id, and none but the first listed by the user's search attribute.
  await assert.rejects(temporal.workflow.getHandle(pullId).describe(), WorkflowNotFoundError);
  await sleep(1000); // visibility lags a start: long enough for a workflow of either dedup to show
  assert.deepEqual(await pullWorkflowsOf(user.id), [owned.pullId]);
  assert.equal(await balanceOf(user.id), balance, 'no charge');
  assert.equal(await dedupedCount(), counted + 2, 'berth_pulls_total{outcome="deduped"} counts both');

  // The workflow's own answer for the same caller (a run started directly, as the API did before): the same image.
  const ref = parseImageReference(reference);
  const viaWorkflow = newPullId(randomUUID());
  const runs = createWorkflowRuns({ temporal, waitTimeoutMs: 120_000 });
  const input: PullImageInput = {
    pullId: viaWorkflow, userId: user.id, hostId: 'host-a', reference: ref.reference, repository: ref.repository, tag: ref.tag ?? null, digest: null, pricePerMb: 1,
  };
  await runs.start(pullImageWorkflow, { workflowId: viaWorkflow, args: [input], subject: { userId: user.id, hostId: 'host-a', resourceId: viaWorkflow } });
  const result = await runs.wait(pullImageWorkflow, viaWorkflow, { followAt: '-' });
  assert.deepEqual(result, { image: owned, deduped: true, pulled: false, progress: null });
  assert.deepEqual(again.json(), result.image);
  assert.deepEqual(status.image, result.image);
});

test('a record marked as being removed by a removal that no longer runs is owned again: the workflow dedups and unmarks it', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 1000 });
  const reference = await pushUniqueImage();
  const owned = (await pull(app, user.token, { image: reference, host: 'host-a' })).json();
  const { db } = testDb();
  // As a removal's first step leaves it when its run is ended from outside before it unmarks it.
  await db.update(images).set({ removalStartedAt: new Date() }).where(eq(images.id, owned.id));
  const balance = await balanceOf(user.id);

  const res = await pull(app, user.token, { image: reference, host: 'host-a' });
  assert.equal(res.statusCode, 201, res.body);
  assert.deepEqual(res.json(), owned, 'the same record');
  // Answered by a workflow this time (the API does not answer a marked record as owned).
  await listedPulls(user.id, [owned.pullId, (await pullIdsAfter(user.id, owned.pullId))[0]!]);
  const [row] = await db.select().from(images).where(eq(images.id, owned.id));
  assert.equal(row?.removalStartedAt, null, 'unmarked');
  assert.equal(await balanceOf(user.id), balance);
});

/** The user's pull workflows other than `known` (after visibility has them). */
async function pullIdsAfter(userId: string, known: string): Promise<string[]> {
  for (let i = 0; i < 50; i++) {
    const others = (await pullWorkflowsOf(userId)).filter((id) => id !== known);
    if (others.length > 0) return others;
    await sleep(200);
  }
  return [];
}

test('a pull racing a removal of the image ends with the user owning it, on the host, charged again', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 1000 });
  const reference = await pushUniqueImage();
  const owned = (await pull(app, user.token, { image: reference, host: 'host-a' })).json();
  assert.ok(owned.charged > 0);
  const { db } = testDb();

  // The removal starts; the pull is sent once the record is marked (the removal has begun and has
  // not yet deleted it), or at once if the removal went faster than the poll.
  const removal = app.inject({ method: 'DELETE', url: `/api/v1/images/${owned.id}`, headers: bearer(user.token) });
  let sawMarked = false;
  for (let i = 0; i < 400; i++) {
    const [row] = await db.select({ removalStartedAt: images.removalStartedAt }).from(images).where(eq(images.id, owned.id));
    if (!row) break;
    if (row.removalStartedAt) {
      sawMarked = true;
      break;
    }
    await sleep(5);
  }
  const pulled = await pull(app, user.token, { image: reference, host: 'host-a' });
  const removed = await removal;
  t.diagnostic(`the pull was sent ${sawMarked ? 'while the record was marked as being removed' : 'after the removal had deleted the record'}`);

  assert.equal(removed.statusCode, 200, removed.body);
  assert.equal(removed.json().refunded, owned.charged);
  assert.equal(pulled.statusCode, 201, pulled.body);
  const image = pulled.json();
  assert.notEqual(image.id, owned.id, 'a new record: the removed one is not answered');
  assert.notEqual(image.pullId, owned.pullId);
  const rows = await db.select().from(images).where(eq(images.userId, user.id));
  assert.deepEqual(rows.map((r) => [r.id, r.removalStartedAt]), [[image.id, null]], 'the user owns exactly the new record');
  assert.ok(await inspectOn('host-a', reference), 'the image is on the host');
  assert.equal(await balanceOf(user.id), 1000 - owned.charged + owned.charged - image.charged, 'charged, refunded, charged again');
});
