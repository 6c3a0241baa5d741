/**
 * Benchmark: DCU end to end (POST /api/dcu/start → completed) on an image of about
 * 150 MB already on the host, beside, in the same run and on the same host:
 *   - the original's sequential way: `docker save -o x.tar`, then `gzip x.tar`, then an
 *     upload of x.tar.gz to the same MinIO;
 *   - `docker save | gzip -6 > /dev/null` alone.
 *
 *   set -a; . ~/.local/state/berth/berth.env; set +a
 *   node --import tsx bench/dcu.ts [runs=3] [host-worker-pid]
 *
 * The image (busybox plus ~60 MB of random bytes and ~90 MB of text) is built once and
 * pushed to the local registry, so DCU's download phase finds it on the host. Runs are
 * interleaved so that the three ways see the same machine. Prints MB/s and the ratios.
 *
 * A DCU of an image whose archive is in MinIO already is made by a server-side copy: before
 * each packaging run the earlier archives of the bench image are deleted and their tasks
 * marked expired, so Berth packages every time; a second task of the same image right after
 * it measures the reuse.
 *
 * With the pid of the host worker that serves host-a (`pgrep -f 'workers/host\.(ts|js)'` and
 * BERTH_HOST_ID=host-a in its /proc/PID/environ), it then packages the ~150 MB image and a 1 GiB
 * image (busybox plus 256 MiB of random bytes and ~800 MB of text, in four layers, built once and
 * pushed to the local registry) once more each, and prints that worker's peak RSS during each
 * packaging (VmHWM of /proc/PID/status, reset to the current RSS through /proc/PID/clear_refs just
 * before the task starts), what the packaging added to the RSS before it, and the CPU seconds the
 * worker spent: two sizes, so that what grows with the image shows. `runs=0`: the peaks only.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadHostWorkerConfig } from '../core/config.js';
import { minioClient } from '../core/minio.js';
import { and, eq } from 'drizzle-orm';
import { dcuTasks } from '../db/schema.js';
import { baseConfig, buildTestApp, createUser, bearer, testDb, type TestUser } from '../test/support/app.js';
import { activityDurations } from '../test/support/history.js';
import { connectTemporal } from '../core/temporal.js';
import { REGISTRY, dockerFor, dockerSocket } from '../test/support/stack.js';
import type { App } from '../api/app.js';

const RUNS = Number(process.argv[2] ?? 3);
const HOST_WORKER_PID = process.argv[3] ? Number(process.argv[3]) : null;
const BIG_IMAGE = `${REGISTRY}/bench/dcu-1gib:v1`;
const HOST = 'host-a';
const IMAGE = `${REGISTRY}/bench/dcu-150mb:v1`;
const exec = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const hostConfig = loadHostWorkerConfig({ ...process.env, BERTH_HOST_ID: HOST });
const minio = minioClient(hostConfig.minio);
const docker = ['-H', `unix://${dockerSocket(HOST)}`];

async function drain(stream: NodeJS.ReadableStream): Promise<void> {
  await new Promise<void>((resolve, reject) =>
    dockerFor(HOST).modem.followProgress(stream, (error: Error | null, output: Array<{ error?: string }>) => {
      const failed = output?.find((m) => m.error);
      if (error || failed) reject(error ?? new Error(failed!.error));
      else resolve();
    }),
  );
}

/** The ~150 MB image (or `image`, built by `script`) on the host and in the registry (built the first time only). */
async function ensureImage(image = IMAGE, script = 'head -c 62914560 /dev/urandom > /random && seq 1 12500000 > /numbers'): Promise<number> {
  const daemon = dockerFor(HOST);
  try {
    return (await daemon.getImage(image).inspect()).Size;
  } catch {
    // not on the host: try the registry, else build it
  }
  try {
    await drain(await daemon.pull(image));
    return (await daemon.getImage(image).inspect()).Size;
  } catch {
    // not in the registry either
  }
  let base = `${REGISTRY}/library/busybox:1.35`;
  await drain(await daemon.pull(base));
  // One layer per `&&`-free step: a layer of its own each.
  const [repo, tag] = image.split(/:(?=[^:/]+$)/) as [string, string];
  for (const [i, step] of script.split(' ;; ').entries()) {
    const builder = await daemon.createContainer({ Image: base, Cmd: ['sh', '-c', step] });
    await builder.start();
    await builder.wait();
    base = `${repo}:build-${i}`;
    await builder.commit({ repo, tag: `build-${i}` });
    await builder.remove();
  }
  await daemon.getImage(base).tag({ repo, tag });
  // Without a callback dockerode's push answers a promise of the stream (its types say otherwise).
  const pushing = daemon.getImage(image).push({ authconfig: {} } as never) as unknown as Promise<NodeJS.ReadableStream>;
  await drain(await pushing);
  return (await daemon.getImage(image).inspect()).Size;
}

/** The 1 GiB image: busybox plus 256 MiB of random bytes and ~800 MB of text, in four layers. */
const BIG_IMAGE_SCRIPT = [
  'head -c 134217728 /dev/urandom > /random1',
  'seq 1 50000000 > /numbers1',
  'head -c 134217728 /dev/urandom > /random2',
  'seq 50000001 100000000 > /numbers2',
].join(' ;; ');

/**
 * The host worker's peak RSS while it packages `image` (VmHWM reset to the current RSS just
 * before the task), what the packaging added to the RSS it had before, and the CPU it spent.
 */
async function peakRssWhilePackaging(app: App, pid: number, image: string, bytes: number): Promise<void> {
  await forgetArchives((await dockerFor(HOST).getImage(image).inspect()).Id);
  const kb = async (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]);
  await settle();
  await writeFile(`/proc/${pid}/clear_refs`, '5');
  const before = await kb('VmRSS');
  const cpuBefore = await cpuSecondsOf(pid);
  const run = await berthDcu(app, await createUser(app, { balance: 1_000_000 }), new Map(), image);
  const peak = await kb('VmHWM');
  const cpu = (await cpuSecondsOf(pid)) - cpuBefore;
  console.log(
    `\nimage ${image}: ${(bytes / 2 ** 30).toFixed(2)} GiB, tar ${(run.tarBytes / 2 ** 30).toFixed(2)} GiB, .tar.gz ${(run.gzBytes / 1e6).toFixed(0)} MB, packaged in ${seconds(run.ms)} s`,
  );
  console.log(`host worker ${pid}: RSS ${(before / 1024).toFixed(0)} MB before, peak ${(peak / 1024).toFixed(0)} MB while packaging (goal < 250 MB); +${((peak - before) / 1024).toFixed(0)} MB`);
  // CPU time, unlike wall time, is not inflated by a loaded machine: it compares settings of the worker.
  console.log(`host worker ${pid}: ${cpu.toFixed(1)} CPU s (user + system, all its threads) for the packaging`);
}

/** CPU seconds (user + system, every thread) a process has used: fields 14 and 15 of /proc/PID/stat, in clock ticks. */
async function cpuSecondsOf(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).replace(/^.*\) /s, '').split(' ');
  const ticks = Number((await exec('getconf', ['CLK_TCK'])).stdout.trim());
  return (Number(fields[11]) + Number(fields[12])) / ticks;
}

const temporal = await connectTemporal(baseConfig.temporal);
/** Milliseconds per activity type (scheduled → closed), over all Berth runs: where the time goes. */
const phases = new Map<string, number[]>();
const reusePhases = new Map<string, number[]>();

async function berthDcu(app: App, user: TestUser, phasesOf = phases, image = IMAGE): Promise<{ ms: number; tarBytes: number; gzBytes: number }> {
  const res = await app.inject({
    method: 'POST', url: '/api/dcu/start', headers: bearer(user.token),
    payload: { username: user.username, docker_image_name: image, host: HOST },
  });
  if (res.statusCode !== 200) throw new Error(`start: ${res.body}`);
  const taskId = res.json().data.task_id as string;
  for (;;) {
    const data = (await app.inject({ method: 'GET', url: `/api/dcu/status/${taskId}`, headers: bearer(user.token) })).json().data;
    // Start → completed from the task's row (created by the POST, ended by the last
    // transition): polling adds no error, and polls are sparse so that the harness takes
    // no CPU from the run it measures.
    if (data.state === 'completed') {
      const [row] = await testDb().db.select().from(dcuTasks).where(eq(dcuTasks.id, taskId));
      const run = new Map<string, number>();
      for (const { activityType, ms } of await activityDurations(temporal, `dcu-${taskId}`)) run.set(activityType, (run.get(activityType) ?? 0) + ms);
      for (const [activityType, ms] of run) phasesOf.set(activityType, [...(phasesOf.get(activityType) ?? []), ms]);
      return { ms: row!.endTime!.getTime() - row!.createdAt.getTime(), tarBytes: data.size_bytes, gzBytes: data.compressed_bytes };
    }
    if (data.state === 'failed') throw new Error(`dcu failed: ${data.error_message}`);
    await sleep(500);
  }
}

/** Deletes the bench image's archives of earlier runs and marks their tasks expired: nothing to reuse. */
async function forgetArchives(imageId: string): Promise<void> {
  const done = await testDb().db.select().from(dcuTasks).where(and(eq(dcuTasks.imageId, imageId), eq(dcuTasks.state, 'completed'), eq(dcuTasks.artifactsExpired, false)));
  for (const task of done) if (task.minioObjectName) await minio.removeObject(hostConfig.dcu.bucket, task.minioObjectName);
  await testDb().db.update(dcuTasks).set({ artifactsExpired: true }).where(eq(dcuTasks.imageId, imageId));
}

async function original(dir: string): Promise<number> {
  const tar = join(dir, 'x.tar');
  const started = performance.now();
  await exec('docker', [...docker, 'save', '-o', tar, IMAGE]);
  await exec('gzip', ['-6', tar]);
  await minio.fPutObject(hostConfig.dcu.bucket, `bench/original-${Date.now()}.tar.gz`, `${tar}.gz`, {});
  const ms = performance.now() - started;
  await rm(`${tar}.gz`, { force: true });
  return ms;
}

async function saveGzipOnly(): Promise<number> {
  const started = performance.now();
  await exec('bash', ['-o', 'pipefail', '-c', `docker ${docker.join(' ')} save ${IMAGE} | gzip -6 > /dev/null`]);
  return performance.now() - started;
}

/** Before each measured way: the previous way's dirty pages written back, and a moment of quiet. */
async function settle(): Promise<void> {
  await exec('sync');
  await sleep(2000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const seconds = (ms: number) => (ms / 1000).toFixed(2);

async function main() {
  const imageBytes = await ensureImage();
  const app = await buildTestApp({ after: () => undefined });
  if (!(await minio.bucketExists(hostConfig.dcu.bucket))) await minio.makeBucket(hostConfig.dcu.bucket);
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-dcu-'));
  const times = { berth: [] as number[], reuse: [] as number[], original: [] as number[], saveGzip: [] as number[] };
  const imageId = (await dockerFor(HOST).getImage(IMAGE).inspect()).Id;
  let tarBytes = 0;
  let gzBytes = 0;
  try {
    for (let i = 0; i < RUNS; i++) {
      // A new user each run: a new object name, so the upload is never skipped as done already.
      const user = await createUser(app, { balance: 1_000_000 });
      await forgetArchives(imageId);
      await settle();
      const b = await berthDcu(app, user);
      times.berth.push(b.ms);
      tarBytes = b.tarBytes;
      gzBytes = b.gzBytes;
      // Another user's task of the same image: its archive is copied, not made again.
      await settle();
      times.reuse.push((await berthDcu(app, await createUser(app, { balance: 1_000_000 }), reusePhases)).ms);
      await settle();
      times.original.push(await original(dir));
      await settle();
      times.saveGzip.push(await saveGzipOnly());
      console.log(`run ${i + 1}: berth ${seconds(b.ms)} s, reuse ${seconds(times.reuse.at(-1)!)} s, original ${seconds(times.original.at(-1)!)} s, save|gzip ${seconds(times.saveGzip.at(-1)!)} s`);
    }
    if (HOST_WORKER_PID) {
      // Two sizes: what the packaging adds does not grow with the image.
      await peakRssWhilePackaging(app, HOST_WORKER_PID, IMAGE, imageBytes);
      await peakRssWhilePackaging(app, HOST_WORKER_PID, BIG_IMAGE, await ensureImage(BIG_IMAGE, BIG_IMAGE_SCRIPT));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
    await app.close();
  }
  if (RUNS === 0) return; // the peak RSS only
  const mb = tarBytes / 1e6;
  const rows = [
    ['Berth DCU (start → completed)', median(times.berth)],
    ['Berth DCU of an image packaged already (server-side copy)', median(times.reuse)],
    ['original: save -o, gzip, upload', median(times.original)],
    ['docker save | gzip -6 > /dev/null', median(times.saveGzip)],
  ] as const;
  console.log(`\nimage ${IMAGE}: ${(imageBytes / 1e6).toFixed(1)} MB, docker save tar ${mb.toFixed(1)} MB, Berth's .tar.gz ${(gzBytes / 1e6).toFixed(1)} MB; median of ${RUNS} runs`);
  console.log('| way | time | tar MB/s |');
  console.log('|---|---|---|');
  for (const [name, ms] of rows) console.log(`| ${name} | ${seconds(ms)} s | ${(mb / (ms / 1000)).toFixed(1)} |`);
  const steps = (of: Map<string, number[]>) => [...of].map(([type, ms]) => `${type} ${seconds(median(ms))} s`).join(', ');
  console.log(`\nBerth's steps (scheduled → closed, summed per run, median): ${steps(phases)}`);
  console.log(`Berth's steps when reusing: ${steps(reusePhases)}`);
  console.log(`\nBerth / original sequential: ${(rows[0][1] / rows[2][1]).toFixed(2)} (goal ≤ 0.45)`);
  console.log(`Berth / docker save | gzip -6: ${(rows[0][1] / rows[3][1]).toFixed(2)} (goal ≤ 0.55)`);
  console.log(`Berth reuse / Berth packaging: ${(rows[1][1] / rows[0][1]).toFixed(2)}`);
}

await main();
process.exit(0);
