/**
 * Image tests that act on the whole stack, so they run in the serial pass (scripts/test.sh),
 * alone: one kills host-b's worker (every activity on host-b meanwhile would be retried), one
 * checks which host a pull with no host named goes to, which depends on every live container
 * on the stack (another test's container made or removed meanwhile would change the answer).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { and, count, eq, isNull } from 'drizzle-orm';
import { containers, hosts, images } from '../../../db/schema.js';
import { connectTemporal } from '../../../core/temporal.js';
import { balanceOf, baseConfig, bearer, buildTestApp, createUser, ledgerOf, testDb } from '../../support/app.js';
import { inspectOn, pullRequest as pull, pushUniqueImage, waitForPull } from '../../support/images.js';
import { REGISTRY, dockerFor, killStackProcess, stackUp } from '../../support/stack.js';
import { activityAttempts } from '../../support/history.js';

const temporal = await connectTemporal(baseConfig.temporal);
test.after(() => temporal.connection.close());

test('the host worker killed in the middle of a large pull: the workflow completes once a worker is back, charged once', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 10_000 });
  const reference = await pushUniqueImage('large', 120 * 1024);
  t.after(async () => {
    await stackUp();
    await dockerFor('host-b').getImage(reference).remove({ force: true }).catch(() => undefined);
  });
  const started = await pull(app, user.token, { image: reference, host: 'host-b' }, false);
  assert.equal(started.statusCode, 202, started.body);
  const { pullId } = started.json();
  // Kill the worker once the pull activity reports progress: the download is under way.
  for (let i = 0; ; i++) {
    const status = (await app.inject({ method: 'GET', url: `/api/v1/images/pulls/${pullId}`, headers: bearer(user.token) })).json();
    assert.equal(status.state, 'running', JSON.stringify(status));
    if (status.progress) break;
    assert.ok(i < 600, 'the pull never reported progress');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await killStackProcess('worker-host-b');
  await stackUp();

  const status = await waitForPull(app, user.token, pullId, 600);
  assert.equal(status.state, 'completed', JSON.stringify(status));
  const attempts = await activityAttempts(temporal, pullId, 'dockerPull');
  assert.ok(Math.max(...attempts) >= 2, `the pull ran again on the restarted worker (attempts ${attempts.join(', ')})`);
  const rows = await testDb().db.select().from(images).where(eq(images.userId, user.id));
  assert.equal(rows.length, 1);
  const daemon = await inspectOn('host-b', reference);
  assert.equal(rows[0]!.imageId, daemon?.Id);
  assert.equal((await ledgerOf(user.id)).filter((e) => e.kind === 'image_charge').length, 1, 'charged once');
  assert.equal(await balanceOf(user.id), 10_000 - rows[0]!.charged);
});

test('no host named: the up host with the fewest live containers; a down host is never picked, though it has no containers at all', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 1000 });
  // A registered host whose worker stopped heartbeating is down.
  const downHost = `down-${randomUUID().slice(0, 8)}`;
  await testDb().db.insert(hosts).values({ id: downHost, dockerEndpoint: 'unix:///nonexistent.sock', engineId: 'down', engineVersion: '0', lastHeartbeatAt: new Date(Date.now() - 3_600_000) });
  try {
    // No host named: the up host with the fewest live containers (ties by id).
    const load = async (id: string) => (await testDb().db.select({ n: count() }).from(containers).where(and(eq(containers.hostId, id), isNull(containers.removedAt))))[0]!.n;
    const [a, b] = [await load('host-a'), await load('host-b')];
    const expected = b < a ? 'host-b' : 'host-a';
    const picked = await pull(app, user.token, { image: `${REGISTRY}/library/busybox:1.35` }, false);
    assert.equal(picked.statusCode, 202, picked.body);
    assert.equal(picked.json().host, expected, `host-a has ${a} live containers, host-b ${b}`);
    assert.equal((await waitForPull(app, user.token, picked.json().pullId)).state, 'completed');
  } finally {
    await testDb().db.delete(hosts).where(eq(hosts.id, downHost));
  }
});
