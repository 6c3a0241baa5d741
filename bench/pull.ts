/**
 * Benchmark: `POST /api/v1/images/pull?wait=true` latency beside a plain `docker pull`
 * of the same kind of image on the same host's daemon, measured in the same run.
 *
 *   set -a; . ~/.local/state/berth/berth.env; set +a
 *   node --import tsx bench/pull.ts [runs=50] [host=host-a]
 *
 * Cases, each run once per round, Berth and Docker alternating which goes first:
 * - already on the host: an image the daemon has; Berth: a new user each run, so each
 *   run is a real new record and charge (no Docker pull: the workflow finds it there);
 *   Docker: `docker pull` of that same present image (asks the registry, pulls nothing).
 * - same user again (dedup): the user already owns it there; Berth answers from its
 *   records; Docker: the same present-image pull.
 * - fresh small image: an image no host has (busybox + a 256 KiB layer of its own,
 *   pushed beforehand, untimed); Berth and Docker each pull a different one of the kind.
 * One warm-up round is not counted. Berth is reached in-process (app.inject: routing,
 * auth, validation, Temporal and the host worker, but no TCP); Docker through dockerode
 * on the host's socket, the stream read to its end. Everything pulled is removed after.
 *
 * After the table, a breakdown of the two cases that run a workflow, from each timed run's
 * history (medians): the API outside the workflow (its checks, the slot, the start and the wait
 * for the result: total minus the run), the run from its start to its completion, within it the
 * wait for the first workflow task, and the host step from scheduled to completed (its queue wait
 * and the Docker work); the workflow's own tasks are the rest.
 */
import { bearer, adminToken, createUser, type TestUser } from '../test/support/app.js';
import { CLUSTER_HOST_IDS, HOST_IDS, asSeenBy, dockerFor } from '../test/support/stack.js';
import { inspectOn, pushUniqueImage } from '../test/support/images.js';
import { baseConfig, benchApp, drain, percentile, pool, printTable, timed, type Row } from './support.js';
import type { App } from '../api/app.js';
import { connectTemporal } from '../core/temporal.js';

/** Where a run's time went, from its history (ms). */
interface Spans {
  total: number;
  run: number;
  firstTaskWait: number;
  hostStep: number;
}

const RUNS = Number(process.argv[2] ?? 50);
const HOST = process.argv[3] ?? 'host-a';
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`runs must be a positive integer, got ${process.argv[2]}`);
const KNOWN_HOSTS: readonly string[] = [...new Set([...HOST_IDS, ...CLUSTER_HOST_IDS])];
if (!KNOWN_HOSTS.includes(HOST)) throw new Error(`host must be one of ${KNOWN_HOSTS.join(', ')}`);
const ROUNDS = RUNS + 1; // the first is a warm-up
const BALANCE = 10_000_000;

interface PulledImage {
  id: string;
  pullId: string | null;
  reference: string;
  charged: number;
  sizeBytes: number;
}

async function berthPull(app: App, user: TestUser, image: string): Promise<PulledImage> {
  const res = await app.inject({ method: 'POST', url: '/api/v1/images/pull?wait=true', headers: bearer(user.token), payload: { image, host: HOST } });
  if (res.statusCode !== 201) throw new Error(`pull ${image}: ${res.statusCode} ${res.body}`);
  return res.json<PulledImage>();
}

async function main() {
  const docker = dockerFor(HOST);
  const { app, close } = await benchApp();
  const admin = bearer(await adminToken(app));
  const records: PulledImage[] = []; // Berth's records made here, removed at the end
  const dockerRefs: string[] = []; // pulled with plain Docker, removed at the end
  const berthFresh: string[] = [];
  const dockerFresh: string[] = [];
  const present = { berth: [] as number[], docker: [] as number[] };
  const timedRuns = { present: [] as Array<{ pullId: string; total: number }>, fresh: [] as Array<{ pullId: string; total: number }> };
  const dedup = { berth: [] as number[], docker: [] as number[] };
  const fresh = { berth: [] as number[], docker: [] as number[] };

  try {
    // ---- set-up, untimed
    const setupStart = performance.now();
    // The present image: one of our own (nobody else's tests add or remove it), pulled once
    // through Berth by the dedup user, whose record keeps it on the host throughout.
    const presentRef = asSeenBy(HOST, await pushUniqueImage('bench-pull'));
    dockerRefs.push(presentRef);
    const owner = await createUser(app, { balance: BALANCE });
    const owned = await berthPull(app, owner, presentRef);
    records.push(owned);
    if (!(await inspectOn(HOST, presentRef))) throw new Error(`${presentRef} is not on ${HOST} after its pull`);

    const users: TestUser[] = [];
    await pool(Array.from({ length: ROUNDS }), 4, async () => void users.push(await createUser(app, { balance: BALANCE })));
    await pool(Array.from({ length: 2 * ROUNDS }), 4, async (_, i) => {
      const ref = asSeenBy(HOST, await pushUniqueImage('bench-pull'));
      (i % 2 === 0 ? berthFresh : dockerFresh).push(ref);
    });
    console.log(`set-up (untimed): ${((performance.now() - setupStart) / 1000).toFixed(1)} s — ${ROUNDS} users, ${2 * ROUNDS} fresh images pushed`);

    // ---- timed rounds
    for (let round = 0; round < ROUNDS; round++) {
      const keep = round > 0;
      const dockerFirst = round % 2 === 1;
      const user = users[round]!;

      // Already on the host: a new record and charge for a new user.
      if (!(await inspectOn(HOST, presentRef))) throw new Error(`${presentRef} left ${HOST} during the run`);
      const presentPair = [
        async () => {
          let image: PulledImage | undefined;
          const t = await timed(async () => void (image = await berthPull(app, user, presentRef)));
          records.push(image!);
          if (image!.id === owned.id || image!.charged <= 0) throw new Error(`not a new charged record: ${JSON.stringify(image)}`);
          if (keep) present.berth.push(t);
          if (keep) timedRuns.present.push({ pullId: image!.pullId!, total: t });
        },
        async () => {
          const t = await timed(async () => drain(docker, await docker.pull(presentRef)));
          if (keep) present.docker.push(t);
        },
      ];
      for (const step of dockerFirst ? presentPair.reverse() : presentPair) await step();

      // The same user again: dedup.
      const dedupPair = [
        async () => {
          let image: PulledImage | undefined;
          const t = await timed(async () => void (image = await berthPull(app, owner, presentRef)));
          if (image!.id !== owned.id) throw new Error(`dedup made a new record: ${JSON.stringify(image)}`);
          if (keep) dedup.berth.push(t);
        },
        async () => {
          const t = await timed(async () => drain(docker, await docker.pull(presentRef)));
          if (keep) dedup.docker.push(t);
        },
      ];
      for (const step of dockerFirst ? dedupPair.reverse() : dedupPair) await step();

      // A fresh small image on each side.
      const berthRef = berthFresh[round]!;
      const dockerRef = dockerFresh[round]!;
      if ((await inspectOn(HOST, berthRef)) || (await inspectOn(HOST, dockerRef))) throw new Error('a fresh image is on the host already');
      const freshPair = [
        async () => {
          let image: PulledImage | undefined;
          const t = await timed(async () => void (image = await berthPull(app, user, berthRef)));
          records.push(image!);
          if (keep) fresh.berth.push(t);
          if (keep) timedRuns.fresh.push({ pullId: image!.pullId!, total: t });
        },
        async () => {
          dockerRefs.push(dockerRef);
          const t = await timed(async () => drain(docker, await docker.pull(dockerRef)));
          if (keep) fresh.docker.push(t);
        },
      ];
      for (const step of dockerFirst ? freshPair.reverse() : freshPair) await step();
      if (!(await inspectOn(HOST, berthRef)) || !(await inspectOn(HOST, dockerRef))) throw new Error('a fresh pull left no image');
    }

    const freshSize = records.at(-1)!.sizeBytes;
    console.log(`host: ${HOST}; runs: ${RUNS} per case (+1 warm-up round, not counted); Berth and Docker alternate which goes first`);
    console.log(`present image: ${presentRef} (${(owned.sizeBytes / 1e6).toFixed(2)} MB); fresh images: busybox + 256 KiB layer (${(freshSize / 1e6).toFixed(2)} MB), only the new layer is downloaded`);
    console.log('');
    printTable([
      { name: 'already on host (new user: record + charge)', ...present },
      { name: 'same user again (dedup)', ...dedup },
      { name: 'fresh small image', ...fresh },
    ] satisfies Row[]);
    console.log('');
    console.log('ratio = berth / docker at the same percentile; docker = dockerode pull on the same socket, stream drained');
    console.log('');
    await printBreakdown(timedRuns);
  } finally {
    // ---- clean-up: Berth's records through the API (one at a time: the last record of a
    // reference takes the image off the host), then whatever plain Docker pulled.
    const cleanStart = performance.now();
    const outcomes: Record<string, number> = {};
    for (const record of records.reverse()) {
      const res = await app.inject({ method: 'DELETE', url: `/api/v1/images/${record.id}`, headers: admin });
      const key = res.statusCode === 200 ? `host ${res.json<{ host: string }>().host}` : `HTTP ${res.statusCode}`;
      outcomes[key] = (outcomes[key] ?? 0) + 1;
    }
    let dockerRemoved = 0;
    for (const ref of new Set([...dockerRefs, ...berthFresh])) {
      try {
        await docker.getImage(ref).remove({ force: true });
        dockerRemoved++;
      } catch (error) {
        if ((error as { statusCode?: number }).statusCode !== 404) console.error(`remove ${ref}: ${(error as Error).message}`);
      }
    }
    console.log(`clean-up: ${records.length} Berth records deleted (${JSON.stringify(outcomes)}), ${dockerRemoved} images removed with Docker, in ${((performance.now() - cleanStart) / 1000).toFixed(1)} s`);
    await close();
  }
}

/** The spans of one pull's run, from its history in Temporal. */
async function spansOf(temporal: Awaited<ReturnType<typeof connectTemporal>>, pullId: string, total: number): Promise<Spans> {
  const events = (await temporal.workflow.getHandle(pullId).fetchHistory()).events ?? [];
  type Event = (typeof events)[number];
  const at = (e: Event) => Number(e.eventTime!.seconds) * 1000 + (e.eventTime!.nanos ?? 0) / 1e6;
  const byType = (name: keyof Event) => events.filter((e) => e[name] != null);
  const started = at(events[0]!);
  const ended = at(events.at(-1)!);
  const firstTask = byType('workflowTaskStartedEventAttributes')[0];
  const scheduled = byType('activityTaskScheduledEventAttributes')[0];
  const completed = byType('activityTaskCompletedEventAttributes')[0];
  return {
    total,
    run: ended - started,
    firstTaskWait: firstTask ? at(firstTask) - started : 0,
    hostStep: scheduled && completed ? at(completed) - at(scheduled) : 0,
  };
}

async function printBreakdown(runs: Record<'present' | 'fresh', Array<{ pullId: string; total: number }>>) {
  const temporal = await connectTemporal(baseConfig.temporal);
  try {
    const lines = [['case (p50 of each part)', 'total', 'API outside the run', 'run', 'first task wait', 'host step', 'workflow tasks']];
    for (const [name, list] of [['already on host', runs.present], ['fresh small image', runs.fresh]] as const) {
      const spans = await Promise.all(list.map((r) => spansOf(temporal, r.pullId, r.total)));
      const p50 = (f: (s: Spans) => number) => `${percentile(spans.map(f), 50).toFixed(0)} ms`;
      lines.push([name, p50((s) => s.total), p50((s) => s.total - s.run), p50((s) => s.run), p50((s) => s.firstTaskWait), p50((s) => s.hostStep), p50((s) => s.run - s.firstTaskWait - s.hostStep)]);
    }
    const widths = lines[0]!.map((_, c) => Math.max(...lines.map((l) => l[c]!.length)));
    for (const [i, line] of lines.entries()) {
      console.log(line.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
      if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
    }
    console.log('API outside the run = total - run (checks, slot, start, result wait); workflow tasks = run - first task wait - host step');
  } finally {
    await temporal.connection.close();
  }
}

await main();
