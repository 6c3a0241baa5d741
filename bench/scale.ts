/**
 * Benchmark: Berth with N Docker hosts and many small containers, for several N in one run.
 *
 *   set -a; . ~/.local/state/berth/berth.env; set +a
 *   node --import tsx bench/scale.ts [hosts=2,4,6] [containers=1000] [users=20] [concurrency=50]
 *
 * For each N it brings up a Berth of its own (bench/scale-hosts.sh: N daemons scale-1..N, a
 * private database, a namespace, this worktree's API and workers; never the stack's database
 * or daemons, since the nightly release removes everything), then, through the API over HTTP:
 * makes the users, has each pull busybox on each host, creates the containers (busybox `sleep`,
 * 8 MB, 0.1 CPU, port 80 published (the API requires one); host i mod N, user (i div N) mod users) at the given concurrency with `?wait=true`,
 * and triggers the nightly release (the temporal CLI, as ops would) and times it to the end of
 * its run. Beside Berth's creation, the same containers with plain Docker on the same daemons
 * (bench/scale-docker.ts; first in even rounds, after the release in odd ones), as a ratio. It reports creation throughput and time to running (p50/p95), the release's time,
 * the largest history of each workflow type, PostgreSQL and Temporal rows per container (once
 * all run, and after the release), and each process's peak RSS and CPU (from /proc). Figures
 * for each N are also printed as a ratio to the first N (the baseline of the same run). The
 * JSON goes to $BERTH_SCALE_DIR/results-<time>.json (default /tmp/berth-scale). Each N's Berth
 * is taken down at its end, also on failure.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { homedir, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadApiConfig } from '../core/config.js';
import { connectTemporal } from '../core/temporal.js';
import { dockerBaseline, type DockerBaseline } from './scale-docker.js';
import { histories, postgresRows, ProcessWatch, temporalRows, type HistoryFigures, type ProcessFigures } from './scale-probes.js';
import { percentile, pool, sleep } from './support.js';
import pg from 'pg';

const exec = promisify(execFile);
const [hostsArg = '2,4,6', containersArg = '1000', usersArg = '20', concurrencyArg = '50'] = process.argv.slice(2);
const HOST_COUNTS = hostsArg.split(',').map(Number);
const CONTAINERS = Number(containersArg);
const USERS = Number(usersArg);
const CONCURRENCY = Number(concurrencyArg);
for (const [name, value] of [['containers', CONTAINERS], ['users', USERS], ['concurrency', CONCURRENCY], ...HOST_COUNTS.map((n) => ['hosts', n] as const)] as const) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${value}`);
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIR = process.env.BERTH_SCALE_DIR ?? '/tmp/berth-scale';
const STATE = process.env.BERTH_STATE_DIR ?? join(homedir(), '.local', 'state', 'berth');
const TEMPORAL_CLI = join(process.env.BERTH_TOOLS_DIR ?? join(homedir(), '.cache', 'berth'), 'bin', 'temporal');
const TEMPORAL_DB = join(STATE, 'temporal', 'temporal.db');
const API_PORT = Number(process.env.BERTH_SCALE_API_PORT ?? 18085);
const IMAGE = '127.0.0.1:5000/library/busybox:1.35';
// `sleep` as PID 1 would ignore SIGTERM and cost each removal Docker's 10 s stop timeout.
const CMD = ['sh', '-c', 'trap "exit 0" TERM; sleep 2147483647 & wait'];
const MEMORY_MB = 8;
const CPUS = 0.1;
const RELEASE_TIMEOUT_MS = 60 * 60_000;

const helper = (...args: string[]) => exec('bash', [join(ROOT, 'bench', 'scale-hosts.sh'), ...args], { cwd: ROOT, maxBuffer: 1 << 24 });

interface Api {
  call<T = unknown>(method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; body: T }>;
}

function apiAt(base: string): Api {
  return {
    async call(method, path, token, body) {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : undefined) as never };
    },
  };
}

async function login(api: Api, username: string, password: string) {
  const res = await api.call<{ token: string }>('POST', '/api/v1/auth/login', undefined, { username, password });
  if (res.status !== 200) throw new Error(`login ${username}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.token;
}

interface RunFigures {
  hosts: number;
  containers: number;
  users: number;
  concurrency: number;
  loadAverageAtStart: number;
  pulls: { count: number; seconds: number; p50Ms: number; p95Ms: number };
  docker: DockerBaseline;
  create: { ok: number; failed: number; failures: string[]; seconds: number; perSecond: number; p50Ms: number; p95Ms: number; maxMs: number };
  release: { seconds: number; status: string; report: unknown; containersLeft: number };
  histories: { running: Record<string, HistoryFigures>; afterRelease: Record<string, HistoryFigures> };
  postgresRows: { beforeCreate: Record<string, number>; running: Record<string, number>; afterRelease: Record<string, number> };
  temporalRows:
    | { source: string; beforeCreate: Record<string, number>; running: Record<string, number>; afterRelease: Record<string, number> }
    | { source: string; error: string };
  processes: ProcessFigures[];
}

async function processes(): Promise<Array<{ name: string; pid: number }>> {
  const run = join(DIR, 'run');
  const files = (await readdir(run)).filter((f) => f.endsWith('.pid')).sort();
  return Promise.all(files.map(async (f) => ({ name: f.replace(/\.pid$/, ''), pid: Number((await readFile(join(run, f), 'utf8')).trim()) })));
}

async function scaleEnv(): Promise<Record<string, string>> {
  const text = await readFile(join(DIR, 'scale.env'), 'utf8');
  return Object.fromEntries(text.split('\n').filter(Boolean).map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
}

/** The same containers with plain Docker on the same daemons (their endpoints as Berth registered them). */
async function plainDocker(databaseUrl: string): Promise<DockerBaseline> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  const { rows } = await db.query<{ endpoint: string; ip: string }>('select docker_endpoint as endpoint, publish_ip as ip from hosts order by id').finally(() => db.end());
  const baseline = await dockerBaseline(rows.map((h) => ({ socket: h.endpoint.replace(/^unix:\/\//, ''), publishIp: h.ip })), {
    image: IMAGE, cmd: CMD, memoryMb: MEMORY_MB, cpus: CPUS, count: CONTAINERS, concurrency: CONCURRENCY,
  });
  console.log(`plain Docker: ${baseline.ok} of ${CONTAINERS} in ${baseline.seconds.toFixed(1)} s`);
  return baseline;
}

async function runOnce(hosts: number, round: number): Promise<RunFigures> {
  console.log(`\n=== N = ${hosts} hosts: bringing up its own Berth`);
  await helper('up', String(hosts), String(API_PORT));
  const settings = await scaleEnv();
  const namespace = settings.BERTH_TEMPORAL_NAMESPACE!;
  const databaseUrl = settings.BERTH_DATABASE_URL!;
  const config = loadApiConfig({ ...process.env, BERTH_TEMPORAL_NAMESPACE: namespace, BERTH_DATABASE_URL: databaseUrl });
  const temporal = await connectTemporal(config.temporal);
  const api = apiAt(`http://127.0.0.1:${API_PORT}`);
  const watch = new ProcessWatch(await processes());
  await watch.start();
  const hostIds = Array.from({ length: hosts }, (_, i) => `scale-${i + 1}`);
  const loadAverageAtStart = loadavg()[0]!;
  try {
    const admin = await login(api, config.admin.username, config.admin.password!);
    const users: Array<{ id: string; token: string }> = [];
    for (let u = 0; u < USERS; u++) {
      const username = `scale-${u}-${Date.now().toString(36)}`;
      const password = `pw-${username}-0123456789`;
      const res = await api.call<{ id: string }>('POST', '/api/v1/users', admin, { username, password, balance: 100_000_000 });
      if (res.status !== 201) throw new Error(`create user: ${res.status} ${JSON.stringify(res.body)}`);
      users.push({ id: res.body.id, token: await login(api, username, password) });
    }

    // Each user owns busybox on each host (the image is on the daemons already: record and charge).
    await watch.phase('pull');
    const images = new Map<string, string>();
    const pullMs: number[] = [];
    const pullStart = performance.now();
    await pool(users.flatMap((user) => hostIds.map((host) => ({ user, host }))), CONCURRENCY, async ({ user, host }) => {
      const t0 = performance.now();
      const res = await api.call<{ id: string }>('POST', '/api/v1/images/pull?wait=true', user.token, { image: IMAGE, host });
      if (res.status !== 201 && res.status !== 200) throw new Error(`pull on ${host}: ${res.status} ${JSON.stringify(res.body)}`);
      pullMs.push(performance.now() - t0);
      images.set(`${user.id}/${host}`, res.body.id);
    });
    const pullSeconds = (performance.now() - pullStart) / 1000;

    // The baseline goes first in even rounds, after the release in odd ones.
    let docker: DockerBaseline | undefined;
    if (round % 2 === 0) {
      await watch.phase('docker');
      docker = await plainDocker(databaseUrl);
    }

    // What the creation adds is measured from here (users, their images and pulls are there).
    const beforeCreate = {
      postgres: await postgresRows(databaseUrl),
      temporal: await temporalRows(TEMPORAL_DB, namespace).catch((error: Error) => error),
    };

    await watch.phase('create');
    const createMs: number[] = [];
    const failures: string[] = [];
    const createStart = performance.now();
    await pool(Array.from({ length: CONTAINERS }, (_, i) => i), CONCURRENCY, async (i) => {
      // Host i mod N, and the users in turn on each host: every user has containers on every host
      // (a user's network on a host holds 29 at most; with user i mod 20 and an even N, each
      // user's containers would all land on one host).
      const user = users[Math.floor(i / hosts) % USERS]!;
      const imageId = images.get(`${user.id}/${hostIds[i % hosts]}`)!;
      const t0 = performance.now();
      try {
        const res = await api.call<{ state: string }>('POST', '/api/v1/containers?wait=true', user.token, { imageId, containerPort: 80, memoryMb: MEMORY_MB, cpus: CPUS, cmd: CMD });
        if (res.status !== 201 || res.body.state !== 'running') throw new Error(`${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
        createMs.push(performance.now() - t0);
      } catch (error) {
        failures.push(`container ${i}: ${(error as Error).message}`);
      }
    });
    const createSeconds = (performance.now() - createStart) / 1000;
    console.log(`created ${createMs.length} of ${CONTAINERS} in ${createSeconds.toFixed(1)} s (${failures.length} failed)`);
    if (createMs.length === 0) throw new Error(`no container ran: ${failures.slice(0, 3).join('; ')}`);

    await watch.phase('measure');
    const running = {
      histories: await histories(temporal),
      postgres: await postgresRows(databaseUrl),
      temporal: await temporalRows(TEMPORAL_DB, namespace).catch((error: Error) => error),
    };

    // The nightly release, triggered as ops would, timed to the end of its run.
    await watch.phase('release');
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    let release: RunFigures['release'];
    try {
      const since = new Date(Date.now() - 1000);
      const releaseStart = performance.now();
      await exec(TEMPORAL_CLI, ['schedule', 'trigger', '--schedule-id', 'berth-nightly-release', '--namespace', namespace, '--address', config.temporal.address]);
      let run: { status: string; report: unknown } | undefined;
      for (;;) {
        ({ rows: [run] } = await db.query<{ status: string; report: unknown }>('select status, report from release_runs where started_at > $1 order by started_at desc limit 1', [since]));
        if (run && run.status !== 'running') break;
        if (performance.now() - releaseStart > RELEASE_TIMEOUT_MS) throw new Error('the release did not end within an hour');
        await sleep(250);
      }
      const seconds = (performance.now() - releaseStart) / 1000;
      const { rows } = await db.query<{ n: string }>("select count(*) as n from containers where state not in ('removed', 'failed')");
      release = { seconds, status: run.status, report: run.report, containersLeft: Number(rows[0]!.n) };
    } finally {
      await db.end();
    }
    console.log(`release: ${release.status} in ${release.seconds.toFixed(1)} s; containers left: ${release.containersLeft}`);

    if (round % 2 === 1) {
      await watch.phase('docker');
      docker = await plainDocker(databaseUrl);
    }

    await watch.phase('measure');
    // Workflows that end with the release (containers) close their runs moments after it.
    await sleep(3000);
    const after = {
      histories: await histories(temporal),
      postgres: await postgresRows(databaseUrl),
      temporal: await temporalRows(TEMPORAL_DB, namespace).catch((error: Error) => error),
    };
    const unreadable = [beforeCreate.temporal, running.temporal, after.temporal].find((t) => t instanceof Error);
    const temporalFigures: RunFigures['temporalRows'] = unreadable
      ? { source: TEMPORAL_DB, error: unreadable.message }
      : {
          source: `${TEMPORAL_DB} (the dev server's SQLite store, rows of namespace ${namespace})`,
          beforeCreate: beforeCreate.temporal as Record<string, number>,
          running: running.temporal as Record<string, number>,
          afterRelease: after.temporal as Record<string, number>,
        };

    return {
      hosts,
      containers: CONTAINERS,
      users: USERS,
      concurrency: CONCURRENCY,
      loadAverageAtStart,
      docker: docker!,
      pulls: { count: pullMs.length, seconds: pullSeconds, p50Ms: percentile(pullMs, 50), p95Ms: percentile(pullMs, 95) },
      create: {
        ok: createMs.length,
        failed: failures.length,
        failures: failures.slice(0, 10),
        seconds: createSeconds,
        perSecond: createMs.length / createSeconds,
        p50Ms: percentile(createMs, 50),
        p95Ms: percentile(createMs, 95),
        maxMs: Math.max(...createMs),
      },
      release,
      histories: { running: running.histories, afterRelease: after.histories },
      postgresRows: { beforeCreate: beforeCreate.postgres, running: running.postgres, afterRelease: after.postgres },
      temporalRows: temporalFigures,
      processes: await watch.stop(),
    };
  } finally {
    await watch.stop();
    await temporal.connection.close();
    if (process.env.BERTH_SCALE_KEEP !== '1') await helper('down');
  }
}

// ---------------------------------------------------------------- report

const sum = (rows: Record<string, number>) => Object.values(rows).reduce((a, b) => a + b, 0);
const maxOf = (h: Record<string, HistoryFigures>, type: string) => h[type] ?? { runs: 0, maxEvents: 0, maxBytes: 0, totalEvents: 0 };
const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

function table(lines: string[][]) {
  const widths = lines[0]!.map((_, c) => Math.max(...lines.map((l) => (l[c] ?? '').length)));
  for (const [i, line] of lines.entries()) {
    console.log(line.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}

function report(runs: RunFigures[]) {
  const base = runs[0]!;
  const both = (r: RunFigures, value: (r: RunFigures) => number, digits = 1) => `${fmt(value(r), digits)} (${fmt(value(r) / value(base), 2)}x)`;
  const allHistories = (r: RunFigures) => ({ ...r.histories.running, ...r.histories.afterRelease });
  const historyMax = (r: RunFigures, type: string) => Math.max(maxOf(r.histories.running, type).maxEvents, maxOf(r.histories.afterRelease, type).maxEvents);
  const historyBytes = (r: RunFigures, type: string) => Math.max(maxOf(r.histories.running, type).maxBytes, maxOf(r.histories.afterRelease, type).maxBytes);
  // Rows the creation added, per container; and all rows (users, pulls, release) per container.
  const tAdded = (r: RunFigures) => ('error' in r.temporalRows ? Number.NaN : (sum(r.temporalRows.running) - sum(r.temporalRows.beforeCreate)) / r.create.ok);
  const pgAdded = (r: RunFigures) => (sum(r.postgresRows.running) - sum(r.postgresRows.beforeCreate)) / r.create.ok;
  const tRows = (r: RunFigures, when: 'running' | 'afterRelease') => ('error' in r.temporalRows ? Number.NaN : sum(r.temporalRows[when]) / r.create.ok);
  const pgRows = (r: RunFigures, when: 'running' | 'afterRelease') => sum(r.postgresRows[when]) / r.create.ok;
  const proc = (r: RunFigures, name: string) => r.processes.find((p) => p.name === name);
  const hostWorkers = (r: RunFigures) => r.processes.filter((p) => p.name.startsWith('host-'));
  const cpu = (p: ProcessFigures | undefined, phase: string) => p?.cpuSecondsByPhase[phase] ?? 0;
  const rssPerContainer = (r: RunFigures, name: string) => {
    const p = proc(r, name);
    return p ? ((p.rssMbAtEndOf.create! - p.rssMbAtEndOf.pull!) * 1024) / r.create.ok : Number.NaN;
  };

  console.log(`\nscale: ${CONTAINERS} containers (busybox sleep, 8 MB, 0.1 CPU) by ${USERS} users at concurrency ${CONCURRENCY}; in brackets: the ratio to N = ${base.hosts} of this run`);
  const header = ['figure', ...runs.map((r) => `N = ${r.hosts}`)];
  table([
    header,
    ['containers running / failed', ...runs.map((r) => `${r.create.ok} / ${r.create.failed}`)],
    ['creation, containers/s', ...runs.map((r) => both(r, (x) => x.create.perSecond, 2))],
    ['time to running p50, ms', ...runs.map((r) => both(r, (x) => x.create.p50Ms, 0))],
    ['time to running p95, ms', ...runs.map((r) => both(r, (x) => x.create.p95Ms, 0))],
    ['plain Docker create + start, containers/s', ...runs.map((r) => fmt(r.docker.perSecond, 2))],
    ['plain Docker p50 / p95, ms', ...runs.map((r) => `${fmt(r.docker.p50Ms, 0)} / ${fmt(r.docker.p95Ms, 0)}`)],
    ['ratio Berth / Docker: throughput, p95', ...runs.map((r) => `${fmt(r.create.perSecond / r.docker.perSecond, 2)}, ${fmt(r.create.p95Ms / r.docker.p95Ms, 1)}`)],
    ['pulls (users x hosts), p95 ms', ...runs.map((r) => `${r.pulls.count}: ${fmt(r.pulls.p95Ms, 0)}`)],
    ['nightly release, s', ...runs.map((r) => both(r, (x) => x.release.seconds))],
    ['release left running', ...runs.map((r) => `${r.release.status}, ${r.release.containersLeft}`)],
    ['largest container history, events', ...runs.map((r) => `${historyMax(r, 'container')} (${fmt(historyBytes(r, 'container') / 1024, 0)} KiB)`)],
    ['largest release history, events', ...runs.map((r) => `${historyMax(r, 'nightlyRelease')} (${fmt(historyBytes(r, 'nightlyRelease') / 1024, 0)} KiB), ${maxOf(allHistories(r), 'nightlyRelease').runs} runs`)],
    ['largest removeImage history, events', ...runs.map((r) => `${historyMax(r, 'removeImage')}`)],
    ['largest pull history, events', ...runs.map((r) => `${historyMax(r, 'pullImage')} (${fmt(historyBytes(r, 'pullImage') / 1024, 0)} KiB)`)],
    ['PostgreSQL rows added per container', ...runs.map((r) => both(r, pgAdded, 2))],
    ['Temporal rows added per container', ...runs.map((r) => both(r, tAdded, 2))],
    ['PostgreSQL rows/container (all), running', ...runs.map((r) => both(r, (x) => pgRows(x, 'running'), 2))],
    ['PostgreSQL rows/container (all), after release', ...runs.map((r) => both(r, (x) => pgRows(x, 'afterRelease'), 2))],
    ['Temporal rows/container (all), running', ...runs.map((r) => both(r, (x) => tRows(x, 'running'), 2))],
    ['Temporal rows/container (all), after release', ...runs.map((r) => both(r, (x) => tRows(x, 'afterRelease'), 2))],
    ['control worker peak RSS, MB', ...runs.map((r) => both(r, (x) => proc(x, 'control')?.peakRssMb ?? Number.NaN, 0))],
    ['control worker CPU ms/container, create', ...runs.map((r) => both(r, (x) => (1000 * cpu(proc(x, 'control'), 'create')) / x.create.ok, 0))],
    ['control worker CPU s, create / release', ...runs.map((r) => `${fmt(cpu(proc(r, 'control'), 'create'))} / ${fmt(cpu(proc(r, 'control'), 'release'))}`)],
    ['control worker RSS added by creation, KB/container', ...runs.map((r) => both(r, (x) => rssPerContainer(x, 'control'), 0))],
    ['control worker peak CPU %', ...runs.map((r) => fmt(proc(r, 'control')?.peakCpuPercent ?? Number.NaN, 0))],
    ['host worker peak RSS, MB (max)', ...runs.map((r) => both(r, (x) => Math.max(...hostWorkers(x).map((p) => p.peakRssMb)), 0))],
    ['host worker CPU s, create (each, mean)', ...runs.map((r) => both(r, (x) => hostWorkers(x).reduce((a, p) => a + cpu(p, 'create'), 0) / hostWorkers(x).length, 1))],
    ['host workers CPU ms/container, create (all)', ...runs.map((r) => both(r, (x) => (1000 * hostWorkers(x).reduce((a, p) => a + cpu(p, 'create'), 0)) / x.create.ok, 0))],
    ['host workers CPU s, create (all)', ...runs.map((r) => both(r, (x) => hostWorkers(x).reduce((a, p) => a + cpu(p, 'create'), 0), 1))],
    ['API peak RSS, MB / CPU s create', ...runs.map((r) => `${fmt(proc(r, 'api')?.peakRssMb ?? Number.NaN, 0)} / ${fmt(cpu(proc(r, 'api'), 'create'))}`)],
    ['dockerd peak RSS, MB (max)', ...runs.map((r) => fmt(Math.max(...r.processes.filter((p) => p.name.startsWith('dockerd-')).map((p) => p.peakRssMb)), 0))],
    ['load average (1 min) at start', ...runs.map((r) => fmt(r.loadAverageAtStart, 2))],
  ]);
  for (const r of runs) {
    console.log(`\nN = ${r.hosts}: processes (peak RSS MB, peak CPU %, CPU s by phase)`);
    for (const p of r.processes) {
      const phases = Object.entries(p.cpuSecondsByPhase).map(([k, v]) => `${k} ${fmt(v)}`).join(', ');
      const rss = Object.entries(p.rssMbAtEndOf).map(([k, v]) => `${k} ${fmt(v, 0)}`).join(', ');
      console.log(`  ${p.name.padEnd(10)} ${fmt(p.peakRssMb, 0).padStart(5)} MB  ${fmt(p.peakCpuPercent, 0).padStart(4)} %  CPU s: ${phases}; RSS MB at the end of: ${rss}`);
    }
    const t = r.temporalRows;
    console.log(`  Temporal rows (${'error' in t ? `unreadable: ${t.error}` : t.source}):`, 'error' in t ? '' : JSON.stringify(t.running));
    console.log('  PostgreSQL rows, running:', JSON.stringify(r.postgresRows.running));
    if (r.create.failures.length) console.log('  failures (first 10):', r.create.failures);
  }
}

// The JSON is written after each N, so that an interrupted run keeps what it measured.
await mkdir(DIR, { recursive: true });
const file = join(DIR, `results-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
const results: RunFigures[] = [];
for (const [round, hosts] of HOST_COUNTS.entries()) {
  results.push(await runOnce(hosts, round));
  await writeFile(file, `${JSON.stringify({ at: new Date().toISOString(), containers: CONTAINERS, users: USERS, concurrency: CONCURRENCY, runs: results }, null, 2)}\n`);
}
report(results);
console.log(`\nfigures: ${file}`);
