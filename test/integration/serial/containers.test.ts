/**
 * Container tests that act on the whole stack, so they run in the serial pass (scripts/test.sh),
 * alone: one kills host-b's worker (every activity on host-b meanwhile would be retried), two
 * count the Docker streams host-a's worker has open (GET <stream_url>/streams counts them for
 * the whole host, so another test's log read or stats socket on host-a would change the count).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eq, like } from 'drizzle-orm';
import WebSocket from 'ws';
import { hosts, ledgerEntries } from '../../../db/schema.js';
import { connectTemporal } from '../../../core/temporal.js';
import { LABEL_ID, LABEL_USER } from '../../../core/container-labels.js';
import { baseConfig, bearer, buildTestApp, createUser, testDb } from '../../support/app.js';
import { op, pullHttpd, rowOf, run } from '../../support/containers.js';
import { dockerFor, processGone, stackPid, stackUp } from '../../support/stack.js';
import { activityAttempts } from '../../support/history.js';
import { eventually, sleep } from '../../support/wait.js';

const temporal = await connectTemporal(baseConfig.temporal);
test.after(() => temporal.connection.close());

test('the host worker killed during create: exactly one container once it is back, charged once', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 10_000 });
  const image = await pullHttpd(app, user, 'host-b');
  const docker = dockerFor('host-b');
  t.after(() => stackUp());
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
  await stackUp();

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

test('logs ?follow=true: lines arrive as they are written, until the client leaves or the container stops', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 10_000 });
  const image = await pullHttpd(app, user);
  // Leaves on SIGTERM, so a stop is quick.
  const c = await run(app, user, { imageId: image.id, cmd: ['sh', '-c', 'trap "exit 0" TERM; i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done'] });
  t.after(() => temporal.workflow.getHandle(`container-${c.id}`).executeUpdate('remove').catch(() => undefined));
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const [host] = await testDb().db.select().from(hosts).where(eq(hosts.id, 'host-a'));
  const openLogs = async () =>
    ((await (await fetch(`${host!.streamUrl}/streams`, { headers: { authorization: `Bearer ${baseConfig.internalToken}` } })).json()) as { logs: number }).logs;
  const before = await openLogs();

  /** Reads the followed stream until `until` says enough (or it ends); answers the lines and whether it ended. */
  async function follow(signal: AbortSignal, until: (lines: string[]) => boolean) {
    const res = await fetch(`${address}/api/v1/containers/${c.id}/logs?follow=true&tail=0`, { headers: bearer(user.token), signal });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { lines: text.split('\n').filter(Boolean), ended: true };
      text += decoder.decode(value, { stream: true });
      const lines = text.split('\n').filter(Boolean);
      if (until(lines)) return { lines, ended: false, reader };
    }
  }

  // Follow: new lines keep coming (tail=0: none of the old ones).
  const leaving = new AbortController();
  const first = await follow(leaving.signal, (lines) => lines.length >= 3);
  assert.ok(first.lines.every((l) => /^\[stdout\] tick-\d+$/.test(l)), first.lines.join('|'));
  const numbers = first.lines.map((l) => Number(l.split('-')[1]));
  assert.ok(numbers[2]! > numbers[0]!, 'lines written after the request arrive');
  assert.equal(await openLogs(), before + 1, 'one Docker logs stream open on the host');
  leaving.abort();
  await eventually('the logs stream to close after the client left', async () => (await openLogs()) === before, 10);

  // Follow until the container stops: the stream ends by itself.
  const staying = new AbortController();
  const watched = follow(staying.signal, () => false);
  await eventually('the follower to be attached', async () => (await openLogs()) === before + 1, 10);
  assert.equal((await op(app, user, c.id, 'stop')).json().state, 'stopped');
  const ended = await Promise.race([watched, sleep(15_000).then(() => null)]);
  staying.abort();
  assert.ok(ended, 'the followed stream ended when the container stopped');
  assert.equal(ended.ended, true);
  assert.ok(ended.lines.length >= 1);
  await eventually('no logs stream left on the host', async () => (await openLogs()) === before, 10);
});

test('live stats over WebSocket; the Docker stream behind it ends when the client leaves', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 10_000 });
  const image = await pullHttpd(app, user);
  const c = await run(app, user, { imageId: image.id, memoryMb: 128 });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const [host] = await testDb().db.select().from(hosts).where(eq(hosts.id, 'host-a'));
  const openStreams = async () =>
    (await (await fetch(`${host!.streamUrl}/streams`, { headers: { authorization: `Bearer ${baseConfig.internalToken}` } })).json()) as { stats: number };
  const before = (await openStreams()).stats;

  const ws = new WebSocket(`${address.replace('http', 'ws')}/api/v1/containers/${c.id}/stats`, { headers: bearer(user.token) });
  const samples: Array<Record<string, number>> = [];
  await new Promise<void>((resolve, reject) => {
    ws.on('message', (data) => {
      samples.push(JSON.parse((data as Buffer).toString()));
      if (samples.length === 2) resolve();
    });
    ws.on('error', reject);
  });
  const sample = samples[1]!;
  for (const key of ['cpuPercent', 'memoryUsage', 'memoryLimit', 'networkRx', 'networkTx', 'blockRead', 'blockWrite', 'pids']) {
    assert.equal(typeof sample[key], 'number', key);
  }
  assert.equal(sample.memoryLimit, 128 * 1024 * 1024);
  assert.ok(sample.pids! >= 1);
  assert.equal((await openStreams()).stats, before + 1, 'one Docker stats stream open on the host');
  ws.close();
  await eventually('the stats stream to close', async () => (await openStreams()).stats === before, 10);

  const denied = new WebSocket(`${address.replace('http', 'ws')}/api/v1/containers/${c.id}/stats`);
  const status = await new Promise<number>((resolve) => denied.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
  assert.equal(status, 401);
  const other = await createUser(app);
  const foreign = new WebSocket(`${address.replace('http', 'ws')}/api/v1/containers/${c.id}/stats`, { headers: bearer(other.token) });
  const foreignMessages: string[] = [];
  foreign.on('message', (data) => foreignMessages.push((data as Buffer).toString()));
  const closeCode = await new Promise<number>((resolve) => foreign.on('close', (code) => resolve(code)));
  assert.equal(closeCode, 4404, "someone else's container: closed as a 404");
  assert.deepEqual(foreignMessages.map((m) => JSON.parse(m)), [{ error: 'Container was not found.' }], 'no sample, only the error');
  assert.equal((await openStreams()).stats, before, 'no stream was opened for them');
  await app.inject({ method: 'DELETE', url: `/api/v1/containers/${c.id}`, headers: bearer(user.token) });
});
