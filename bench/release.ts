/**
 * Benchmark: the nightly release of N containers and N private images across the hosts, beside
 * a sequential one-by-one removal of the same kind of set (through the same API, one DELETE at a
 * time), measured in the same run on the same stack, alternating when there are several rounds.
 *
 *   set -a; . ~/.local/state/berth/berth.env; set +a
 *   node --import tsx bench/release.ts [N=200] [ROUNDS=1] [HOST[=DOCKER_ENDPOINT] ...]
 *
 * Hosts default to host-a and host-b (the stack's daemons); a host of your own is named with its
 * daemon's endpoint, e.g. `rel-1=unix:///tmp/rel-1/docker.sock` (its host worker must run). The
 * release removes EVERYTHING in its database and every Berth-labelled container on its hosts: run
 * it only against a database, daemons and a Temporal namespace of its own (BERTH_DATABASE_URL,
 * BERTH_TEMPORAL_NAMESPACE), with that namespace's control and host workers running.
 *
 * Prints, per round, both times, the release's phases (from its histories), the largest workflow history of the release, and the ratio; then the median
 * ratio. Setup is not timed. The release is triggered with the real `temporal` CLI, as ops would.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { desc, gt, inArray } from 'drizzle-orm';
import type Docker from 'dockerode';
import { images, releaseRuns } from '../db/schema.js';
import { adminToken, baseConfig, bearer, buildTestApp, createUser, testDb, type TestUser } from '../test/support/app.js';
import { HOST_IDS, REGISTRY, dockerFor } from '../test/support/stack.js';
import { dockerFromEndpoint } from '../activities/docker-client.js';
import { connectTemporal } from '../core/temporal.js';
import type { App } from '../api/app.js';
import { percentile, pool, sleep } from './support.js';

const numbers = process.argv.slice(2).filter((a) => /^\d+$/.test(a)).map(Number);
const N = numbers[0] ?? 200;
const ROUNDS = numbers[1] ?? 1;
const hostArgs = process.argv.slice(2).filter((a) => !/^\d+$/.test(a));
/** The hosts the sets are spread over, with a Docker client for each (to tag images). */
const HOSTS: Array<{ id: string; docker: Docker }> = (hostArgs.length ? hostArgs : [...HOST_IDS]).map((arg) => {
  const [id, endpoint] = arg.split(/=(.*)/s) as [string, string | undefined];
  return { id, docker: endpoint ? dockerFromEndpoint(endpoint) : dockerFor(id) };
});
const exec = promisify(execFile);
const TEMPORAL_CLI = join(process.env.BERTH_TOOLS_DIR ?? join(homedir(), '.cache', 'berth'), 'bin', 'temporal');
const SOURCE = `${REGISTRY}/library/busybox:1.35`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** N containers and N private images, spread over the hosts, owned by a few users. */
async function setUp(app: App, label: string) {
  const owners: TestUser[] = [];
  for (let i = 0; i < 4; i++) owners.push(await createUser(app, { balance: 10_000_000 }));
  // Each owner pulls the base image on each host through Berth (their containers run it);
  // then every other image is a tag of its own.
  const bases = new Map<string, string>();
  for (const owner of owners) {
    for (const { id: hostId } of HOSTS) {
      const res = await app.inject({ method: 'POST', url: '/api/v1/images/pull?wait=true', headers: bearer(owner.token), payload: { image: SOURCE, host: hostId } });
      if (res.statusCode !== 201) throw new Error(`pull: ${res.body}`);
      bases.set(`${owner.id}/${hostId}`, res.json().id);
    }
  }
  const imageIds: string[] = [];
  await pool(Array.from({ length: N }), 8, async (_, i) => {
    const { id: hostId, docker } = HOSTS[i % HOSTS.length]!;
    const repo = `${REGISTRY}/bench-${label}/img-${i}`;
    await docker.getImage(SOURCE).tag({ repo, tag: 'v1' });
    const owner = owners[i % owners.length]!;
    const res = await app.inject({ method: 'POST', url: '/api/v1/images/pull?wait=true', headers: bearer(owner.token), payload: { image: `${repo}:v1`, host: hostId } });
    if (res.statusCode !== 201) throw new Error(`image ${i}: ${res.body}`);
    imageIds.push(res.json().id);
  });
  const containerIds: string[] = [];
  await pool(Array.from({ length: N }), 8, async (_, i) => {
    const { id: hostId } = HOSTS[i % HOSTS.length]!;
    // Every owner on every host: a user's network on a host holds 29 containers.
    const owner = owners[Math.floor(i / HOSTS.length) % owners.length]!;
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/containers?wait=true',
      headers: bearer(owner.token),
      payload: { imageId: bases.get(`${owner.id}/${hostId}`)!, containerPort: 80, memoryMb: 16, cmd: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'] },
    });
    if (res.statusCode !== 201) throw new Error(`container ${i}: ${res.body}`);
    containerIds.push(res.json().id);
  });
  // The base images are removed too: they are private images of the set.
  return { owners, imageIds: [...imageIds, ...bases.values()], containerIds };
}

/** Sequential baseline: an operator's DELETE one at a time, containers first, then images. */
async function sequential(app: App, admin: Record<string, string>): Promise<number> {
  const set = await setUp(app, `seq-${Date.now()}`);
  const start = performance.now();
  for (const id of set.containerIds) {
    const res = await app.inject({ method: 'DELETE', url: `/api/v1/containers/${id}`, headers: admin });
    if (res.statusCode !== 200) throw new Error(`delete container: ${res.body}`);
  }
  for (const id of set.imageIds) {
    const res = await app.inject({ method: 'DELETE', url: `/api/v1/images/${id}`, headers: admin });
    if (res.statusCode !== 200) throw new Error(`delete image: ${res.body}`);
  }
  return performance.now() - start;
}

/**
 * The release's runs (continue-as-new makes several): the longest history, and its phases from
 * the histories: containers (with the orphan and network sweeps) from the start to the first
 * listing of images, images from there to the end.
 */
async function releaseHistory(releaseId: string): Promise<{ events: number; runs: number; containersMs: number; imagesMs: number }> {
  const temporal = await connectTemporal(baseConfig.temporal);
  try {
    let events = 0;
    let runs = 0;
    const times: { start?: number; images?: number; end?: number } = {};
    for await (const w of temporal.workflow.list({ query: `WorkflowId="${releaseId}"` })) {
      runs += 1;
      events = Math.max(events, w.historyLength);
      const history = await temporal.workflow.getHandle(releaseId, w.runId).fetchHistory();
      for (const e of history.events ?? []) {
        const at = Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
        times.start = Math.min(times.start ?? at, at);
        times.end = Math.max(times.end ?? at, at);
        const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
        if (name === 'listReleasableImageBatch' || name === 'listReleasableImages') times.images = Math.min(times.images ?? at, at);
      }
    }
    const images = times.images ?? times.end ?? 0;
    return { events, runs, containersMs: images - (times.start ?? 0), imagesMs: (times.end ?? 0) - images };
  } finally {
    await temporal.connection.close();
  }
}

/** The nightly release of a set of the same size. */
async function release(app: App) {
  const set = await setUp(app, `rel-${Date.now()}`);
  const since = new Date(Date.now() - 1000);
  const start = performance.now();
  await exec(TEMPORAL_CLI, ['schedule', 'trigger', '--schedule-id', 'berth-nightly-release', '--address', baseConfig.temporal.address, '--namespace', baseConfig.temporal.namespace]);
  let run;
  for (;;) {
    [run] = await testDb().db.select().from(releaseRuns).where(gt(releaseRuns.startedAt, since)).orderBy(desc(releaseRuns.startedAt));
    if (run && run.status !== 'running') break;
    await sleep(200);
  }
  const ms = performance.now() - start;
  const left = await testDb().db.select({ id: images.id }).from(images).where(inArray(images.id, set.imageIds));
  const report = run.report as { containers: { removed: number; failed: number }; images: { removed: number; failed: number } };
  return {
    ms,
    images: set.imageIds.length,
    report,
    left: left.length,
    history: await releaseHistory(run.id),
  };
}

async function main() {
  const closers: Array<() => Promise<void>> = [];
  const app = await buildTestApp(
    { after: (fn: () => Promise<void>) => void closers.push(fn) },
    {
      containers: { ...baseConfig.containers, maxPerUser: N, billingPeriodMs: 3_600_000 },
      // An operator removing hundreds of items one by one is not the user the limit is for.
      rateLimit: { max: 1_000_000, windowMs: 60_000 },
      pulls: { ...baseConfig.pulls, maxConcurrentPerUser: 100 },
    },
  );
  const admin = bearer(await adminToken(app));
  console.log(`items: ${N} containers + ${N + 4 * HOSTS.length} private images, across ${HOSTS.map((h) => h.id).join(', ')}; release concurrency ${process.env.BERTH_RELEASE_CONCURRENCY ?? 8} per host (the control worker's)`);
  const ratios: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    // Alternating: odd rounds measure the baseline first, even rounds the release first.
    let seqMs: number;
    let rel: Awaited<ReturnType<typeof release>>;
    if (round % 2 === 1) {
      seqMs = await sequential(app, admin);
      rel = await release(app);
    } else {
      rel = await release(app);
      seqMs = await sequential(app, admin);
    }
    ratios.push(rel.ms / seqMs);
    console.log(`round ${round}: sequential one-by-one ${seconds(seqMs)}; nightly release ${seconds(rel.ms)} (containers and sweeps ${seconds(rel.history.containersMs)}, images ${seconds(rel.history.imagesMs)})`);
    console.log(`  report: containers ${JSON.stringify(rel.report.containers)}, images ${JSON.stringify(rel.report.images)}; images of the set left: ${rel.left}`);
    console.log(`  largest release history: ${rel.history.events} events (${rel.history.runs} run(s) with continue-as-new; Temporal's limit 51,200)`);
    console.log(`  ratio release / sequential: ${(rel.ms / seqMs).toFixed(2)}`);
  }
  console.log(`ratio release / sequential, median of ${ROUNDS}: ${percentile(ratios, 50).toFixed(2)} (goal <= 0.25)`);
  for (const close of closers) await close();
}

await main();
