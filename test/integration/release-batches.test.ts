/**
 * The nightly release's batch steps, run directly (as a worker runs them, retried by running them
 * twice) on the real database and host-a's daemon, touching only what each test makes: a batch of
 * container records released in one transaction and audited once, after which a period charged for
 * such a container moves no money; a batch of images refunded once each and deleted, an image in
 * use kept and reported; which references Docker keeps; a host's batch of container and image
 * removals, each outcome on its own. The release's runs themselves are checked in the serial pass
 * (test/integration/serial/release.test.ts) and measured by bench/release.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { and, eq, inArray, sql } from 'drizzle-orm';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { auditLog, containers, images, ledgerEntries } from '../../db/schema.js';
import { connectTemporal } from '../../core/temporal.js';
import { dockerName } from '../../core/container-labels.js';
import { billingKeys } from '../../billing/keys.js';
import { createReleaseActivities } from '../../activities/release.js';
import type { ImageBatchResult } from '../../contracts/nightly-release.js';
import { createImageDbActivities } from '../../activities/images-db.js';
import { createContainerDbActivities } from '../../activities/containers-db.js';
import { createContainerDockerActivities } from '../../activities/containers-docker.js';
import { createImageDockerActivities } from '../../activities/images-docker.js';
import { createUserNetworks } from '../../activities/networks.js';
import { referencesUsedOutside, hostReference } from '../../repositories/releases.js';
import { balanceOf, baseConfig, buildTestApp, createUser, testDb, type TestUser } from '../support/app.js';
import { BUSYBOX } from '../support/containers.js';
import { dockerFor } from '../support/stack.js';

const temporal = await connectTemporal(baseConfig.temporal);
test.after(() => temporal.connection.close());

const activityEnv = (workflowId: string) =>
  new MockActivityEnvironment(
    { workflowExecution: { workflowId, runId: randomUUID() }, activityId: String(Math.floor(Math.random() * 1e6)), scheduledTimestampMs: Date.now(), attempt: 1 },
    { logger: new DefaultLogger('ERROR') },
  );

const auditOf = (action: string, ids: string[]) =>
  testDb().db.select().from(auditLog).where(and(eq(auditLog.action, action), inArray(auditLog.targetId, ids)));

/** A live container record of `user` on host-a, with no workflow (released when the test ends). */
async function containerRecord(t: { after: (fn: () => Promise<unknown>) => void }, user: TestUser, extra: { imageId?: string } = {}) {
  const [row] = await testDb()
    .db.insert(containers)
    .values({
      userId: user.id,
      hostId: 'host-a',
      imageReference: BUSYBOX,
      name: `batch-${randomUUID().slice(0, 8)}`,
      // Outside BERTH_PORT_RANGE: no allocation of the API's can meet it.
      hostPort: 40_000 + Math.floor(Math.random() * 20_000),
      containerPort: 80,
      memoryMb: 64,
      cpuMillis: 100,
      state: 'running',
      ...extra,
    })
    .returning();
  t.after(() => testDb().db.update(containers).set({ state: 'removed', removedAt: sql`coalesce(${containers.removedAt}, now())` }).where(eq(containers.id, row!.id)));
  return row!;
}

async function imageRecord(user: TestUser, charged: number, reference = `127.0.0.1:5000/batch/${randomUUID().slice(0, 8)}:latest`) {
  const [row] = await testDb()
    .db.insert(images)
    .values({ userId: user.id, hostId: 'host-a', reference, repository: 'batch', tag: 'latest', imageId: `sha256:${randomUUID().replace(/-/g, '')}`, sizeBytes: 1024, charged })
    .returning();
  return row!;
}

test('releaseContainerRecords: a batch released in one transaction, audited once when retried; a period charged after it moves no money', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 1000 });
  const db = testDb().db;
  const releaseId = `release-batch-${randomUUID()}`;
  const release = createReleaseActivities({ db, temporal });
  const a = await containerRecord(t, user);
  const b = await containerRecord(t, user);
  const env = activityEnv(releaseId);
  // No workflow runs for these records: the signal finds none, which is not a failure.
  await env.run(() => release.releaseContainerRecords([a.id, b.id]));
  await env.run(() => release.releaseContainerRecords([a.id, b.id]));
  const rows = await db.select().from(containers).where(inArray(containers.id, [a.id, b.id]));
  assert.deepEqual(rows.map((r) => r.state), ['removed', 'removed']);
  assert.ok(rows.every((r) => r.removedAt), 'their ports and names are free');
  const audited = await auditOf('release.removeContainer', [a.id, b.id]);
  assert.equal(audited.length, 2, 'one entry per container, though run twice');
  assert.ok(audited.every((e) => e.workflowId === releaseId && e.subjectUserId === user.id && e.actorType === 'system' && e.outcome === 'success'));

  // The container's workflow was about to charge its next period as the release released it.
  const before = await balanceOf(user.id);
  const charge = await createContainerDbActivities({ db }).chargeContainerPeriod({
    containerId: a.id,
    userId: user.id,
    amount: 10,
    idempotencyKey: billingKeys.containerPeriod(a.id, 1, 1),
    reason: 'a period after the release',
  });
  assert.equal(charge.applied, false);
  assert.equal(charge.ended, true, 'the answer says why: the record has ended');
  assert.equal(charge.balanceAfter, before);
  assert.equal(await balanceOf(user.id), before, 'no money moved');
  assert.deepEqual(await db.select().from(ledgerEntries).where(eq(ledgerEntries.idempotencyKey, billingKeys.containerPeriod(a.id, 1, 1))), []);
});

test('refundAndDeleteImagesForRelease: each image refunded once and deleted, audited; one a live container uses is kept and reported', async (t) => {
  const app = await buildTestApp(t);
  const [alice, bob] = [await createUser(app, { balance: 100 }), await createUser(app, { balance: 100 })];
  const db = testDb().db;
  const releaseId = `release-batch-${randomUUID()}`;
  const activities = createImageDbActivities({ db, pricePerMb: 1, temporal });
  const [a1, a2, b1, inUse] = [await imageRecord(alice, 5), await imageRecord(alice, 0), await imageRecord(bob, 7), await imageRecord(bob, 3)];
  t.after(() => db.delete(images).where(eq(images.id, inUse.id)));
  await containerRecord(t, bob, { imageId: inUse.id });
  const items = [a1, a2, b1, inUse].map((i) => ({ id: i.id, hostId: i.hostId, reference: i.reference, userId: i.userId }));
  const reason = `nightly release ${releaseId}`;

  const first = await activityEnv(releaseId).run<[], ImageBatchResult, () => Promise<ImageBatchResult>>(() => activities.refundAndDeleteImagesForRelease(items, reason, releaseId));
  assert.deepEqual(
    first.removed.sort((x, y) => x.id.localeCompare(y.id)),
    [{ id: a1.id, refunded: 5 }, { id: a2.id, refunded: 0 }, { id: b1.id, refunded: 7 }].sort((x, y) => x.id.localeCompare(y.id)),
  );
  assert.equal(first.failed.length, 1);
  assert.equal(first.failed[0]!.id, inUse.id);
  assert.match(first.failed[0]!.reason, /used by 1 container/);
  // Run again (a retry): nothing is refunded twice.
  const again = await activityEnv(releaseId).run<[], ImageBatchResult, () => Promise<ImageBatchResult>>(() => activities.refundAndDeleteImagesForRelease(items, reason, releaseId));
  assert.deepEqual(again.removed.map((r) => r.refunded), [0, 0, 0]);

  assert.deepEqual((await db.select().from(images).where(inArray(images.id, items.map((i) => i.id)))).map((i) => i.id), [inUse.id], 'only the image in use stays');
  assert.equal(await balanceOf(alice.id), 105);
  assert.equal(await balanceOf(bob.id), 107);
  const refunds = await db.select().from(ledgerEntries).where(inArray(ledgerEntries.userId, [alice.id, bob.id]));
  const releaseRefunds = refunds.filter((e) => e.kind === 'release_refund');
  assert.deepEqual(releaseRefunds.map((e) => e.idempotencyKey).sort(), [billingKeys.imageRefund(a1.id), billingKeys.imageRefund(b1.id)].sort(), 'one refund per charged image');
  assert.ok(releaseRefunds.every((e) => e.reason === reason));
  const audited = await auditOf('release.removeImage', items.map((i) => i.id));
  assert.deepEqual(audited.map((e) => e.targetId).sort(), [a1.id, a2.id, b1.id].sort(), 'each removal audited once');
  assert.ok(audited.every((e) => e.workflowId === releaseId && e.actorType === 'system'));
});

test('referencesUsedOutside: a reference another record outside the batch uses on that host is kept', async (t) => {
  const app = await buildTestApp(t);
  const [alice, bob] = [await createUser(app), await createUser(app)];
  const db = testDb().db;
  const reference = `127.0.0.1:5000/batch/shared-${randomUUID().slice(0, 8)}:latest`;
  const [a, b, alone] = [await imageRecord(alice, 0, reference), await imageRecord(bob, 0, reference), await imageRecord(alice, 0)];
  t.after(() => db.delete(images).where(inArray(images.id, [a.id, b.id, alone.id])));
  const pair = (i: typeof a) => ({ hostId: i.hostId, reference: i.reference });
  assert.deepEqual([...(await referencesUsedOutside(db, [pair(a), pair(alone)], [a.id, alone.id]))], [hostReference(pair(a))], "bob's record keeps it");
  assert.deepEqual([...(await referencesUsedOutside(db, [pair(a), pair(b)], [a.id, b.id]))], [], 'both go: Docker may remove it');
});

test("a host's batches: containers force-removed (absent counts as removed); image references removed, one in use reported, each on its own", async (t) => {
  const docker = dockerFor('host-a');
  const host = {
    ...createContainerDockerActivities({ docker, networks: createUserNetworks({ docker, hostId: 'host-a' }) }),
    ...createImageDockerActivities({ docker, registryCredentials: {}, pullStallTimeoutMs: 60_000 }),
  };
  const ids = [randomUUID(), randomUUID()];
  for (const id of ids) {
    const c = await docker.createContainer({ name: dockerName(id), Image: BUSYBOX, Cmd: ['sleep', '600'] });
    await c.start();
    t.after(() => c.remove({ force: true }).catch(() => undefined));
  }
  const containersDone = await host.removeContainersBatch([...ids.map(dockerName), dockerName(randomUUID())], 4);
  assert.equal(containersDone.done.length, 3);
  assert.deepEqual(containersDone.failed, []);
  for (const id of ids) await assert.rejects(docker.getContainer(dockerName(id)).inspect(), /no such container/i);

  const tag = () => ({ repo: `127.0.0.1:5000/batch/rm-${randomUUID().slice(0, 8)}`, tag: 'v1' });
  const [free, used] = [tag(), tag()];
  await docker.getImage(BUSYBOX).tag(free);
  // An image of its own (one reference): Docker refuses to remove it while a container uses it.
  const base = await docker.createContainer({ Image: BUSYBOX, Cmd: ['true'] });
  await base.commit(used);
  await base.remove();
  const usedRef = `${used.repo}:${used.tag}`;
  const user = await docker.createContainer({ Image: usedRef, Cmd: ['sleep', '600'] });
  t.after(async () => {
    await user.remove({ force: true }).catch(() => undefined);
    await docker.getImage(usedRef).remove().catch(() => undefined);
  });
  const imagesDone = await host.removeImageReferencesBatch([`${free.repo}:${free.tag}`, usedRef, '127.0.0.1:5000/batch/absent:v1'], 4);
  assert.deepEqual(imagesDone.done.sort(), [`${free.repo}:${free.tag}`, '127.0.0.1:5000/batch/absent:v1'].sort());
  assert.equal(imagesDone.failed.length, 1);
  assert.equal(imagesDone.failed[0]!.ref, usedRef);
  assert.match(imagesDone.failed[0]!.reason, /in use/);
  await assert.rejects(docker.getImage(`${free.repo}:${free.tag}`).inspect(), /no such image/i);
  assert.ok(await docker.getImage(usedRef).inspect(), 'the reference in use stays');
});
