/**
 * Container logs and live stats as a client reads them: a followed log, a stats socket, the
 * per-user bound on both, idle streams ending. Each test counts the Docker streams host-a's
 * worker holds for its own container (GET /streams?container=<id>), so these run in the
 * concurrent pass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { connectTemporal } from '../../core/temporal.js';
import { CLOSE_IDLE, CLOSE_TOO_MANY_STREAMS } from '../../api/routes/containers/streams.js';
import { baseConfig, bearer, buildTestApp, createUser } from '../support/app.js';
import { op, pullHttpd, run } from '../support/containers.js';
import { TICKING, containerStreams, follow, runStreaming, viewStats } from '../support/streams.js';
import { eventually, sleep } from '../support/wait.js';

const temporal = await connectTemporal(baseConfig.temporal);
test.after(() => temporal.connection.close());
const HOST = 'host-a';

test('logs ?follow=true: lines arrive as they are written, until the client leaves or the container stops', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 10_000 });
  const image = await pullHttpd(app, user);
  // Leaves on SIGTERM, so a stop is quick.
  const c = await run(app, user, { imageId: image.id, cmd: ['sh', '-c', 'trap "exit 0" TERM; i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done'] });
  t.after(() => temporal.workflow.getHandle(`container-${c.id}`).executeUpdate('remove').catch(() => undefined));
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const openLogs = async () => (await containerStreams(HOST, c.id)).logs;
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
  assert.equal(await openLogs(), before + 1, 'one Docker logs stream open for it on the host');
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
  const openStreams = () => containerStreams(HOST, c.id);
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
test('at most 10 log follows and stats sockets per user: the 11th is a 429 or close code 4429; leaving frees them', async (t) => {
  const max = 10;
  const app = await buildTestApp(t, { streams: { maxPerUser: max, idleTimeoutMs: 60_000 } });
  const user = await createUser(app, { balance: 10_000 });
  const other = await createUser(app, { balance: 10_000 });
  const id = await runStreaming(t, temporal, app, user, HOST, TICKING);
  const otherId = await runStreaming(t, temporal, app, other, HOST, TICKING);
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const before = await containerStreams(HOST, id);

  async function fill() {
    const follows = await Promise.all(Array.from({ length: max / 2 }, () => follow(address, user, id)));
    for (const f of follows) assert.equal(f.res.status, 200);
    const sockets = Array.from({ length: max / 2 }, () => viewStats(address, user, id));
    await Promise.all(sockets.map((s) => s.first));
    return { follows, sockets };
  }
  let held = await fill();
  const full = await containerStreams(HOST, id);
  assert.equal(full.logs - before.logs, max / 2);
  assert.equal(full.viewers.stats - before.viewers.stats, max / 2);

  // The 11th follow: a 429 problem, nothing opened on the host.
  const refused = await fetch(`${address}/api/v1/containers/${id}/logs?follow=true&tail=0`, { headers: bearer(user.token) });
  assert.equal(refused.status, 429);
  assert.match(refused.headers.get('content-type') ?? '', /application\/problem\+json/);
  const problem = (await refused.json()) as { type: string; status: number; detail: string };
  assert.equal(problem.status, 429);
  assert.match(problem.detail, /At most 10 log follows and stats sockets/);

  // The 11th socket: closed with 4429 and a reason, no sample, no upstream.
  const eleventh = viewStats(address, user, id);
  const closed = await eleventh.closed;
  assert.equal(closed.code, CLOSE_TOO_MANY_STREAMS);
  assert.match(closed.reason, /At most 10/);
  assert.ok(eleventh.samples.every((m) => 'error' in m && !('memoryUsage' in m)), JSON.stringify(eleventh.samples));
  const still = await containerStreams(HOST, id);
  assert.equal(still.logs, full.logs, 'no Docker logs stream for the refused follow');
  assert.equal(still.viewers.stats, full.viewers.stats, 'no upstream for the refused socket');

  // A download and a plain (unfollowed) read are not long-lived: still allowed.
  assert.equal((await app.inject({ method: 'GET', url: `/api/v1/containers/${id}/logs?tail=1`, headers: bearer(user.token) })).statusCode, 200);
  assert.equal((await app.inject({ method: 'GET', url: `/api/v1/containers/${id}/logs/download`, headers: bearer(user.token) })).statusCode, 200);
  // The limit is the user's: someone else streams meanwhile.
  const theirs = await follow(address, other, otherId);
  assert.equal(theirs.res.status, 200);
  theirs.close();

  // Everyone leaves; once the streams have ended, the user gets all ten again.
  for (const f of held.follows) f.close();
  for (const s of held.sockets) s.ws.close();
  await Promise.all(held.sockets.map((s) => s.closed));
  await eventually('the streams to end on the host', async () => {
    const now = await containerStreams(HOST, id);
    return now.logs === before.logs && now.viewers.stats === before.viewers.stats;
  }, 15);
  held = await fill();
  const again = await fetch(`${address}/api/v1/containers/${id}/logs?follow=true&tail=0`, { headers: bearer(user.token) });
  assert.equal(again.status, 429, 'and the eleventh is refused again');
  await again.body?.cancel();

  // A follow that ends because the container stops frees its slot too.
  assert.equal((await app.inject({ method: 'POST', url: `/api/v1/containers/${id}/stop`, headers: bearer(user.token) })).statusCode, 200);
  await eventually('the follows to end with the container', async () => (await containerStreams(HOST, id)).logs === before.logs, 20);
  for (const s of held.sockets) s.ws.close();
  await Promise.all(held.sockets.map((s) => s.closed));
  assert.equal((await app.inject({ method: 'POST', url: `/api/v1/containers/${id}/start`, headers: bearer(user.token) })).statusCode, 200);
  const afterStop = await eventually('follows admitted again', async () => {
    const f = await follow(address, user, id);
    return f.res.status === 200 ? f : (f.close(), false);
  }, 15);
  afterStop.close();
});

test('idle streams end after the timeout: a silent follow ends, a stats socket whose client says nothing is closed (4408)', async (t) => {
  const idleTimeoutMs = 2000;
  const app = await buildTestApp(t, { streams: { maxPerUser: 1, idleTimeoutMs } });
  const user = await createUser(app, { balance: 10_000 });
  // httpd writes nothing to its logs while no one asks it anything.
  const id = await runStreaming(t, temporal, app, user, HOST);
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const before = await containerStreams(HOST, id);

  // A followed log with nothing to send ends (cleanly) after the timeout; its Docker stream with it.
  let started = Date.now();
  const res = await fetch(`${address}/api/v1/containers/${id}/logs?follow=true&tail=0`, { headers: bearer(user.token) });
  assert.equal(res.status, 200);
  assert.ok(Date.now() - started < idleTimeoutMs / 2, 'the headers come at once, not with the first line');
  assert.equal(await res.text(), '');
  let elapsed = Date.now() - started;
  assert.ok(elapsed >= idleTimeoutMs - 100 && elapsed < idleTimeoutMs + 5000, `ended after ${elapsed} ms`);
  await eventually('its Docker logs stream to close', async () => (await containerStreams(HOST, id)).logs === before.logs, 10);

  // The slot (the user's only one) is free again: a stats socket is admitted. Samples keep
  // arriving, but its client sends nothing: closed after the timeout.
  started = Date.now();
  const silent = viewStats(address, user, id);
  await silent.first;
  const closed = await silent.closed;
  elapsed = Date.now() - started;
  assert.equal(closed.code, CLOSE_IDLE);
  assert.match(closed.reason, /idle: the client sent nothing/);
  assert.ok(elapsed >= idleTimeoutMs - 100 && elapsed < idleTimeoutMs + 5000, `closed after ${elapsed} ms`);
  assert.ok(silent.samples.length >= 1 && silent.samples.every((s) => typeof s.memoryUsage === 'number'));
  await eventually('its Docker stats stream to close', async () => (await containerStreams(HOST, id)).stats === before.stats, 10);

  // A client that sends something now and then keeps its socket well past the timeout.
  const chatty = viewStats(address, user, id);
  await chatty.first;
  const keepalive = setInterval(() => chatty.ws.send('keepalive'), idleTimeoutMs / 4);
  await sleep(idleTimeoutMs * 2.5);
  assert.equal(chatty.ws.readyState, WebSocket.OPEN, 'a client that speaks is not idle');
  const count = chatty.samples.length;
  assert.ok(count >= 3, `${count} samples`);
  clearInterval(keepalive);
  const chattyClosed = await chatty.closed;
  assert.equal(chattyClosed.code, CLOSE_IDLE, 'and once it stops speaking, it is idle');
  await eventually('no stats stream left', async () => (await containerStreams(HOST, id)).stats === before.stats, 10);
  const next = await follow(address, user, id);
  assert.equal(next.res.status, 200, 'the slot is free once the idle socket closed');
  next.close();
});
