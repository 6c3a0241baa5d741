/**
 * Prometheus in the stack (issue 15, item 3), asked through its HTTP API on 127.0.0.1:9090: every
 * target `scripts/stack.sh` gives it is up (the API, each worker's ops server, the Temporal dev
 * server, Prometheus itself), each worker exports the Temporal SDK's metrics, the alert rules of
 * ops/prometheus/rules/ are loaded and evaluate without error, and each domain metric of the
 * metrics contract is there once this file's own user has pulled, run a container, packaged an
 * image (DCU), been credited, refunded and rate-limited, all through the stack's own API process
 * over HTTP (so that the events happen in the processes Prometheus scrapes). Counters are compared
 * before and after: other files' events may add to them, never take away.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { adminToken, bearer, createUser } from '../support/app.js';
import { idler, removeContainer, runContainer } from '../support/containers.js';
import { FUNDS, removedAfterAll, startTask, waitEnded } from '../support/dcu.js';
import { pullRequest, pushUniqueImage } from '../support/images.js';
import { HOST_IDS } from '../support/stack.js';
import { eventually } from '../support/wait.js';
import { remoteApp } from '../cluster/support.js';

const PROMETHEUS = 'http://127.0.0.1:9090';
/** The processes of the development stack, as each target's `process` label names them. */
const WORKERS = ['worker-control', ...HOST_IDS.map((h) => `worker-${h}`)];
const PROCESSES = ['api', ...WORKERS, 'temporal', 'prometheus'];
const SCHEDULES = ['berth-nightly-release', 'berth-dcu-gzip-cleanup', 'berth-dcu-object-cleanup', 'berth-audit-retention'];

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

async function prometheus<T>(path: string): Promise<T> {
  const res = await fetch(`${PROMETHEUS}${path}`);
  const body = (await res.json()) as { status: string; data: T; error?: string };
  assert.equal(body.status, 'success', `${path}: ${body.error}`);
  return body.data;
}

const query = async (expr: string) => (await prometheus<{ result: Sample[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`)).result;

/** The single value of an aggregating query (`sum(...)`), 0 when it has no series. */
const valueOf = async (expr: string) => {
  const result = await query(expr);
  assert.ok(result.length <= 1, `${expr} has ${result.length} series`);
  return result.length ? Number(result[0]!.value[1]) : 0;
};

/**
 * The sum of a selector's series that were scraped in the last 20 s (targets are scraped every 5 s).
 * A Prometheus restarted over its stored data still answers, for 5 minutes (its lookback), the last
 * samples of series no process exposes any more (a restarted API's routes not yet requested again):
 * a plain sum of a counter can then go down while nothing was taken away.
 */
const fresh = (selector: string) => `sum(${selector} unless (time() - timestamp(${selector}) > 20))`;

/** The `process` label of each series of a query. */
const processesOf = async (expr: string) => new Set((await query(expr)).map((s) => s.metric.process));

/** The metrics some target declares (HELP and TYPE), whether or not it has a sample of them yet. */
const declared = async (metric: string) => (await prometheus<Record<string, unknown[]>>(`/api/v1/metadata?metric=${metric}`))[metric] !== undefined;

test('Prometheus scrapes every process of the stack, and every target is up', { timeout: 90_000 }, async () => {
  type Target = { labels: { job: string; process: string }; health: string; lastError: string; scrapeUrl: string };
  // The Temporal job is scraped every 15 s: a Prometheus that has just (re)started discovers its
  // targets, then scrapes each (health "unknown" until then). Waited for: every process a target.
  const targets = await eventually(
    'a target for every process, each scraped and up',
    async () => {
      const { activeTargets } = await prometheus<{ activeTargets: Target[] }>('/api/v1/targets?state=active');
      const seen = new Set(activeTargets.map((t) => t.labels.process));
      return PROCESSES.every((p) => seen.has(p)) && activeTargets.every((t) => t.health === 'up') && activeTargets;
    },
    60,
  ).catch(async (error: Error) => {
    const { activeTargets } = await prometheus<{ activeTargets: Target[] }>('/api/v1/targets?state=active');
    const down = activeTargets.filter((t) => t.health !== 'up').map((t) => `${t.labels.process} ${t.scrapeUrl}: ${t.health} ${t.lastError}`);
    const missing = PROCESSES.filter((p) => !activeTargets.some((t) => t.labels.process === p));
    throw new Error(`${error.message}; no target: ${missing.join(', ') || 'none'}; not up: ${down.join('; ') || 'none'}`);
  });
  assert.deepEqual(targets.map((t) => t.labels.process).sort(), [...PROCESSES].sort());
  assert.deepEqual(
    Object.fromEntries(targets.map((t) => [t.labels.process, t.labels.job])),
    Object.fromEntries(PROCESSES.map((p) => [p, p === 'api' ? 'berth-api' : p.startsWith('worker-') ? 'berth-worker' : p])),
  );
  // `up`, as the rules see it.
  assert.deepEqual(await processesOf('up == 1'), new Set(PROCESSES));
});

test("each worker's target carries the Temporal SDK's metrics, polling, and every Berth process the standard process metrics", { timeout: 60_000 }, async () => {
  // Pollers of every worker, above zero (the input of BerthWorkerNotPolling).
  const polling = await eventually('pollers from every worker', async () => {
    const found = await processesOf('max by (process) (temporal_num_pollers{job="berth-worker"}) > 0');
    return WORKERS.every((w) => found.has(w)) && found;
  });
  assert.deepEqual(polling, new Set(WORKERS));
  // The control worker runs workflows: the SDK's workflow task metrics; host workers run activities.
  assert.deepEqual(await processesOf('temporal_num_pollers{job="berth-worker",poller_type="workflow_task"}'), new Set(['worker-control']));
  // Its polls: the SDK's long requests.
  for (const worker of WORKERS) {
    assert.ok((await query(`temporal_long_request_total{process="${worker}"}`)).length > 0, `${worker}: temporal_long_request_total`);
  }
  // Standard names (no prefix) in the API and every worker.
  // (eventually: a process restarted a moment ago has its first scrape within one interval.)
  for (const metric of ['process_resident_memory_bytes', 'process_cpu_seconds_total', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
    const expected = new Set(['api', ...WORKERS]);
    const found = await eventually(metric, async () => {
      const processes = await processesOf(`${metric}{job=~"berth-.*"}`);
      return [...expected].every((p) => processes.has(p)) && processes;
    }).catch(async () => processesOf(`${metric}{job=~"berth-.*"}`));
    assert.deepEqual(found, expected, metric);
  }
  // And Temporal's server's own.
  assert.ok((await query('{job="temporal"}')).length > 0, "Temporal's server metrics");
});

test('the alert rules of ops/prometheus/rules are loaded, evaluated, and healthy', { timeout: 60_000 }, async () => {
  const source = await readFile(new URL('../../ops/prometheus/rules/berth.rules.yml', import.meta.url), 'utf8');
  const expected = [...source.matchAll(/^\s+- alert: (\w+)$/gm)].map((m) => m[1]!).sort();
  assert.ok(expected.length >= 9, 'the rules file names its alerts');
  type Rule = { name: string; type: string; health: string; lastError?: string; lastEvaluation: string };
  const rules = await eventually('every rule evaluated', async () => {
    const { groups } = await prometheus<{ groups: Array<{ rules: Rule[] }> }>('/api/v1/rules?type=alert');
    const all = groups.flatMap((g) => g.rules);
    return all.length > 0 && all.every((r) => !r.lastEvaluation.startsWith('0001')) && all;
  });
  assert.deepEqual(rules.map((r) => r.name).sort(), expected);
  // An expression that fails on real series (a many-to-many match, say) shows here, not in promtool.
  for (const rule of rules) assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError}`);
});

test("each domain metric is there after this test's own pull, container, DCU, credit, refund and rate-limited requests", { timeout: 420_000 }, async () => {
  const app = remoteApp();
  const { pulled, taskIds } = removedAfterAll();
  const [image, packaged] = await Promise.all([pushUniqueImage('prometheus'), pushUniqueImage('prometheus')]);
  pulled.add(`host-a ${image}`).add(`host-a ${packaged}`);

  // Each counter's series as a selector; read() sums those a target exposes now (fresh()).
  const counters = {
    pulled: 'berth_pulls_total{outcome="pulled"}',
    deduped: 'berth_pulls_total{outcome="deduped"}',
    pullDurations: 'berth_pull_duration_seconds_count{outcome="pulled"}',
    requests: 'berth_http_requests_total',
    requestDurations: 'berth_http_request_duration_seconds_count',
    rateLimited: 'berth_requests_limited_total{limit="rate_limit"}',
    imageCharged: 'berth_money_charged_minor_units_total{kind="image_charge"}',
    dcuCharged: 'berth_money_charged_minor_units_total{kind="dcu_charge"}',
    imageRefunded: 'berth_money_refunded_minor_units_total{kind="image_refund"}',
    credited: 'berth_money_credited_minor_units_total',
    dcuSucceeded: 'berth_dcu_tasks_total{outcome="succeeded"}',
    downloads: 'berth_dcu_phase_duration_seconds_count{phase="download"}',
    compressions: 'berth_dcu_phase_duration_seconds_count{phase="compress"}',
    uploads: 'berth_dcu_phase_duration_seconds_count{phase="upload"}',
    downloadBytes: 'berth_dcu_phase_bytes_total{phase="download"}',
    compressBytes: 'berth_dcu_phase_bytes_total{phase="compress"}',
    uploadBytes: 'berth_dcu_phase_bytes_total{phase="upload"}',
  };
  type Counter = keyof typeof counters;
  const read = async () => Object.fromEntries(await Promise.all(Object.entries(counters).map(async ([k, e]) => [k, await valueOf(fresh(e))]))) as Record<Counter, number>;
  const before = await read();

  const user = await createUser(app, { balance: 100_000 + FUNDS });
  // A pull that downloads, and the same again: deduplicated.
  const first = await pullRequest(app, user.token, { image, host: 'host-a' });
  assert.equal(first.statusCode, 201, first.body);
  const { id: imageId, charged } = first.json<{ id: string; charged: number }>();
  assert.ok(charged > 0);
  const again = await pullRequest(app, user.token, { image, host: 'host-a' });
  assert.ok(again.statusCode < 300, again.body);

  // A container, counted by state and host while it runs.
  const container = await runContainer(app, user, idler(imageId));
  const running = await eventually('the running container counted', async () => (await valueOf('sum(berth_containers{host="host-a", state="running"})')) >= 1);
  assert.ok(running);
  await removeContainer(app, user, container.id);

  // A DCU of another fresh image, to the end.
  const taskId = await startTask(app, user, packaged, 'host-a');
  taskIds.push(taskId);
  const task = await waitEnded(app, user.token, taskId);
  assert.equal(task.state, 'completed', task.error_message);

  // A credit by the admin, and the pulled image removed: its refund.
  const admin = await adminToken(app);
  const credit = await app.inject({ method: 'POST', url: `/api/v1/users/${user.id}/credit`, headers: bearer(admin), payload: { amount: 123, reason: 'prometheus test' } });
  assert.equal(credit.statusCode, 200, credit.body);
  const removed = await app.inject({ method: 'DELETE', url: `/api/v1/images/${imageId}`, headers: bearer(user.token) });
  assert.equal(removed.statusCode, 200, removed.body);

  // Rate-limited: the per-user limit of mutating routes (keyed by this user only), reached with
  // requests that do nothing (revoking a session that does not exist: 404).
  let limited = 0;
  for (let i = 0; i < 500 && limited === 0; i++) {
    const res = await app.inject({ method: 'DELETE', url: `/api/v1/users/me/sessions/${randomUUID()}`, headers: bearer(user.token) });
    if (res.statusCode === 429) limited++;
    else assert.equal(res.statusCode, 404, res.body);
  }
  assert.equal(limited, 1, 'the rate limit answered 429');

  const atLeast: Record<Counter, number> = {
    pulled: 1,
    deduped: 1,
    pullDurations: 1,
    requests: 10,
    requestDurations: 10,
    rateLimited: 1,
    imageCharged: charged,
    dcuCharged: task.charged,
    imageRefunded: charged,
    credited: 123,
    dcuSucceeded: 1,
    downloads: 1,
    compressions: 1,
    uploads: 1,
    downloadBytes: 1,
    compressBytes: task.compressed_bytes!,
    uploadBytes: task.compressed_bytes!,
  };
  assert.ok(task.charged > 0 && task.compressed_bytes! > 0);
  let after = before;
  await eventually(
    'every counter scraped after the events',
    async () => {
      after = await read();
      return (Object.keys(atLeast) as Counter[]).every((k) => after[k] - before[k] >= atLeast[k]);
    },
    60,
  ).catch((error: Error) => {
    const short = (Object.keys(atLeast) as Counter[]).filter((k) => after[k] - before[k] < atLeast[k]).map((k) => `${k} (${fresh(counters[k])}) +${after[k] - before[k]}, want +${atLeast[k]}`);
    throw new Error(`${error.message}: ${short.join('; ')}`);
  });

  // Computed on scrape by the API: hosts, schedules.
  for (const host of HOST_IDS) assert.equal(await valueOf(`max(berth_hosts_up{host="${host}"})`), 1, `berth_hosts_up ${host}`);
  for (const metric of ['berth_schedule_paused', 'berth_schedule_missed_runs']) {
    const schedules = new Set((await query(metric)).map((s) => s.metric.schedule));
    assert.deepEqual(schedules, new Set(SCHEDULES), metric);
  }
  // What only the nightly release, or a schedule's first run, gives samples of: declared by a target.
  for (const metric of [
    'berth_schedule_last_run_timestamp_seconds',
    'berth_release_runs_total',
    'berth_release_duration_seconds',
    'berth_release_items_removed_total',
    'berth_release_failures_total',
  ]) {
    assert.ok(await declared(metric), `${metric} is declared by a target`);
  }
});
