/**
 * The production topology, proven on `scripts/stack.sh up:cluster` (scripts/test-cluster.sh
 * runs this file): Temporal as two server nodes on PostgreSQL behind a load balancer, with TLS;
 * host-c a Docker host in a network namespace of its own, reached over TCP with mutual TLS,
 * reaching everything at the gateway address; the API reaching host workers' streams over HTTPS.
 *
 * Every request goes to the cluster's own API process, as a user's would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { readFile } from 'node:fs/promises';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { join } from 'node:path';
import { and, eq } from 'drizzle-orm';
import { hosts, images, ledgerEntries } from '../../db/schema.js';
import { dockerName } from '../../core/container-labels.js';
import { connectTemporal } from '../../core/temporal.js';
import { PULL_ACTIVITY_NAMES } from '../../contracts/pull-image.js';
import { activityAttempts } from '../support/history.js';
import { adminToken, bearer, createUser, ledgerOf, testDb, baseConfig, type TestUser } from '../support/app.js';
import { run as runContainer } from '../support/containers.js';
import { ended, startTask, statusOf, waitEnded } from '../support/dcu.js';
import { pushUniqueImage, pullRequest } from '../support/images.js';
import { dockerFor, killStackProcess, processGone, stackPid, stackStart, stateDir } from '../support/stack.js';
import { viewStats } from '../support/streams.js';
import { eventually, sleep } from '../support/wait.js';
import { API_URL, BUSYBOX_C, GATEWAY_IP, HOST_C_IP, HOST_C_LINK, HTTPD_C, REGISTRY_C, ip, remoteApp, stack } from './support.js';

const api = remoteApp();

// Against the cluster mode only: these tests kill its Temporal nodes and cut host-c's link.
if (!(await stack('status')).startsWith('mode: cluster')) {
  throw new Error('test/cluster runs against `scripts/stack.sh up:cluster` (npm run test:cluster), not the development stack');
}

/** A unique image in the stack's registry, named as host-c reaches it. */
async function uniqueImageForHostC(prefix: string, kb: number) {
  return (await pushUniqueImage(prefix, kb)).replace(/^127\.0\.0\.1:5000\//, `${REGISTRY_C}/`);
}

const chargesOf = async (userId: string, kind: 'image_charge' | 'dcu_charge' | 'container_charge') =>
  testDb().db.select().from(ledgerEntries).where(and(eq(ledgerEntries.userId, userId), eq(ledgerEntries.kind, kind)));

async function hostStatus(id: string): Promise<string | undefined> {
  const res = await api.inject({ method: 'GET', url: '/api/v1/hosts', headers: bearer(await adminToken(api)) });
  assert.equal(res.statusCode, 200, res.body);
  return res.json<{ items: Array<{ id: string; status: string }> }>().items.find((h) => h.id === id)?.status;
}

async function pullStatus(user: TestUser, pullId: string) {
  const res = await api.inject({ method: 'GET', url: `/api/v1/images/pulls/${pullId}`, headers: bearer(user.token) });
  assert.equal(res.statusCode, 200, res.body);
  return res.json<{ state: string; image?: { id: string; charged: number }; error?: { message: string } }>();
}

async function pullEnded(user: TestUser, pullId: string, seconds = 300) {
  return eventually(`pull ${pullId} to end`, async () => {
    const status = await pullStatus(user, pullId);
    return status.state !== 'running' && status;
  }, seconds);
}

/**
 * The Temporal server nodes with live members in the cluster (heartbeat in the last 20 s), each
 * with the latest start of its services' sessions (node N's ports start at 7300 + (N-1)*100).
 */
async function liveTemporalNodes(): Promise<Map<number, Date>> {
  const out = await stack('temporal-members');
  const nodes = new Map<number, Date>();
  for (const line of out.trim().split('\n').filter(Boolean)) {
    const [, address, sessionStart] = line.split(' ');
    const node = 1 + Math.floor((Number(address!.split(':').at(-1)) - 7300) / 100);
    const started = new Date(sessionStart!);
    if (!nodes.has(node) || nodes.get(node)! < started) nodes.set(node, started);
  }
  return nodes;
}

test('the topology: host-c is reached over TCP with TLS, streams over HTTPS, Temporal through its load balancer with TLS', async () => {
  const [hostC] = await testDb().db.select().from(hosts).where(eq(hosts.id, 'host-c'));
  assert.ok(hostC, 'host-c registered');
  assert.equal(hostC.dockerEndpoint, `tcp://${HOST_C_IP}:2376`);
  assert.equal(hostC.publishIp, HOST_C_IP);
  assert.match(hostC.streamUrl ?? '', new RegExp(`^https://${HOST_C_IP.replaceAll('.', '\\.')}:\\d+$`));
  const [hostA] = await testDb().db.select().from(hosts).where(eq(hosts.id, 'host-a'));
  assert.match(hostA!.streamUrl ?? '', /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.match(baseConfig.temporal.address, /:7233$/);
  assert.ok(baseConfig.temporal.tls, 'the API connects to Temporal with TLS');
  assert.deepEqual([...(await liveTemporalNodes()).keys()].sort(), [1, 2], 'both Temporal nodes are members');
  // The frontends require a client certificate (mutual TLS), through the load balancer too.
  const withCert = await connectTemporal(baseConfig.temporal);
  await withCert.connection.close();
  await assert.rejects(
    connectTemporal({ ...baseConfig.temporal, tls: { ...baseConfig.temporal.tls, client: undefined } }),
    'without a client certificate the cluster refuses the connection',
  );

  // Docker on host-c: TLS with a client certificate, nothing in plain TCP.
  const plain = await fetch(`http://${HOST_C_IP}:2376/version`).then((r) => r.status, (e: Error) => e.message);
  assert.notEqual(plain, 200, 'plain HTTP to the Docker port gets nothing');
  const tls = join(stateDir, 'cluster', 'tls');
  const [ca, cert, key] = await Promise.all(['ca.pem', 'docker-client.pem', 'docker-client-key.pem'].map((f) => readFile(join(tls, f))));
  const version = (options: RequestOptions) => new Promise<number | string>((resolve) => {
    const req = httpsRequest({ host: HOST_C_IP, port: 2376, path: '/version', ca, servername: HOST_C_IP, ...options }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (error) => resolve(error.message));
    req.end();
  });
  assert.equal(await version({ cert, key }), 200, 'with the stack CA and a client certificate: Docker answers');
  assert.notEqual(await version({}), 200, 'the same CA without a client certificate is refused');
});

test('host-c: pull and bill, a container whose port answers on host-c’s address, its logs and stats through the API, a DCU and its download', async (t) => {
  const user = await createUser(api, { balance: 1_000_000 });

  const pulled = await pullRequest(api, user.token, { image: HTTPD_C, host: 'host-c' });
  assert.equal(pulled.statusCode, 201, pulled.body);
  const image = pulled.json<{ id: string; charged: number }>();
  const [record] = await testDb().db.select().from(images).where(eq(images.id, image.id));
  assert.equal(record!.hostId, 'host-c');
  assert.ok(image.charged > 0);
  assert.deepEqual((await chargesOf(user.id, 'image_charge')).map((e) => e.amount), [-image.charged], 'charged once, the amount the pull answered');
  assert.ok(await dockerFor('host-c').getImage(HTTPD_C).inspect(), 'the image is on host-c’s daemon');

  const c = await runContainer(api, user, {
    imageId: image.id,
    memoryMb: 64,
    cmd: ['sh', '-c', 'echo hello-from-host-c; exec httpd -f -v -p 80 -h /www'],
  });
  t.after(() => api.inject({ method: 'DELETE', url: `/api/v1/containers/${c.id}`, headers: bearer(user.token) }));
  assert.equal(c.host, 'host-c');
  assert.equal(c.hostIp, HOST_C_IP);
  const page = await eventually('the container’s port on host-c', () =>
    fetch(`http://${HOST_C_IP}:${c.hostPort}/`).then((r) => r.text(), () => undefined));
  assert.match(page, /Berth httpd/);
  assert.ok(await dockerFor('host-c').getContainer(dockerName(c.id)).inspect(), 'the container is on host-c');

  // Logs and stats come from host-c's worker over HTTPS.
  const logs = await eventually('the container’s logs', async () => {
    const res = await api.inject({ method: 'GET', url: `/api/v1/containers/${c.id}/logs?tail=50`, headers: bearer(user.token) });
    assert.equal(res.statusCode, 200, res.body);
    return /hello-from-host-c/.test(res.body) && res.body;
  });
  assert.match(logs, /hello-from-host-c/);
  const viewer = viewStats(API_URL, user, c.id);
  const sample = await viewer.first;
  viewer.ws.close();
  assert.ok(sample && typeof sample === 'object', `a stats sample: ${JSON.stringify(sample)}`);

  // A DCU of an image on host-c, and its archive downloaded from where the API points.
  const taskId = await startTask(api, user, BUSYBOX_C, 'host-c');
  const task = await waitEnded(api, user.token, taskId);
  assert.equal(task.state, 'completed', JSON.stringify(task));
  assert.equal((await chargesOf(user.id, 'dcu_charge')).length, 1, 'the DCU charged once');
  const download = await api.inject({ method: 'GET', url: `/api/dcu/download/${taskId}`, headers: bearer(user.token) });
  assert.equal(download.statusCode, 302, download.body);
  const archive = Buffer.from(await (await fetch(String(download.headers.location))).arrayBuffer());
  assert.equal(archive.length, task.compressed_bytes);
  assert.equal(createHash('sha256').update(archive).digest('hex'), task.sha256);
  assert.equal(archive[0], 0x1f, 'gzip');
});

test('a Temporal node killed in the middle of a DCU and of a pull: both complete once, charged once; the node rejoins', { timeout: 600_000 }, async (t) => {
  const user = await createUser(api, { balance: 1_000_000 });
  // Random bytes, so that compressing and pulling take seconds, not milliseconds.
  const [dcuImage, pullImage] = await Promise.all([uniqueImageForHostC('cluster-dcu', 80_000), uniqueImageForHostC('cluster-pull', 100_000)]);
  // The DCU's image is on host-c first, so the task goes on to compress and upload.
  assert.equal((await pullRequest(api, user.token, { image: dcuImage, host: 'host-c' })).statusCode, 201);

  const taskId = await startTask(api, user, dcuImage, 'host-c');
  await eventually('the DCU to be under way', async () => (await statusOf(api, user.token, taskId)).progress > 0, 60);
  const started = await pullRequest(api, user.token, { image: pullImage, host: 'host-c' }, false);
  assert.equal(started.statusCode, 202, started.body);
  const { pullId } = started.json<{ pullId: string }>();

  // In the middle: neither has ended when the node goes.
  const [before, pullBefore] = await Promise.all([statusOf(api, user.token, taskId), pullStatus(user, pullId)]);
  assert.ok(!ended(before), `the DCU is under way: ${JSON.stringify(before)}`);
  assert.equal(pullBefore.state, 'running');
  const killedAt = Date.now();
  await killStackProcess('temporal-node1');
  t.after(() => stackStart('temporal-node1'));

  const [task, pull] = await Promise.all([waitEnded(api, user.token, taskId, { limitMs: 480_000, pollMs: 250 }), pullEnded(user, pullId, 480)]);
  t.diagnostic(`after node1 was killed: the DCU ended in ${((Date.now() - killedAt) / 1000).toFixed(1)} s at most, the pull as well`);
  assert.equal(task.state, 'completed', JSON.stringify(task));
  assert.equal(pull.state, 'completed', JSON.stringify(pull));
  assert.equal((await chargesOf(user.id, 'dcu_charge')).length, 1, 'the DCU charged once');
  const imageCharges = await chargesOf(user.id, 'image_charge');
  assert.equal(imageCharges.length, 2, 'each pull charged once');
  assert.equal(new Set(imageCharges.map((e) => e.idempotencyKey)).size, 2);
  assert.ok(await dockerFor('host-c').getImage(pullImage).inspect());

  await stackStart('temporal-node1');
  // Rejoined: node1's services hold sessions begun after the kill (the killed ones' rows stay
  // live for a while), beside node2's.
  const nodes = await eventually('node1 to rejoin the cluster', async () => {
    const live = await liveTemporalNodes();
    return live.has(2) && (live.get(1)?.getTime() ?? 0) >= Math.floor(killedAt / 1000) * 1000 && live;
  }, 120);
  assert.deepEqual([...nodes.keys()].sort(), [1, 2]);
});

test('host-c cut off for longer than BERTH_HOST_STALE_AFTER: down, pulls naming it refused, host-a unaffected; a container killed meanwhile shows exited; no charge lost or doubled', { timeout: 600_000 }, async (t) => {
  const user = await createUser(api, { balance: 1_000_000 });
  const busybox = await pullRequest(api, user.token, { image: BUSYBOX_C, host: 'host-c' });
  assert.equal(busybox.statusCode, 201, busybox.body);
  const c = await runContainer(api, user, { imageId: busybox.json<{ id: string }>().id, containerPort: 8080, cmd: ['sleep', '3600'] });
  t.after(() => api.inject({ method: 'DELETE', url: `/api/v1/containers/${c.id}`, headers: bearer(user.token) }));
  const ledgerBefore = await ledgerOf(user.id);

  await ip('link', 'set', HOST_C_LINK, 'down');
  t.after(() => ip('link', 'set', HOST_C_LINK, 'up'));
  const cutAt = Date.now();
  await eventually('host-c to show down', async () => (await hostStatus('host-c')) === 'down', 120);
  const seenDownAt = Date.now();
  const staleAfterMs = baseConfig.hosts.staleAfterMs;
  // Down because its heartbeats stopped at the cut (the last one may precede it by an interval):
  // none got through after it, and the last is older than the stale time.
  const [row] = await testDb().db.select().from(hosts).where(eq(hosts.id, 'host-c'));
  const lastHeartbeatAt = row!.lastHeartbeatAt;
  assert.ok(lastHeartbeatAt.getTime() <= cutAt + 1000, `no heartbeat after the cut (last ${lastHeartbeatAt.toISOString()})`);
  assert.ok(lastHeartbeatAt.getTime() >= cutAt - 2 * baseConfig.hosts.heartbeatIntervalMs - 1000, 'heartbeats ran until the cut');
  assert.ok(seenDownAt - lastHeartbeatAt.getTime() >= staleAfterMs, 'down once its heartbeats are stale, not before');

  // The container dies while its host is cut off (the daemon's local socket is on this machine).
  await dockerFor('host-c').getContainer(dockerName(c.id)).kill();

  const refused = await pullRequest(api, user.token, { image: HTTPD_C, host: 'host-c' });
  assert.equal(refused.statusCode, 422, refused.body);
  const onA = await pullRequest(api, user.token, { image: '127.0.0.1:5000/library/httpd:latest', host: 'host-a' });
  assert.equal(onA.statusCode, 201, `a pull on host-a completes during the cut: ${onA.body}`);
  // Kept down past the stale time again, so that anything waiting on host-c would show.
  await sleep(Math.max(0, cutAt + 2 * staleAfterMs - Date.now()));

  await ip('link', 'set', HOST_C_LINK, 'up');
  await eventually('host-c to show up again', async () => (await hostStatus('host-c')) === 'up', 120);
  const exited = await eventually('the container killed during the cut to show exited', async () => {
    const res = await api.inject({ method: 'GET', url: `/api/v1/containers/${c.id}`, headers: bearer(user.token) });
    return res.json<{ state: string }>().state === 'exited' && res.json<{ state: string }>();
  }, 120);
  assert.equal(exited.state, 'exited');

  const ledgerAfter = await ledgerOf(user.id);
  const keys = ledgerAfter.map((e) => e.idempotencyKey);
  assert.equal(new Set(keys).size, keys.length, 'no entry twice');
  for (const entry of ledgerBefore) assert.ok(keys.includes(entry.idempotencyKey), `kept: ${entry.idempotencyKey}`);
  const added = ledgerAfter.filter((e) => !ledgerBefore.some((b) => b.id === e.id));
  assert.deepEqual(added.map((e) => e.kind), ['image_charge'], 'only the pull on host-a was charged meanwhile');
});

test('SIGTERM to host-c’s worker in the middle of a pull: the pull completes once, charged once', { timeout: 600_000 }, async (t) => {
  const user = await createUser(api, { balance: 1_000_000 });
  const reference = await uniqueImageForHostC('cluster-sigterm', 60_000);
  const started = await pullRequest(api, user.token, { image: reference, host: 'host-c' }, false);
  assert.equal(started.statusCode, 202, started.body);
  const { pullId } = started.json<{ pullId: string }>();
  // In the middle: the pull's activity is running on host-c (it reports progress).
  await eventually('the pull to report progress', async () => (await pullStatus(user, pullId)).state === 'running' && (await pullStatus(user, pullId)), 60);

  const pid = await stackPid('worker-host-c');
  process.kill(pid, 'SIGTERM');
  t.after(() => stackStart('worker-host-c'));
  await processGone(pid);
  await stackStart('worker-host-c');

  const pull = await pullEnded(user, pullId, 300);
  assert.equal(pull.state, 'completed', JSON.stringify(pull));
  const temporal = await connectTemporal(baseConfig.temporal);
  const attempts = await activityAttempts(temporal, pullId, PULL_ACTIVITY_NAMES[0]!);
  await temporal.connection.close();
  assert.ok(attempts.length >= 1);
  t.diagnostic(attempts.length === 1
    ? 'the Docker pull finished within the worker’s shutdown grace time (one attempt)'
    : `the Docker pull was retried once the worker was back (attempts ${attempts.join(', ')})`);
  const charges = await chargesOf(user.id, 'image_charge');
  assert.equal(charges.length, 1, 'charged once');
  assert.equal(charges[0]!.amount, -pull.image!.charged);
  assert.ok(await dockerFor('host-c').getImage(reference).inspect(), 'the image is on host-c');
});

test('the gateway is the only way in: host-c reaches the services at the gateway address and never this machine’s loopback', async () => {
  const { stdout } = await promisify(execFile)('ip', ['netns', 'exec', 'berth-host-c', 'ip', 'route']);
  assert.doesNotMatch(stdout, /default/, 'host-c has no default route: only its link to the gateway');
  assert.match(stdout, new RegExp(GATEWAY_IP.replace(/\.\d+$/, '').replaceAll('.', '\\.')));
});
