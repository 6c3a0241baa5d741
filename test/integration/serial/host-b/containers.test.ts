/**
 * A create whose host worker is killed: it kills host-b's worker (every activity on host-b
 * meanwhile would be retried), so it runs in the serial pass's host-b lane (scripts/test.sh).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { like } from 'drizzle-orm';
import { ledgerEntries } from '../../../../db/schema.js';
import { connectTemporal } from '../../../../core/temporal.js';
import { LABEL_ID, LABEL_USER } from '../../../../core/container-labels.js';
import { baseConfig, bearer, buildTestApp, createUser, testDb } from '../../../support/app.js';
import { pullHttpd, rowOf } from '../../../support/containers.js';
import { dockerFor, processGone, stackPid, stackStart } from '../../../support/stack.js';
import { activityAttempts } from '../../../support/history.js';
import { eventually } from '../../../support/wait.js';

const temporal = await connectTemporal(baseConfig.temporal);
test.after(() => temporal.connection.close());

test('the host worker killed during create: exactly one container once it is back, charged once', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 10_000 });
  const image = await pullHttpd(app, user, 'host-b');
  const docker = dockerFor('host-b');
  t.after(() => stackStart('worker-host-b'));
  // Kill the worker the moment its create activity has made the container in Docker,
  // before it starts it and reports back.
  const pid = await stackPid('worker-host-b');
  const events = (await docker.getEvents({
    filters: { type: ['container'], event: ['create'], label: [`${LABEL_USER}=${user.id}`] },
  })) as NodeJS.ReadableStream & { destroy(): void };
  const created = new Promise<void>((resolve) => events.once('data', () => {
    process.kill(pid, 'SIGKILL');
    resolve();
  }));
  const res = await app.inject({ method: 'POST', url: '/api/v1/containers', headers: bearer(user.token), payload: { imageId: image.id } });
  assert.equal(res.statusCode, 202, res.body);
  const { id } = res.json<{ id: string }>();
  await created;
  events.destroy();
  await processGone(pid);
  await stackStart('worker-host-b');

  await eventually('running', async () => (await rowOf(id)).state === 'running', 150);
  const inDocker = await docker.listContainers({ all: true, filters: { label: [`${LABEL_ID}=${id}`] } });
  assert.equal(inDocker.length, 1, 'exactly one container');
  assert.equal(inDocker[0]!.State, 'running');
  const attempts = await activityAttempts(temporal, `container-${id}`, 'createAndStartContainer');
  assert.ok(Math.max(...attempts) >= 2, `the create activity ran again after the kill (attempts ${attempts.join(', ')})`);
  const charges = await testDb().db.select().from(ledgerEntries).where(like(ledgerEntries.idempotencyKey, `container-${id}-%`));
  assert.equal(charges.length, 1, 'the first period charged once');
  const removed = await app.inject({ method: 'DELETE', url: `/api/v1/containers/${id}`, headers: bearer(user.token) });
  assert.equal(removed.statusCode, 200, removed.body);
});
