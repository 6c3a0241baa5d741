/**
 * Which host a pull with no host named goes to: it depends on every live container on the stack
 * (another test's container made or removed meanwhile would change the answer), so it runs in
 * the serial pass after both lanes (scripts/test.sh), alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { and, count, eq, isNull } from 'drizzle-orm';
import { containers, hosts } from '../../../db/schema.js';
import { buildTestApp, createUser, testDb } from '../../support/app.js';
import { pullRequest as pull, waitForPull } from '../../support/images.js';
import { REGISTRY } from '../../support/stack.js';

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
