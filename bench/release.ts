/**
 * Benchmark: the nightly release of N containers and N private images across both
 * hosts, beside a sequential one-by-one removal of the same kind of set (through the
 * same API, one DELETE at a time), measured in the same run on the same stack.
 *
 *   set -a; . ~/.local/state/berth/berth.env; set +a
 *   node --import tsx bench/release.ts [N=200]
 *
 * Prints both times and their ratio. Setup is not timed. The release is triggered
 * with the real `temporal` CLI, as ops would.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { desc, gt } from 'drizzle-orm';
import { images, releaseRuns } from '../db/schema.js';
import { adminToken, baseConfig, bearer, buildTestApp, createUser, testDb, type TestUser } from '../test/support/app.js';
import { HOST_IDS, REGISTRY, dockerFor } from '../test/support/stack.js';
import type { App } from '../api/app.js';
import { pool, sleep } from './support.js';

const N = Number(process.argv[2] ?? 200);
const exec = promisify(execFile);
const TEMPORAL_CLI = join(process.env.BERTH_TOOLS_DIR ?? join(homedir(), '.cache', 'berth'), 'bin', 'temporal');
const SOURCE = `${REGISTRY}/library/busybox:1.35`;

/** N containers and N private images, half on each host, owned by a few users. */
async function setUp(app: App, label: string) {
  const owners: TestUser[] = [];
  for (let i = 0; i < 4; i++) owners.push(await createUser(app, { balance: 10_000_000 }));
  // Each owner pulls the base image on each host through Berth (their containers run it);
  // then every other image is a tag of its own.
  const bases = new Map<string, string>();
  for (const owner of owners) {
    for (const hostId of HOST_IDS) {
      const res = await app.inject({ method: 'POST', url: '/api/v1/images/pull?wait=true', headers: bearer(owner.token), payload: { image: SOURCE, host: hostId } });
      if (res.statusCode !== 201) throw new Error(`pull: ${res.body}`);
      bases.set(`${owner.id}/${hostId}`, res.json().id);
    }
  }
  const imageIds: string[] = [];
  await pool(Array.from({ length: N }), 8, async (_, i) => {
    const hostId = HOST_IDS[i % 2]!;
    const repo = `${REGISTRY}/bench-${label}/img-${i}`;
    await dockerFor(hostId).getImage(SOURCE).tag({ repo, tag: 'v1' });
    const owner = owners[i % owners.length]!;
    const res = await app.inject({ method: 'POST', url: '/api/v1/images/pull?wait=true', headers: bearer(owner.token), payload: { image: `${repo}:v1`, host: hostId } });
    if (res.statusCode !== 201) throw new Error(`image ${i}: ${res.body}`);
    imageIds.push(res.json().id);
  });
  const containerIds: string[] = [];
  await pool(Array.from({ length: N }), 8, async (_, i) => {
    const hostId = HOST_IDS[i % 2]!;
    const owner = owners[i % owners.length]!;
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

  // Sequential baseline: an operator's DELETE one at a time, containers first, then images.
  const admin = bearer(await adminToken(app));
  const seq = await setUp(app, 'seq');
  const seqStart = performance.now();
  for (const id of seq.containerIds) {
    const res = await app.inject({ method: 'DELETE', url: `/api/v1/containers/${id}`, headers: admin });
    if (res.statusCode !== 200) throw new Error(`delete container: ${res.body}`);
  }
  for (const id of seq.imageIds) {
    const res = await app.inject({ method: 'DELETE', url: `/api/v1/images/${id}`, headers: admin });
    if (res.statusCode !== 200) throw new Error(`delete image: ${res.body}`);
  }
  const sequentialMs = performance.now() - seqStart;

  // The nightly release of a set of the same size.
  const rel = await setUp(app, 'rel');
  const since = new Date(Date.now() - 1000);
  const relStart = performance.now();
  await exec(TEMPORAL_CLI, ['schedule', 'trigger', '--schedule-id', 'berth-nightly-release', '--address', baseConfig.temporal.address]);
  let run;
  for (;;) {
    [run] = await testDb().db.select().from(releaseRuns).where(gt(releaseRuns.startedAt, since)).orderBy(desc(releaseRuns.startedAt));
    if (run && run.status !== 'running') break;
    await sleep(200);
  }
  const releaseMs = performance.now() - relStart;
  const leftImages = (await testDb().db.select({ id: images.id }).from(images)).filter((i) => rel.imageIds.includes(i.id)).length;

  const report = run.report as { containers: { removed: number; failed: number }; images: { removed: number; failed: number } };
  console.log(`items: ${N} containers + ${rel.imageIds.length} private images, across ${HOST_IDS.join(' and ')}`);
  console.log(`sequential one-by-one removal: ${(sequentialMs / 1000).toFixed(1)} s`);
  console.log(`nightly release (concurrency ${process.env.BERTH_RELEASE_CONCURRENCY ?? 8} per host): ${(releaseMs / 1000).toFixed(1)} s`);
  console.log(`release report: containers ${JSON.stringify(report.containers)}, images ${JSON.stringify(report.images)}; images left: ${leftImages}`);
  console.log(`ratio release / sequential: ${(releaseMs / sequentialMs).toFixed(2)} (goal <= 0.5)`);
  for (const close of closers) await close();
}


await main();
