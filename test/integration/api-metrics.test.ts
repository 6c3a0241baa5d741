/**
 * The API's /metrics, in-process (buildTestApp) on the stack's PostgreSQL and Temporal: default
 * process metrics under their standard names, requests per route, the gauges computed on scrape
 * (hosts up, live containers by state and host, Berth's schedules), the limits that refused a
 * request, and money credited. Counters are this process's, so the deltas asserted are this
 * file's own requests; gauges are the stack's, so only this file's own container is looked for.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { App } from '../../api/app.js';
import { SCHEDULE_IDS } from '../../services/gauges.js';
import { connectTemporal } from '../../core/temporal.js';
import { adminToken, baseConfig, bearer, buildTestApp, createUser, uniqueName } from '../support/app.js';
import { BUSYBOX, HTTPD, cleanupScope, containersConfig, idler, pull, removeContainer, runContainer } from '../support/containers.js';
import { pullRequest } from '../support/images.js';
import { startRequest } from '../support/dcu.js';
import { metricValue, parseMetrics, type Samples } from '../support/metrics.js';

async function scrape(app: App): Promise<{ text: string; samples: Samples }> {
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return { text: res.body, samples: parseMetrics(res.body) };
}

const limited = (samples: Samples, limit: string) => metricValue(samples, 'berth_requests_limited_total', { limit }) ?? 0;

test('default process metrics under their standard names, requests by route and status, no error counter', async (t) => {
  const app = await buildTestApp(t);
  assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  assert.equal((await app.inject({ method: 'GET', url: '/api/v1/users/me' })).statusCode, 401);
  const { text, samples } = await scrape(app);
  assert.ok((metricValue(samples, 'process_cpu_user_seconds_total') ?? 0) > 0);
  assert.ok((metricValue(samples, 'process_resident_memory_bytes') ?? 0) > 0);
  assert.ok(metricValue(samples, 'nodejs_eventloop_lag_seconds') !== undefined);
  assert.doesNotMatch(text, /berth_api_/);
  assert.doesNotMatch(text, /berth_http_request_errors_total/);
  assert.equal(metricValue(samples, 'berth_http_requests_total', { method: 'GET', route: '/healthz', status_code: '200' }), 1);
  assert.equal(metricValue(samples, 'berth_http_requests_total', { method: 'GET', route: '/api/v1/users/me', status_code: '401' }), 1);
  assert.equal(metricValue(samples, 'berth_http_request_duration_seconds_count', { route: '/healthz' }), 1);
});

test('berth_hosts_up says what the hosts API says of every host', async (t) => {
  const app = await buildTestApp(t);
  const res = await app.inject({ method: 'GET', url: '/api/v1/hosts', headers: bearer(await adminToken(app)) });
  assert.equal(res.statusCode, 200, res.body);
  const hosts = res.json<{ items: Array<{ id: string; status: string }> }>().items;
  const { samples } = await scrape(app);
  assert.ok(hosts.some((h) => h.id === 'host-a'));
  for (const host of hosts) assert.equal(metricValue(samples, 'berth_hosts_up', { host: host.id }), host.status === 'up' ? 1 : 0, host.id);
  assert.equal(samples.get('berth_hosts_up')?.length, hosts.length, 'one series per host');
  assert.equal(metricValue(samples, 'berth_hosts_up', { host: 'host-a' }), 1, 'host-a is up on the running stack');
});

test('berth_containers counts this file\'s running container under its state and host; container, stream and pull limits are counted', async (t) => {
  const scope = cleanupScope(t);
  const app = await buildTestApp(scope);
  const user = await createUser(app, { balance: 100_000 });
  const image = await pull(app, user, BUSYBOX, 'host-a');
  const container = await runContainer(app, user, idler(image));
  scope.after(() => removeContainer(app, user, container.id));
  assert.equal(container.state, 'running');

  const { samples } = await scrape(app);
  assert.ok((metricValue(samples, 'berth_containers', { state: 'running', host: container.host }) ?? 0) >= 1);
  for (const sample of samples.get('berth_containers') ?? []) {
    assert.ok(['creating', 'running', 'stopped', 'suspended', 'exited'].includes(sample.labels.state!), `live states only: ${sample.labels.state}`);
  }

  // The same user, under limits of 0: refused at once, and counted.
  const strict = await buildTestApp(scope, {
    containers: containersConfig({ maxPerUser: 0 }),
    streams: { ...baseConfig.streams, maxPerUser: 0 },
    pulls: { ...baseConfig.pulls, maxConcurrentPerUser: 0 },
  });
  const before = (await scrape(strict)).samples;
  const refusedRun = await strict.inject({ method: 'POST', url: '/api/v1/containers', headers: bearer(user.token), payload: idler(image) });
  assert.equal(refusedRun.statusCode, 409, refusedRun.body);
  const refusedFollow = await strict.inject({ method: 'GET', url: `/api/v1/containers/${container.id}/logs?follow=true`, headers: bearer(user.token) });
  assert.equal(refusedFollow.statusCode, 429, refusedFollow.body);
  // An image the user does not own there yet: a dedup of one they own is answered without a slot.
  const refusedPull = await pullRequest(strict, user.token, { image: HTTPD, host: 'host-a' }, false);
  assert.equal(refusedPull.statusCode, 429, refusedPull.body);
  const afterwards = (await scrape(strict)).samples;
  assert.equal(limited(afterwards, 'container_quota') - limited(before, 'container_quota'), 1);
  assert.equal(limited(afterwards, 'stream_limit') - limited(before, 'stream_limit'), 1);
  assert.equal(limited(afterwards, 'pull_concurrency') - limited(before, 'pull_concurrency'), 1);
});

test('the rate limiter, the login throttle and the DCU limits are counted', async (t) => {
  const app = await buildTestApp(t, {
    rateLimit: { max: 1, windowMs: 60_000 },
    login: { maxFailuresPerUser: 1, maxFailuresPerAddress: 1_000_000, windowMs: 60_000 },
    dcu: { ...baseConfig.dcu, maxInFlight: 0 },
  });
  const user = await createUser(app, { balance: 1_000 });
  const before = (await scrape(app)).samples;

  const quote = () => app.inject({ method: 'POST', url: '/api/v1/containers/quote', headers: bearer(user.token), payload: {} });
  assert.equal((await quote()).statusCode, 200);
  assert.equal((await quote()).statusCode, 429);

  const username = uniqueName('throttled');
  const login = () => app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password: `wrong-${randomUUID()}` } });
  assert.equal((await login()).statusCode, 401);
  assert.equal((await login()).statusCode, 429);

  const inFlight = await startRequest(app, user, BUSYBOX);
  assert.equal(inFlight.statusCode, 429, inFlight.body);
  const quotaApp = await buildTestApp(t, { dcu: { ...baseConfig.dcu, quotaMb: 0 } });
  const quota = await startRequest(quotaApp, user, BUSYBOX);
  assert.equal(quota.statusCode, 409, quota.body);

  const afterwards = (await scrape(app)).samples;
  for (const limit of ['rate_limit', 'login_throttle', 'dcu_in_flight', 'dcu_quota']) {
    assert.equal(limited(afterwards, limit) - limited(before, limit), 1, limit);
  }
});

test('money credited: an admin\'s credit and an opening balance, each once', async (t) => {
  const app = await buildTestApp(t);
  const credited = (s: Samples, kind: string) => metricValue(s, 'berth_money_credited_minor_units_total', { kind }) ?? 0;
  const before = (await scrape(app)).samples;
  const user = await createUser(app, { balance: 700 });
  const admin = await adminToken(app);
  const key = randomUUID();
  for (let i = 0; i < 2; i++) {
    // The same key twice: one entry, counted once.
    const res = await app.inject({
      method: 'POST',
      url: `/api/v1/users/${user.id}/credit`,
      headers: { ...bearer(admin), 'idempotency-key': key },
      payload: { amount: 250, reason: 'metrics test' },
    });
    assert.equal(res.statusCode, 200, res.body);
  }
  const afterwards = (await scrape(app)).samples;
  assert.equal(credited(afterwards, 'opening_balance') - credited(before, 'opening_balance'), 700);
  assert.equal(credited(afterwards, 'credit') - credited(before, 'credit'), 250);
});

test('berth_schedule_*: each of Berth\'s schedules, as Temporal describes it', async (t) => {
  const app = await buildTestApp(t);
  const temporal = await connectTemporal(baseConfig.temporal);
  t.after(() => temporal.connection.close());
  const { samples } = await scrape(app);
  for (const schedule of SCHEDULE_IDS) {
    const description = await temporal.schedule.getHandle(schedule).describe();
    assert.equal(metricValue(samples, 'berth_schedule_paused', { schedule }), description.state.paused ? 1 : 0, schedule);
    assert.equal(metricValue(samples, 'berth_schedule_missed_runs', { schedule }), description.info.numActionsMissedCatchupWindow, schedule);
    const last = description.info.recentActions.at(-1);
    assert.equal(metricValue(samples, 'berth_schedule_last_run_timestamp_seconds', { schedule }), last ? last.takenAt.getTime() / 1000 : undefined, schedule);
  }
});
