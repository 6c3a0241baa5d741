/**
 * A pull whose host worker is killed: it kills host-b's worker (every activity on host-b
 * meanwhile would be retried), so it runs in the serial pass's host-b lane (scripts/test.sh).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eq } from 'drizzle-orm';
import { images } from '../../../../db/schema.js';
import { connectTemporal } from '../../../../core/temporal.js';
import { balanceOf, baseConfig, bearer, buildTestApp, createUser, ledgerOf, testDb } from '../../../support/app.js';
import { inspectOn, pullRequest as pull, pushUniqueImage, waitForPull } from '../../../support/images.js';
import { dockerFor, killStackProcess, stackStart } from '../../../support/stack.js';
import { activityAttempts } from '../../../support/history.js';

const temporal = await connectTemporal(baseConfig.temporal);
test.after(() => temporal.connection.close());

test('the host worker killed in the middle of a large pull: the workflow completes once a worker is back, charged once', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 10_000 });
  const reference = await pushUniqueImage('large', 120 * 1024);
  t.after(async () => {
    await stackStart('worker-host-b');
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
  await stackStart('worker-host-b');

  const status = await waitForPull(app, user.token, pullId, 600);
  assert.equal(status.state, 'completed', JSON.stringify(status));
  // The host step that pulls: ensureImage (inspect, pull when missing, inspect) since issue 17.
  const attempts = await activityAttempts(temporal, pullId, 'ensureImage');
  assert.ok(Math.max(...attempts) >= 2, `the pull ran again on the restarted worker (attempts ${attempts.join(', ')})`);
  const rows = await testDb().db.select().from(images).where(eq(images.userId, user.id));
  assert.equal(rows.length, 1);
  const daemon = await inspectOn('host-b', reference);
  assert.equal(rows[0]!.imageId, daemon?.Id);
  assert.equal((await ledgerOf(user.id)).filter((e) => e.kind === 'image_charge').length, 1, 'charged once');
  assert.equal(await balanceOf(user.id), 10_000 - rows[0]!.charged);
});
