/**
 * A container's billing over its life: each started period charged once, suspension when the
 * balance cannot pay, billing that follows what Docker reports (a container that died or was
 * removed outside Berth), and the workflow continuing as new with what it charged. Split from
 * containers.test.ts so that the two files run side by side in the concurrent pass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { and, eq, like } from 'drizzle-orm';
import { ledgerEntries, users } from '../../db/schema.js';
import { connectTemporal } from '../../core/temporal.js';
import { dockerName } from '../../core/container-labels.js';
import { balanceOf, baseConfig, bearer, buildTestApp, createUser, testDb } from '../support/app.js';
import { containersConfig, flatPrice, op, pullHttpd, rowOf, run } from '../support/containers.js';
import { dockerFor } from '../support/stack.js';
import { containerPricePerPeriod } from '../../billing/prices.js';
import { closedStatus } from '../support/history.js';
import { eventually, sleep } from '../support/wait.js';
import { containerWorkflowId, describeQuery, type ContainerInput } from '../../contracts/container.js';

const temporal = await connectTemporal(baseConfig.temporal);
test.after(() => temporal.connection.close());

test('metering: each started period is charged once; an unpaid period suspends; top-up and start resume', async (t) => {
  const app = await buildTestApp(t, { containers: containersConfig({ prices: flatPrice(7), billingPeriodMs: 2000 }) });
  const user = await createUser(app, { balance: 1000 });
  const image = await pullHttpd(app, user);
  await testDb().db.update(users).set({ balance: 21 }).where(eq(users.id, user.id)); // three periods
  // httpd behind a shell that leaves on SIGTERM: a stop (or suspension) takes no 10 s stop timeout.
  const c = await run(app, user, { imageId: image.id, cmd: ['sh', '-c', 'trap "exit 0" TERM; httpd -f -p 80 -h /www & wait'] });
  const suspended = await eventually('suspension', async () => {
    const row = await rowOf(c.id);
    return row.state === 'suspended' && row;
  }, 30);
  assert.match(suspended.stateReason ?? '', /insufficient balance/);
  assert.equal(suspended.stateReasonCode, 'insufficient_funds');
  assert.equal(await balanceOf(user.id), 0);
  const charges = (await testDb().db.select().from(ledgerEntries).where(and(eq(ledgerEntries.userId, user.id), eq(ledgerEntries.kind, 'container_charge'))));
  assert.equal(charges.length, 3);
  assert.equal(new Set(charges.map((e) => e.idempotencyKey)).size, 3);
  assert.ok(charges.every((e) => e.amount === -7));
  assert.equal(suspended.charged, 21);
  assert.equal((await dockerFor('host-a').getContainer(dockerName(c.id)).inspect()).State.Running, false, 'stopped in Docker');

  const noMoney = await op(app, user, c.id, 'start');
  assert.equal(noMoney.statusCode, 409);
  assert.match(noMoney.json().detail, /insufficient balance/);

  await testDb().db.update(users).set({ balance: 7 }).where(eq(users.id, user.id));
  const resumed = await op(app, user, c.id, 'start');
  assert.equal(resumed.statusCode, 200, resumed.body);
  assert.equal(resumed.json().state, 'running');
  assert.equal(resumed.json().stateReasonCode, null, 'started by its user: no reason');
  // One period paid: the next one is not, and the container is suspended again. (A stop sent now
  // would race with that period, due 2 s after the start: under load it can come first.)
  const again = await eventually('suspension once the paid period is over', async () => {
    const row = await rowOf(c.id);
    return row.state === 'suspended' && row;
  }, 30);
  assert.equal(again.stateReasonCode, 'insufficient_funds');
  // Three periods paid, so that the stop comes before the container runs out of money.
  await testDb().db.update(users).set({ balance: 21 }).where(eq(users.id, user.id));
  assert.equal((await op(app, user, c.id, 'start')).json().state, 'running');
  const stopped = await op(app, user, c.id, 'stop');
  assert.equal(stopped.json().state, 'stopped');
  const balance = await balanceOf(user.id);
  await sleep(4500);
  assert.equal(await balanceOf(user.id), balance, 'a stopped container is not charged');
  await app.inject({ method: 'DELETE', url: `/api/v1/containers/${c.id}`, headers: bearer(user.token) });
});

test('reconciliation: a container that dies or is removed outside Berth shows its real state, and billing follows', async (t) => {
  const app = await buildTestApp(t, { containers: containersConfig({ prices: flatPrice(3), billingPeriodMs: 1500 }) });
  const user = await createUser(app, { balance: 10_000 });
  const image = await pullHttpd(app, user, 'host-b');
  const a = await run(app, user, { imageId: image.id });
  const b = await run(app, user, { imageId: image.id });
  await dockerFor('host-b').getContainer(dockerName(a.id)).kill();
  const exited = await eventually('exited', async () => {
    const row = await rowOf(a.id);
    return row.state === 'exited' && row;
  });
  assert.match(exited.stateReason ?? '', /exited with code/);
  assert.equal(exited.stateReasonCode, 'exited');
  assert.equal((await temporal.workflow.getHandle(containerWorkflowId(a.id)).query(describeQuery)).reasonCode, 'exited');
  const chargesOfA = async () => (await testDb().db.select().from(ledgerEntries).where(and(
    eq(ledgerEntries.kind, 'container_charge'), like(ledgerEntries.idempotencyKey, `container-${a.id}-%`)))).length;
  const chargedAtExit = await chargesOfA();
  await sleep(4000); // more than two billing periods
  assert.equal(await chargesOfA(), chargedAtExit, 'an exited container is not charged');

  await dockerFor('host-b').getContainer(dockerName(b.id)).remove({ force: true });
  const gone = await eventually('removed', async () => {
    const row = await rowOf(b.id);
    return row.state === 'removed' && row;
  });
  assert.ok(gone.removedAt);
  assert.match(gone.stateReason ?? '', /outside Berth/);
  assert.equal(gone.stateReasonCode, 'removed_outside');
  assert.equal(await closedStatus(temporal, `container-${b.id}`), 'COMPLETED');
  await app.inject({ method: 'DELETE', url: `/api/v1/containers/${a.id}`, headers: bearer(user.token) });
});

test('past its history limit the container workflow continues as new, carrying its state: it still answers, bills once per start and removes', async (t) => {
  const historyLimit = 20;
  const app = await buildTestApp(t, { containers: containersConfig({ historyLimit }) });
  // The default billing period is 1h: every start charges a new period.
  const user = await createUser(app, { balance: 100_000 });
  const { defaultCpus, defaultMemoryMb, prices } = baseConfig.containers;
  const price = containerPricePerPeriod({ cpuMillis: defaultCpus * 1000, memoryMb: defaultMemoryMb }, prices);
  const image = await pullHttpd(app, user);
  // A shell that leaves on SIGTERM: a stop takes no stop timeout.
  const c = await run(app, user, { imageId: image.id, cmd: ['sh', '-c', 'trap "exit 0" TERM; httpd -f -p 80 -h /www & wait'] });
  const workflowId = `container-${c.id}`;
  // Should an assertion fail, the container is removed all the same.
  t.after(() => temporal.workflow.getHandle(workflowId).executeUpdate('remove').catch(() => undefined));
  const docker = dockerFor('host-a').getContainer(dockerName(c.id));
  const runsOf = async () => {
    const runs: Array<{ runId: string; status: string; startTime: Date }> = [];
    for await (const r of temporal.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
      runs.push({ runId: r.runId, status: r.status.name, startTime: r.startTime });
    }
    return runs.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
  };
  // Each stop or start adds 25 to 30 events (update, activities, Docker's event): four pairs
  // take the history several times past the limit.
  let starts = 1;
  for (let i = 0; i < 4; i++) {
    const stopped = await op(app, user, c.id, 'stop');
    assert.equal(stopped.statusCode, 200, stopped.body);
    assert.equal(stopped.json().state, 'stopped');
    const started = await op(app, user, c.id, 'start');
    assert.equal(started.statusCode, 200, started.body);
    assert.equal(started.json().state, 'running');
    starts++;
  }

  // Visibility lags a little: wait until it lists the chain, every run continued as new but the last.
  // The last start may still take the run past the limit after it answered: wait until the run
  // listed last is the one the workflow id resolves to now.
  const runs = await eventually('the chain of runs to be listed', async () => {
    const listed = await runsOf();
    const current = await temporal.workflow.getHandle(workflowId).describe();
    return listed.length >= 2 && listed.at(-1)!.status === 'RUNNING' && listed.at(-1)!.runId === current.runId
      && listed.slice(0, -1).every((r) => r.status === 'CONTINUED_AS_NEW') && listed;
  });
  const firstRun = runs[0]!;
  const first = await temporal.workflow.getHandle(workflowId, firstRun.runId).describe();
  assert.equal(first.status.name, 'CONTINUED_AS_NEW');
  assert.ok(first.historyLength > historyLimit, `the first run ended past the limit (${first.historyLength} events)`);
  for (const r of runs.slice(0, -1)) {
    const { historyLength } = await temporal.workflow.getHandle(workflowId, r.runId).describe();
    t.diagnostic(`run ${r.runId}: ${historyLength} events`);
    // The limit is checked between operations: a run ends within one operation (about 30 events) of it.
    assert.ok(historyLength > historyLimit && historyLength < historyLimit + 60, `each run ends soon after the limit (${historyLength} events)`);
  }
  assert.ok(runs.length >= 3, `the carried limit holds in continued runs too (${runs.length} runs)`);
  const handle = temporal.workflow.getHandle(workflowId);
  const latest = await handle.describe();
  assert.equal(latest.runId, runs.at(-1)!.runId);
  assert.equal(latest.status.name, 'RUNNING');

  // The new run was given the same input, with the limit, and the state it carries.
  const started = (await temporal.workflow.getHandle(workflowId, latest.runId).fetchHistory()).events![0]!.workflowExecutionStartedEventAttributes!;
  const [carried] = started.input!.payloads!.map((p) => temporal.options.loadedDataConverter.payloadConverter.fromPayload<ContainerInput>(p));
  assert.equal(carried!.id, c.id);
  assert.equal(carried!.historyLimit, historyLimit, 'the limit is carried');
  assert.equal(carried!.pricePerPeriod, price);
  assert.ok(carried!.state && carried!.state.charged > 0 && carried!.state.segment > 1, `the state is carried: ${JSON.stringify(carried!.state)}`);
  assert.ok(started.continuedExecutionRunId && started.continuedExecutionRunId !== latest.runId, 'continued from the run before');

  // It still answers, with the state carried over.
  let view = await handle.query(describeQuery);
  assert.equal(view.status, 'running');
  assert.equal(view.charged, starts * price, 'charged carried: one period per start');
  assert.equal(view.periodsCharged, 1);
  assert.equal(view.dockerId, (await docker.inspect()).Id);

  const stopped = await op(app, user, c.id, 'stop');
  assert.equal(stopped.statusCode, 200, stopped.body);
  assert.equal(stopped.json().state, 'stopped');
  assert.equal((await docker.inspect()).State.Running, false);
  assert.equal((await rowOf(c.id)).state, 'stopped');
  const restarted = await op(app, user, c.id, 'start');
  assert.equal(restarted.statusCode, 200, restarted.body);
  assert.equal(restarted.json().state, 'running');
  starts++;
  assert.equal((await docker.inspect()).State.Running, true);
  assert.match(await (await fetch(`http://${c.hostIp}:${c.hostPort}/`)).text(), /Berth httpd/);
  view = await handle.query(describeQuery);
  assert.equal(view.charged, starts * price);

  // Billing: the record, the workflow and the ledger agree; every period charged once.
  const entries = await testDb().db.select().from(ledgerEntries).where(like(ledgerEntries.idempotencyKey, `container-${c.id}-%`));
  assert.equal(entries.length, starts, entries.map((e) => e.idempotencyKey).join(', '));
  assert.ok(entries.every((e) => e.kind === 'container_charge' && e.amount === -price));
  assert.equal(new Set(entries.map((e) => e.idempotencyKey)).size, starts, 'one key per run segment');
  const row = await rowOf(c.id);
  assert.equal(row.charged, -entries.reduce((sum, e) => sum + e.amount, 0));
  assert.equal(row.charged, view.charged);

  const removed = await app.inject({ method: 'DELETE', url: `/api/v1/containers/${c.id}`, headers: bearer(user.token) });
  assert.equal(removed.statusCode, 200, removed.body);
  assert.equal(removed.json().state, 'removed');
  await assert.rejects(docker.inspect(), /no such container/i);
  assert.ok((await rowOf(c.id)).removedAt);
  assert.equal(await closedStatus(temporal, handle.workflowId), 'COMPLETED');
});
