import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { eq } from 'drizzle-orm';
import { hosts } from '../../db/schema.js';
import { connectTemporal } from '../../core/temporal.js';
import { LABEL_ID, dockerName } from '../../core/container-labels.js';
import { adminToken, balanceOf, baseConfig, bearer, buildTestApp, createUser, testDb } from '../support/app.js';
import { op, pullHttpd, rowOf, run } from '../support/containers.js';
import { TEMPORAL_CLI, dockerFor } from '../support/stack.js';
import { containerPricePerPeriod } from '../../billing/prices.js';
import { closedStatus } from '../support/history.js';
import { eventually } from '../support/wait.js';

const temporal = await connectTemporal(baseConfig.temporal);
test.after(() => temporal.connection.close());

test('run: the container runs on the image’s host with its port, limits and labels; remove frees it all', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 10_000 });
  const image = await pullHttpd(app, user, 'host-b');
  const c = await run(app, user, { imageId: image.id, name: 'web', memoryMb: 64, cpus: 0.5, env: { GREETING: 'hi' } });
  assert.equal(c.state, 'running');
  assert.equal(c.host, 'host-b');
  assert.equal(c.containerPort, 80, 'the image’s first exposed port');
  assert.ok(c.hostPort >= baseConfig.containers.portRange.from && c.hostPort <= baseConfig.containers.portRange.to);

  const info = await dockerFor('host-b').getContainer(dockerName(c.id)).inspect();
  assert.equal(info.State.Running, true);
  assert.equal(info.HostConfig.Memory, 64 * 1024 * 1024);
  assert.equal(info.HostConfig.NanoCpus, 500_000_000);
  assert.equal(info.Config.Labels[LABEL_ID], c.id);
  assert.ok(info.Config.Env.includes('GREETING=hi'));
  assert.equal(c.hostIp, (await testDb().db.select().from(hosts).where(eq(hosts.id, 'host-b')))[0]!.publishIp);
  const page = await fetch(`http://${c.hostIp}:${c.hostPort}/`);
  assert.match(await page.text(), /Berth httpd/);
  assert.equal((await rowOf(c.id)).state, 'running');
  // Priced by what it asked for (0.5 CPU, 64 MB), fixed on the record.
  const price = containerPricePerPeriod({ cpuMillis: 500, memoryMb: 64 }, baseConfig.containers.prices);
  assert.equal(c.pricePerPeriod, price);
  assert.equal((await rowOf(c.id)).pricePerPeriod, price);
  assert.equal(c.charged, price, 'the first period is charged');
  // The next period is due a whole number of periods after the run started, within one period from now.
  const period = baseConfig.containers.billingPeriodMs;
  const nextAt = new Date(c.nextChargeAt).getTime();
  assert.equal((nextAt - new Date(c.startedAt).getTime()) % period, 0, `${c.nextChargeAt} after ${c.startedAt}`);
  assert.ok(nextAt > Date.now() - 5_000 && nextAt <= Date.now() + period, c.nextChargeAt);
  const hostsNow = await app.inject({ method: 'GET', url: '/api/v1/hosts', headers: bearer(await adminToken(app)) });
  assert.ok(hostsNow.json().items.find((h: { id: string }) => h.id === 'host-b').containers >= 1, 'counted on its host');

  // Someone else's container is a 404 on every route, and nothing happens to it.
  const other = await createUser(app);
  for (const [method, url] of [
    ['GET', `/api/v1/containers/${c.id}`],
    ['POST', `/api/v1/containers/${c.id}/start`],
    ['POST', `/api/v1/containers/${c.id}/stop`],
    ['POST', `/api/v1/containers/${c.id}/restart`],
    ['DELETE', `/api/v1/containers/${c.id}`],
    ['GET', `/api/v1/containers/${c.id}/logs`],
    ['GET', `/api/v1/containers/${c.id}/logs/download`],
  ] as const) {
    const res = await app.inject({ method, url, headers: bearer(other.token) });
    assert.equal(res.statusCode, 404, `${method} ${url}: ${res.body}`);
  }
  const listed = await app.inject({ method: 'GET', url: '/api/v1/containers', headers: bearer(other.token) });
  assert.deepEqual(listed.json().items, [], 'not in their list either');
  assert.equal((await dockerFor('host-b').getContainer(dockerName(c.id)).inspect()).State.Running, true, 'still running');
  assert.equal((await rowOf(c.id)).state, 'running');

  // The image cannot be removed while a container uses it: 409, nothing refunded or removed.
  const balance = await balanceOf(user.id);
  const inUse = await app.inject({ method: 'DELETE', url: `/api/v1/images/${image.id}`, headers: bearer(user.token) });
  assert.equal(inUse.statusCode, 409, inUse.body);
  assert.match(inUse.json().detail, /container/i);
  assert.equal((await app.inject({ method: 'GET', url: `/api/v1/images/${image.id}`, headers: bearer(user.token) })).statusCode, 200, 'still recorded');
  assert.equal(await balanceOf(user.id), balance, 'nothing refunded');
  await dockerFor('host-b').getImage('127.0.0.1:5000/library/httpd:latest').inspect();

  const removed = await app.inject({ method: 'DELETE', url: `/api/v1/containers/${c.id}`, headers: bearer(user.token) });
  assert.equal(removed.statusCode, 200, removed.body);
  assert.equal(removed.json().state, 'removed');
  await assert.rejects(dockerFor('host-b').getContainer(dockerName(c.id)).inspect(), /no such container/i);
  const row = await rowOf(c.id);
  assert.ok(row.removedAt, 'port freed: the row is no longer live');
  assert.equal(await closedStatus(temporal, `container-${c.id}`), 'COMPLETED');

  // The port is free again: a new container on that host can take it.
  const again = await run(app, user, { imageId: image.id, name: 'web' });
  assert.equal(again.name, 'web', 'the name is free again too');
  await app.inject({ method: 'DELETE', url: `/api/v1/containers/${again.id}`, headers: bearer(user.token) });
});

test('operations are Temporal updates: idempotent, answered with the new state, also from the CLI', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 10_000 });
  const image = await pullHttpd(app, user);
  // httpd behind a shell that leaves on SIGTERM: a stop or restart takes no 10 s stop timeout.
  const c = await run(app, user, { imageId: image.id, cmd: ['sh', '-c', 'trap "exit 0" TERM; httpd -f -p 80 -h /www & wait'] });
  const docker = dockerFor('host-a').getContainer(dockerName(c.id));

  const stopped = await op(app, user, c.id, 'stop');
  assert.equal(stopped.statusCode, 200);
  assert.equal(stopped.json().state, 'stopped');
  assert.equal((await docker.inspect()).State.Running, false);
  await assert.rejects(fetch(`http://${c.hostIp}:${c.hostPort}/`), 'a stopped container’s port refuses connections');
  assert.equal((await op(app, user, c.id, 'stop')).json().state, 'stopped', 'stopping a stopped container succeeds');

  const { stdout } = await promisify(execFile)(TEMPORAL_CLI, [
    'workflow', 'update', 'execute', '--address', baseConfig.temporal.address,
    '--workflow-id', `container-${c.id}`, '--name', 'start', '--output', 'json',
  ]);
  assert.match(stdout, /"status":\s*"running"/);
  assert.equal((await docker.inspect()).State.Running, true);
  assert.equal((await rowOf(c.id)).state, 'running');

  assert.match(await (await fetch(`http://${c.hostIp}:${c.hostPort}/`)).text(), /Berth httpd/, 'started again, it answers');
  const restarted = await op(app, user, c.id, 'restart');
  assert.equal(restarted.json().state, 'running');
  assert.match(await (await fetch(`http://${c.hostIp}:${c.hostPort}/`)).text(), /Berth httpd/, 'restarted, it answers');
  const described = await temporal.workflow.getHandle(`container-${c.id}`).query('describe');
  assert.equal((described as { status: string }).status, 'running');
  const history = await temporal.workflow.getHandle(`container-${c.id}`).fetchHistory();
  const updates = (history.events ?? []).flatMap((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name ?? []);
  assert.ok(['stop', 'start', 'restart'].every((u) => updates.includes(u)), `updates in history: ${updates.join(', ')}`);
  // The database steps ran as local activities (markers), the Docker steps as the host's activity tasks.
  const scheduled = (history.events ?? []).flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
  assert.deepEqual(scheduled.filter((name) => ['chargeContainerPeriod', 'recordContainerState', 'releaseContainer', 'refundContainerCharge'].includes(name)), [], `scheduled: ${scheduled.join(', ')}`);
  assert.ok(scheduled.includes('createAndStartContainer') && scheduled.includes('stopContainer'), `scheduled: ${scheduled.join(', ')}`);
  const markers = (history.events ?? []).flatMap((e) => e.markerRecordedEventAttributes?.markerName ?? []);
  assert.ok(markers.includes('core_patch') && markers.filter((m) => m === 'core_local_activity').length >= 4, `markers: ${markers.join(', ')}`);

  // Ops stop it from the CLI, the same update the API sends.
  const cliStop = await promisify(execFile)(TEMPORAL_CLI, [
    'workflow', 'update', 'execute', '--address', baseConfig.temporal.address,
    '--workflow-id', `container-${c.id}`, '--name', 'stop', '--output', 'json',
  ]);
  assert.match(cliStop.stdout, /"status":\s*"stopped"/);
  assert.equal((await docker.inspect()).State.Running, false, 'stopped in Docker by the CLI');
  assert.equal((await rowOf(c.id)).state, 'stopped');
  await assert.rejects(fetch(`http://${c.hostIp}:${c.hostPort}/`), 'stopped from the CLI, its port refuses connections');

  assert.equal((await app.inject({ method: 'DELETE', url: `/api/v1/containers/${c.id}`, headers: bearer(user.token) })).statusCode, 200);
  assert.equal((await app.inject({ method: 'DELETE', url: `/api/v1/containers/${c.id}`, headers: bearer(user.token) })).statusCode, 404);
  assert.equal((await op(app, user, c.id, 'start')).statusCode, 409);
});

test('listing: your own containers; admins see all, filtered by user, host and state', async (t) => {
  const app = await buildTestApp(t);
  const alice = await createUser(app, { balance: 10_000 });
  const bob = await createUser(app, { balance: 10_000 });
  const aliceA = await run(app, alice, { imageId: (await pullHttpd(app, alice, 'host-a')).id });
  // Stopped below: a shell that leaves on SIGTERM, so the stop takes no 10 s stop timeout.
  const aliceB = await run(app, alice, { imageId: (await pullHttpd(app, alice, 'host-b')).id, cmd: ['sh', '-c', 'trap "exit 0" TERM; httpd -f -p 80 -h /www & wait'] });
  const bobB = await run(app, bob, { imageId: (await pullHttpd(app, bob, 'host-b')).id });
  // The app is closed by the time after() hooks run: remove through the workflows.
  t.after(() => Promise.all([aliceA, aliceB, bobB].map((c) => temporal.workflow.getHandle(`container-${c.id}`).executeUpdate('remove').catch(() => undefined))));
  assert.equal((await op(app, alice, aliceB.id, 'stop')).json().state, 'stopped');

  const list = async (token: string, query = '') => {
    const res = await app.inject({ method: 'GET', url: `/api/v1/containers${query}`, headers: bearer(token) });
    assert.equal(res.statusCode, 200, res.body);
    return res.json<{ items: Array<{ id: string; userId: string; host: string; state: string }>; total: number }>();
  };
  const ids = (page: { items: Array<{ id: string }> }) => page.items.map((c) => c.id).sort();

  const own = await list(alice.token);
  assert.deepEqual(ids(own), [aliceA.id, aliceB.id].sort(), 'only her own');
  assert.equal(own.total, 2);
  assert.deepEqual(ids(await list(bob.token)), [bobB.id]);
  assert.deepEqual(ids(await list(bob.token, `?userId=${alice.id}`)), [bobB.id], 'a user cannot filter into someone else’s');
  assert.deepEqual(ids(await list(alice.token, '?state=stopped')), [aliceB.id]);

  const admin = await adminToken(app);
  const all: string[] = [];
  for (let page = 1, total = Infinity; all.length < total; page++) {
    const p = await list(admin, `?pageSize=200&page=${page}`);
    total = p.total;
    if (p.items.length === 0) break;
    all.push(...ids(p));
  }
  assert.ok([aliceA.id, aliceB.id, bobB.id].every((id) => all.includes(id)), 'an admin sees everyone’s');
  assert.deepEqual(ids(await list(admin, `?userId=${alice.id}`)), [aliceA.id, aliceB.id].sort());
  assert.deepEqual(ids(await list(admin, `?userId=${alice.id}&host=host-b`)), [aliceB.id]);
  assert.deepEqual(ids(await list(admin, `?userId=${alice.id}&state=running`)), [aliceA.id]);
  const paged = await list(admin, `?userId=${alice.id}&pageSize=1`);
  assert.equal(paged.items.length, 1);
  assert.equal(paged.total, 2);
  assert.equal((await app.inject({ method: 'GET', url: '/api/v1/containers?state=sleeping', headers: bearer(admin) })).statusCode, 400);
});

test('logs: framing removed, stdout and stderr told apart, tail, download', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 10_000 });
  const image = await pullHttpd(app, user);
  const c = await run(app, user, {
    imageId: image.id,
    cmd: ['sh', '-c', 'echo out-1; echo err-1 >&2; echo out-2; exec httpd -f -p 80 -h /www'],
  });
  const logs = await eventually('logs', async () => {
    const res = await app.inject({ method: 'GET', url: `/api/v1/containers/${c.id}/logs`, headers: bearer(user.token) });
    return res.statusCode === 200 && res.body.includes('out-2') && res;
  });
  assert.match(logs.headers['content-type'] as string, /text\/plain/);
  assert.deepEqual(logs.body.trim().split('\n').sort(), ['[stderr] err-1', '[stdout] out-1', '[stdout] out-2']);
  const tail = await app.inject({ method: 'GET', url: `/api/v1/containers/${c.id}/logs?tail=1&timestamps=true`, headers: bearer(user.token) });
  assert.equal(tail.body.trim().split('\n').length, 1);
  assert.match(tail.body, /^\[std(out|err)\] \d{4}-\d{2}-\d{2}T/);
  const download = await app.inject({ method: 'GET', url: `/api/v1/containers/${c.id}/logs/download`, headers: bearer(user.token) });
  assert.match(download.headers['content-disposition'] as string, /^attachment; filename=".*-logs\.txt"$/);
  assert.match(download.body, /out-1/);
  const other = await createUser(app);
  assert.equal((await app.inject({ method: 'GET', url: `/api/v1/containers/${c.id}/logs`, headers: bearer(other.token) })).statusCode, 404);
  await app.inject({ method: 'DELETE', url: `/api/v1/containers/${c.id}`, headers: bearer(user.token) });
});
