/**
 * Bounded streams (issue 11, item 6): one Docker stats stream per container whatever the
 * number of viewers, a per-user limit on log follows and stats sockets, and idle streams
 * ending after a timeout. Counts are read from the host worker's /streams and, for the
 * daemon side, from the host worker's open connections to its Docker socket (ss -xp).
 * Both count for the whole host, so these tests run in the serial pass (scripts/test.sh),
 * alone: another test's log read, stats socket or Docker call on host-a would change them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { eq } from 'drizzle-orm';
import WebSocket from 'ws';
import { hosts } from '../../../db/schema.js';
import { connectTemporal } from '../../../core/temporal.js';
import { CLOSE_IDLE, CLOSE_TOO_MANY_STREAMS } from '../../../api/routes/containers/streams.js';
import { baseConfig, bearer, buildTestApp, createUser, testDb, type TestUser } from '../../support/app.js';
import { pullHttpd } from '../../support/containers.js';
import { dockerSocket, stackPid } from '../../support/stack.js';
import { eventually, sleep } from '../../support/wait.js';
import type { App } from '../../../api/app.js';

const temporal = await connectTemporal(baseConfig.temporal);
test.after(() => temporal.connection.close());
const HOST = 'host-a';

type StreamCounts = { logs: number; stats: number; viewers: { logs: number; stats: number } };
async function hostStreams(): Promise<StreamCounts> {
  const [host] = await testDb().db.select().from(hosts).where(eq(hosts.id, HOST));
  const res = await fetch(`${host!.streamUrl}/streams`, { headers: { authorization: `Bearer ${baseConfig.internalToken}` } });
  return (await res.json()) as StreamCounts;
}

/**
 * The host worker's open connections to its Docker daemon: its unix sockets whose peer is
 * one the daemon accepted on the host's docker.sock.
 */
async function daemonConnections(): Promise<Set<string>> {
  const pid = await stackPid(`worker-${HOST}`);
  const pids = new Set([pid]);
  // The pid file may name a wrapper: count its descendants too.
  for (let grew = true; grew; ) {
    grew = false;
    const { stdout } = await promisify(execFile)('ps', ['-e', '-o', 'pid=,ppid=']);
    for (const line of stdout.trim().split('\n')) {
      const [child, parent] = line.trim().split(/\s+/).map(Number) as [number, number];
      if (pids.has(parent) && !pids.has(child)) {
        pids.add(child);
        grew = true;
      }
    }
  }
  const { stdout } = await promisify(execFile)('ss', ['-xpn'], { maxBuffer: 64 * 1024 * 1024 });
  const rows = stdout
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/));
  const socketPath = dockerSocket(HOST);
  // u_str ESTAB 0 0 <local path|*> <inode> <peer|*> <peer inode> users:((...))
  const daemonSide = new Set(rows.filter((r) => r[4] === socketPath).map((r) => r[5]));
  const ours = (r: string[]) => [...r.slice(8).join(' ').matchAll(/pid=(\d+)/g)].some((m) => pids.has(Number(m[1])));
  return new Set(rows.filter((r) => daemonSide.has(r[7]) && ours(r)).map((r) => r[5]!));
}

const minus = <T>(a: Set<T>, b: Set<T>) => new Set([...a].filter((x) => !b.has(x)));

/** A running container of the user's on host-a (removed after the test); `cmd` overrides its command. */
async function runContainer(t: { after: (fn: () => unknown) => void }, app: App, user: TestUser, cmd?: string[]) {
  const image = await pullHttpd(app, user, HOST);
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/containers?wait=true',
    headers: bearer(user.token),
    payload: { imageId: image.id, memoryMb: 64, ...(cmd ? { cmd } : {}) },
  });
  assert.equal(res.statusCode, 201, res.body);
  const { id } = res.json<{ id: string }>();
  t.after(() => temporal.workflow.getHandle(`container-${id}`).executeUpdate('remove').catch(() => undefined));
  return id;
}

/** Writes a line every half second and leaves on SIGTERM. */
const TICKING = ['sh', '-c', 'trap "exit 0" TERM; i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.5; done'];

interface StatsViewer {
  ws: WebSocket;
  samples: Array<Record<string, unknown>>;
  /** Resolves with the first message. */
  first: Promise<Record<string, unknown>>;
  closed: Promise<{ code: number; reason: string }>;
}

function viewStats(address: string, user: TestUser, id: string): StatsViewer {
  const ws = new WebSocket(`${address.replace('http', 'ws')}/api/v1/containers/${id}/stats`, { headers: bearer(user.token) });
  const samples: Array<Record<string, unknown>> = [];
  const first = new Promise<Record<string, unknown>>((resolve, reject) => {
    ws.on('message', (data) => {
      samples.push(JSON.parse((data as Buffer).toString()));
      resolve(samples[0]!);
    });
    ws.on('error', reject);
  });
  first.catch(() => undefined);
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  return { ws, samples, first, closed };
}

/** A followed log, open once its first line arrived. */
async function follow(address: string, user: TestUser, id: string) {
  const abort = new AbortController();
  const res = await fetch(`${address}/api/v1/containers/${id}/logs?follow=true&tail=0`, { headers: bearer(user.token), signal: abort.signal });
  if (res.status !== 200) return { res, abort, close: () => abort.abort() };
  const reader = res.body!.getReader();
  await reader.read();
  return { res, abort, close: () => abort.abort() };
}

test('stats: 20 viewers of one container share one Docker stats stream, closed when the last leaves', async (t) => {
  const app = await buildTestApp(t, { streams: { maxPerUser: 20, idleTimeoutMs: 60_000 } });
  const user = await createUser(app, { balance: 10_000 });
  const connectionsAtStart = await daemonConnections();
  const id = await runContainer(t, app, user);
  const address = await app.listen({ host: '127.0.0.1', port: 0 });

  const before = await hostStreams();
  // The keep-alive connections of the activities that ran the container go idle and close (an
  // idle socket of Node's agent closes after 5 s): wait until every connection the host worker
  // opened to its daemon since the test began has closed.
  await eventually('the host worker’s connections to its daemon opened by this test’s activities to close', async () =>
    minus(await daemonConnections(), connectionsAtStart).size === 0, 30);
  const connectionsBefore = await daemonConnections();
  const viewers = Array.from({ length: 20 }, () => viewStats(address, user, id));
  const firsts = await Promise.all(viewers.map((v) => v.first));
  for (const sample of firsts) assert.equal(typeof sample.memoryUsage, 'number', JSON.stringify(sample));
  await Promise.all(viewers.map((v) => eventually('a second sample for every viewer', async () => v.samples.length >= 2, 15)));

  const during = await hostStreams();
  assert.equal(during.stats - before.stats, 1, 'one Docker stats stream for 20 viewers');
  assert.equal(during.viewers.stats - before.viewers.stats, 20, '20 viewers reading it');
  const connectionsDuring = await daemonConnections();

  // All but one leave: the shared stream stays for the last.
  for (const v of viewers.slice(1)) v.ws.close();
  await eventually('19 viewers gone', async () => (await hostStreams()).viewers.stats === before.viewers.stats + 1, 10);
  const samplesBefore = viewers[0]!.samples.length;
  await eventually('samples still flowing to the last viewer', async () => viewers[0]!.samples.length > samplesBefore + 1, 10);
  assert.equal((await hostStreams()).stats, before.stats + 1);

  viewers[0]!.ws.close();
  await eventually('the Docker stats stream closed with its last viewer', async () => {
    const now = await hostStreams();
    return now.stats === before.stats && now.viewers.stats === before.viewers.stats;
  }, 10);
  // Daemon side: the host worker's connections to its docker.sock are its event stream, idle
  // keep-alive connections, those of activities running meanwhile (other tests), and the stats
  // streams. Those of the stats streams were open with the viewers and closed when they left
  // (one may have been an idle keep-alive connection before).
  const connectionsAfter = await daemonConnections();
  const statsConnections = minus(connectionsDuring, connectionsAfter);
  t.diagnostic(
    `host worker connections to the daemon: ${connectionsBefore.size} before, ${connectionsDuring.size} with 20 stats ` +
      `viewers of one container, ${connectionsAfter.size} after they left; closed when they left: ${statsConnections.size}`,
  );
  assert.ok(statsConnections.size >= 1 && statsConnections.size <= 2, `${statsConnections.size} daemon connections for 20 viewers`);
});

test('at most 10 log follows and stats sockets per user: the 11th is a 429 or close code 4429; leaving frees them', async (t) => {
  const max = 10;
  const app = await buildTestApp(t, { streams: { maxPerUser: max, idleTimeoutMs: 60_000 } });
  const user = await createUser(app, { balance: 10_000 });
  const other = await createUser(app, { balance: 10_000 });
  const id = await runContainer(t, app, user, TICKING);
  const otherId = await runContainer(t, app, other, TICKING);
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const before = await hostStreams();

  async function fill() {
    const follows = await Promise.all(Array.from({ length: max / 2 }, () => follow(address, user, id)));
    for (const f of follows) assert.equal(f.res.status, 200);
    const sockets = Array.from({ length: max / 2 }, () => viewStats(address, user, id));
    await Promise.all(sockets.map((s) => s.first));
    return { follows, sockets };
  }
  let held = await fill();
  const full = await hostStreams();
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
  const still = await hostStreams();
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
    const now = await hostStreams();
    return now.logs === before.logs && now.viewers.stats === before.viewers.stats;
  }, 15);
  held = await fill();
  const again = await fetch(`${address}/api/v1/containers/${id}/logs?follow=true&tail=0`, { headers: bearer(user.token) });
  assert.equal(again.status, 429, 'and the eleventh is refused again');
  await again.body?.cancel();

  // A follow that ends because the container stops frees its slot too.
  assert.equal((await app.inject({ method: 'POST', url: `/api/v1/containers/${id}/stop`, headers: bearer(user.token) })).statusCode, 200);
  await eventually('the follows to end with the container', async () => (await hostStreams()).logs === before.logs, 20);
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
  const id = await runContainer(t, app, user);
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const before = await hostStreams();

  // A followed log with nothing to send ends (cleanly) after the timeout; its Docker stream with it.
  let started = Date.now();
  const res = await fetch(`${address}/api/v1/containers/${id}/logs?follow=true&tail=0`, { headers: bearer(user.token) });
  assert.equal(res.status, 200);
  assert.ok(Date.now() - started < idleTimeoutMs / 2, 'the headers come at once, not with the first line');
  assert.equal(await res.text(), '');
  let elapsed = Date.now() - started;
  assert.ok(elapsed >= idleTimeoutMs - 100 && elapsed < idleTimeoutMs + 5000, `ended after ${elapsed} ms`);
  await eventually('its Docker logs stream to close', async () => (await hostStreams()).logs === before.logs, 10);

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
  await eventually('its Docker stats stream to close', async () => (await hostStreams()).stats === before.stats, 10);

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
  await eventually('no stats stream left', async () => (await hostStreams()).stats === before.stats, 10);
  const next = await follow(address, user, id);
  assert.equal(next.res.status, 200, 'the slot is free once the idle socket closed');
  next.close();
});
