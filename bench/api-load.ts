/**
 * Benchmark: the API under load. 100 concurrent clients (autocannon) on mixed reads — list
 * images, list containers, get a container, a ledger page — with the tokens of several users
 * (sessions and API keys), against a running API over HTTP; then the same while pulls and DCU
 * tasks run. Beside it, in the same run, the same server's floor: `GET /healthz` (the same
 * Fastify and hooks, no authentication, no database), so the ratio says what a read costs
 * beyond the framework.
 *
 *   set -a; . ~/.local/state/berth/berth.env; set +a
 *   node --import tsx bench/api-load.ts [--port 8080] [--duration 30] [--rate 500] [--json api-load.json]
 *     [--baseline-port P]   also measure the reads on the API at port P (another build on the same
 *                           stack, e.g. main's), alternating, and print the ratios
 *     [--pulls 20] [--dcu 10] [--users 6] [--connections 100]
 *
 * Phases, each `--duration` seconds:
 *   floor max       GET /healthz, as fast as it answers (the baseline), `--connections` clients
 *                   (default 100, autocannon: each sends its next request when its answer came)
 *   floor @rate     GET /healthz at `--rate`: what the machine alone adds to an answer's time
 *   reads max       the mixed reads, as fast as they answer: the maximum throughput (autocannon)
 *   reads @rate     the mixed reads at `--rate` requests per second: the goal is p99 ≤ 50 ms at
 *                   500 req/s
 * The @rate phases are open-loop and evenly paced (loadtest's requestsPerSecond: one request
 * every 1000/rate ms, whether or not earlier answers came, over keep-alive connections opened as
 * needed). autocannon's own rate mode (overallRate) refills each connection's quota with a 1-s
 * timer, so each second's requests leave as one burst and its p99 is that burst's queue.
 *   then, while `--pulls` pull lanes (pull a fresh image, remove it, again) and `--dcu` DCU lanes
 *   (package an image, wait for the end, again) keep running through the API measured (with
 *   --baseline-port, through each API during its own phases): floor max, reads max, reads @rate.
 * Everything it needs (users with images, containers and ledger entries, API keys, images pushed
 * to the registry) is made before the timed part and removed after it. Prints a table and writes
 * the figures as JSON. Any answer but a 2xx in a timed phase is counted and reported (non2xx).
 *
 * Rate limits apply to mutating routes only, so the reads are never limited; the set-up and the
 * background lanes wait out a 429 (Retry-After) and count it.
 */
import { parseArgs } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import autocannon from 'autocannon';
import * as loadtest from 'loadtest';
import { pushImage } from '../test/support/images.js';
import { pool, sleep } from './support.js';

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.BERTH_API_PORT ?? '8080' },
    host: { type: 'string', default: '127.0.0.1' },
    duration: { type: 'string', default: '30' },
    connections: { type: 'string', default: '100' },
    rate: { type: 'string', default: '500' },
    users: { type: 'string', default: '6' },
    pulls: { type: 'string', default: '20' },
    dcu: { type: 'string', default: '10' },
    'docker-host': { type: 'string', default: 'host-a' },
    json: { type: 'string', default: 'api-load.json' },
    'baseline-port': { type: 'string' },
  },
});
const int = (name: keyof typeof opts, min: number) => {
  const n = Number(opts[name]);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got ${String(opts[name])}`);
  return n;
};
const PORT = int('port', 1);
const DURATION = int('duration', 1);
const CONNECTIONS = int('connections', 1);
const RATE = int('rate', 1);
const USERS = int('users', 1);
const PULL_LANES = int('pulls', 0);
const DCU_LANES = int('dcu', 0);
const DOCKER_HOST = opts['docker-host'];
const BASE = `http://${opts.host}:${PORT}`;
/** Another API on the same stack (say the stack's own, on main's code): the reads are measured on both, alternating. */
const BASELINE = opts['baseline-port'] ? `http://${opts.host}:${int('baseline-port', 1)}` : null;
const BALANCE = 100_000_000;

// ---------------------------------------------------------------------------------------
// HTTP for the set-up and the background lanes (not timed)

let waited429 = 0;
async function call<T = unknown>(method: string, path: string, token: string | null, body?: unknown, ok = [200, 201, 202, 204], base = BASE): Promise<T> {
  for (;;) {
    const res = await fetch(base + path, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (res.status === 429) {
      waited429++;
      await sleep(1000 * Math.max(1, Number(res.headers.get('retry-after')) || 1));
      continue;
    }
    if (!ok.includes(res.status)) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

interface User {
  id: string;
  username: string;
  token: string;
  apiKey: string;
  imageIds: string[];
  containerIds: string[];
}

async function login(username: string, password: string): Promise<string> {
  return (await call<{ token: string }>('POST', '/api/v1/auth/login', null, { username, password })).token;
}

async function makeUser(admin: string, credits: number): Promise<User> {
  const username = `load-${randomUUID().slice(0, 12)}`;
  const password = `pw-${randomUUID()}`;
  const { id } = await call<{ id: string }>('POST', '/api/v1/users', admin, { username, password, balance: BALANCE });
  for (let i = 0; i < credits; i++) await call('POST', `/api/v1/users/${id}/credit`, admin, { amount: 100 + i, reason: `load bench credit ${i}` });
  const token = await login(username, password);
  const { key } = await call<{ key: string }>('POST', '/api/v1/users/me/api-keys', token, {
    name: 'load-bench',
    scopes: ['images:read', 'containers:read', 'ledger:read', 'images:write', 'dcu'],
  });
  return { id, username, token, apiKey: key, imageIds: [], containerIds: [] };
}

const pullWait = (token: string, image: string, base = BASE) =>
  call<{ id: string }>('POST', '/api/v1/images/pull?wait=true', token, { image, host: DOCKER_HOST }, undefined, base);

// ---------------------------------------------------------------------------------------
// The timed part

/** The i-th mixed read: users, credentials and routes in rotation. */
function mixedRead(users: User[], i: number): { path: string; authorization: string } {
  const user = users[i % users.length]!;
  // Half the requests carry the session token, half the API key (both lookups are measured).
  const credential = Math.floor(i / users.length) % 2 === 0 ? user.token : user.apiKey;
  const kind = Math.floor(i / (2 * users.length)) % 4;
  const path =
    kind === 0
      ? '/api/v1/images?pageSize=20'
      : kind === 1
        ? '/api/v1/containers?pageSize=20'
        : kind === 2
          ? `/api/v1/containers/${user.containerIds[i % user.containerIds.length]!}`
          : '/api/v1/users/me/ledger?pageSize=20';
  return { path, authorization: `Bearer ${credential}` };
}

/** What a phase sends: `GET /healthz`, or the mixed reads of these users. */
type Load = { kind: 'floor' } | { kind: 'reads'; users: User[] };

/** autocannon's request for a load: one after another on each connection. */
function cannonRequest(load: Load): autocannon.Request {
  if (load.kind === 'floor') return { method: 'GET', path: '/healthz' };
  let n = 0;
  return {
    method: 'GET',
    setupRequest: (request) => {
      const { path, authorization } = mixedRead(load.users, n++);
      return { ...request, path, headers: { ...request.headers, authorization } };
    },
  };
}

interface Figures {
  phase: string;
  /** 'api', or 'baseline' (the API at --baseline-port). */
  api: 'api' | 'baseline';
  background: boolean;
  targetRate: number | null;
  requests: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

/** As fast as it answers: autocannon, `--connections` clients. */
async function maxPhase(load: Load, api: Figures['api']): Promise<Omit<Figures, 'phase' | 'api' | 'background'>> {
  const result = await autocannon({ url: api === 'api' ? BASE : BASELINE!, connections: CONNECTIONS, duration: DURATION, requests: [cannonRequest(load)] });
  return {
    targetRate: null,
    requests: result.requests.total,
    rps: result.requests.total / DURATION,
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    max: result.latency.max,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

/** loadtest 8's promise form and its result (its bundled types still describe the callback form). */
const loadTest = loadtest.loadTest as unknown as (options: loadtest.LoadTestOptions & { maxSeconds: number }) => Promise<{
  totalRequests: number;
  totalErrors: number;
  maxLatencyMs: number;
  percentiles: Record<50 | 90 | 95 | 99, number>;
  /** Failures by the answer's status code (400 and above), or '-1' for a connection error or a timeout. */
  errorCodes: Record<string, number>;
}>;

/** At `rate` requests per second, evenly paced and open-loop: loadtest's requestsPerSecond. */
async function pacedPhase(load: Load, rate: number, api: Figures['api']): Promise<Omit<Figures, 'phase' | 'api' | 'background'>> {
  let n = 0;
  const result = await loadTest({
    url: `${api === 'api' ? BASE : BASELINE!}/healthz`,
    requestsPerSecond: rate,
    maxSeconds: DURATION,
    agentKeepAlive: true,
    timeout: 10_000,
    quiet: true,
    // Each request's own path and credential (params is this request's copy of the URL's parts).
    // loadtest 8 calls it with (options, params, request, callback), whatever its types' names say.
    requestGenerator: (_options: unknown, params: { path: string; headers: Record<string, string> }, request: (p: unknown, cb: unknown) => { end(): void }, callback: unknown) => {
      if (load.kind === 'reads') {
        const read = mixedRead(load.users, n++);
        params.path = read.path;
        params.headers.authorization = read.authorization;
      }
      const req = request(params, callback);
      req.end();
      return req;
    },
  });
  const failed = Object.entries(result.errorCodes).reduce((sum, [code, count]) => sum + (/^\d+$/.test(code) ? count : 0), 0);
  return {
    targetRate: rate,
    requests: result.totalRequests,
    rps: result.totalRequests / DURATION,
    p50: result.percentiles[50],
    p90: result.percentiles[90],
    p99: result.percentiles[99],
    max: result.maxLatencyMs,
    non2xx: failed,
    errors: result.totalErrors - failed,
    timeouts: 0,
  };
}

async function phase(name: string, background: boolean, load: Load, rate: number | null, api: Figures['api'] = 'api'): Promise<Figures> {
  const figures: Figures = { phase: name, api, background, ...(rate ? await pacedPhase(load, rate, api) : await maxPhase(load, api)) };
  console.log(
    `  ${api === 'baseline' ? `[baseline :${opts['baseline-port']}] ` : ''}${name}${background ? ' (with pulls and DCU)' : ''}: ${figures.rps.toFixed(0)} req/s, p50 ${figures.p50} ms, p99 ${figures.p99} ms` +
      (figures.non2xx + figures.errors + figures.timeouts > 0 ? `, non2xx ${figures.non2xx}, errors ${figures.errors}, timeouts ${figures.timeouts}` : ''),
  );
  return figures;
}

// ---------------------------------------------------------------------------------------
// The background: pull lanes and DCU lanes

interface Background {
  stop(): Promise<{ pulls: number; removals: number; dcuTasks: number; failures: string[] }>;
}

/** Lanes through the API at `base` (the one being measured: it serves them too). */
function startBackground(base: string, pullers: Array<{ user: User; image: string }>, packers: Array<{ user: User; image: string }>): Background {
  let running = true;
  const counts = { pulls: 0, removals: 0, dcuTasks: 0, failures: [] as string[] };
  const note = (error: unknown) => void (counts.failures.length < 20 && counts.failures.push(error instanceof Error ? error.message : String(error)));
  const pullLane = async ({ user, image }: { user: User; image: string }) => {
    while (running) {
      try {
        const pulled = await pullWait(user.token, image, base);
        counts.pulls++;
        // Removing it (the only owner) takes it off the host: the next pull is a real pull again.
        await call('DELETE', `/api/v1/images/${pulled.id}`, user.token, undefined, undefined, base);
        counts.removals++;
      } catch (error) {
        note(error);
        await sleep(1000);
      }
    }
  };
  const dcuLane = async ({ user, image }: { user: User; image: string }) => {
    while (running) {
      try {
        const started = await call<{ data: { task_id: string } }>(
          'POST',
          '/api/dcu/start',
          user.token,
          { username: user.username, docker_image_name: image, host: DOCKER_HOST },
          undefined,
          base,
        );
        for (;;) {
          await sleep(250);
          const { data } = await call<{ data: { state: string } }>('GET', `/api/dcu/status/${started.data.task_id}`, user.token, undefined, undefined, base);
          if (['completed', 'failed', 'cancelled', 'expired'].includes(data.state)) {
            if (data.state === 'completed') counts.dcuTasks++;
            else note(new Error(`DCU task ${started.data.task_id}: ${data.state}`));
            break;
          }
        }
      } catch (error) {
        note(error);
        await sleep(1000);
      }
    }
  };
  const lanes = [...pullers.map(pullLane), ...packers.map(dcuLane)];
  return {
    async stop() {
      running = false;
      await Promise.all(lanes);
      return counts;
    },
  };
}

// ---------------------------------------------------------------------------------------

function printTable(rows: Figures[], floor: Map<boolean, Figures>) {
  const head = ['phase', 'api', 'load', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'non2xx', 'req/s ÷ floor', 'p99 ÷ floor', 'req/s ÷ baseline', 'p99 ÷ baseline'];
  const lines = [head];
  for (const r of rows) {
    const f = floor.get(r.background)!;
    const b = r.api === 'api' ? rows.find((o) => o.api === 'baseline' && o.phase === r.phase && o.background === r.background) : undefined;
    lines.push([
      r.phase,
      r.api === 'api' ? `:${PORT}` : `:${opts['baseline-port']} (baseline)`,
      r.background ? 'pulls + DCU' : 'quiet',
      r.rps.toFixed(0),
      String(r.p50),
      String(r.p99),
      String(r.max),
      String(r.non2xx + r.errors + r.timeouts),
      (r.rps / f.rps).toFixed(2),
      (r.p99 / Math.max(1, f.p99)).toFixed(1),
      b ? (r.rps / b.rps).toFixed(2) : '',
      b ? (r.p99 / Math.max(1, b.p99)).toFixed(2) : '',
    ]);
  }
  const widths = head.map((_, c) => Math.max(...lines.map((l) => l[c]!.length)));
  for (const [i, line] of lines.entries()) {
    console.log(line.map((cell, c) => (c < 3 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}

async function main() {
  const adminUser = process.env.BERTH_ADMIN_USERNAME ?? 'admin';
  const adminPassword = process.env.BERTH_ADMIN_PASSWORD;
  if (!adminPassword) throw new Error('BERTH_ADMIN_PASSWORD is not set: set -a; . ~/.local/state/berth/berth.env; set +a');
  const admin = await login(adminUser, adminPassword);
  const readers: User[] = [];
  const workers: User[] = [];
  const pushed: string[] = [];
  try {
    // ---- set-up, untimed
    const setupStart = performance.now();
    await pool(Array.from({ length: USERS }), 3, async () => void readers.push(await makeUser(admin, 10)));
    const seeded = ['127.0.0.1:5000/library/busybox:1.35', '127.0.0.1:5000/library/httpd:latest'];
    await pool(readers, 3, async (user) => {
      for (const image of seeded) user.imageIds.push((await pullWait(user.token, image)).id);
      // httpd, as the tests run it; a port another process took meanwhile (a 502) is tried again.
      for (let c = 0; c < 2; c++) {
        let created: { id: string } | undefined;
        for (let attempt = 1; !created; attempt++) {
          created = await call<{ id: string }>('POST', '/api/v1/containers?wait=true', user.token, { imageId: user.imageIds[1]!, memoryMb: 16 }).catch((error: unknown) => {
            if (attempt >= 3 || !String(error).includes(': 502 ')) throw error;
            return undefined;
          });
        }
        user.containerIds.push(created.id);
      }
    });
    const laneUsers = Math.max(PULL_LANES, DCU_LANES);
    await pool(Array.from({ length: laneUsers }), 3, async () => void workers.push(await makeUser(admin, 0)));
    const images = Array.from({ length: PULL_LANES + DCU_LANES }, (_, i) => `127.0.0.1:5000/bench-load/img-${randomUUID().slice(0, 8)}:v${i}`);
    // Pull lanes pull small images (256 KiB of their own); DCU lanes package 8 MiB of their own.
    await pool(images, 4, async (ref, i) => {
      const [repo, tag] = ref.split(/:(?=[^:/]+$)/) as [string, string];
      pushed.push(await pushImage(repo, tag, i < PULL_LANES ? 256 : 8192));
    });
    const pullers = images.slice(0, PULL_LANES).map((image, i) => ({ user: workers[i % workers.length]!, image }));
    const packers = images.slice(PULL_LANES).map((image, i) => ({ user: workers[i % workers.length]!, image }));
    console.log(
      `set-up (untimed): ${((performance.now() - setupStart) / 1000).toFixed(1)} s — ${USERS} reading users (2 images, 2 containers, 10+ ledger entries each), ` +
        `${laneUsers} lane users, ${images.length} images pushed`,
    );

    // ---- timed phases
    const floorRequest: Load = { kind: 'floor' };
    const rows: Figures[] = [];
    const floor = new Map<boolean, Figures>();
    console.log(`quiet: ${CONNECTIONS} connections, ${DURATION} s each`);
    floor.set(false, await phase('floor max (GET /healthz)', false, floorRequest, null));
    rows.push(floor.get(false)!);
    // The floor at the rate: what the machine (scheduling, loopback TCP, the load generator) adds to any answer.
    rows.push(await phase(`floor @${RATE}/s`, false, floorRequest, RATE));
    /** The reads, max and held at the rate; beside the baseline API when there is one, alternating which goes first. */
    const done = { pulls: 0, removals: 0, dcuTasks: 0, failures: [] as string[] };
    const reads = async (background: boolean) => {
      for (const [i, [name, rate]] of ([['reads max', null], [`reads @${RATE}/s`, RATE]] as const).entries()) {
        const order: Array<Figures['api']> = BASELINE ? (i % 2 === 0 ? ['baseline', 'api'] : ['api', 'baseline']) : ['api'];
        for (const api of order) {
          // The lanes go through the API being measured, as its users' pulls and DCU tasks would.
          const lanes = background ? startBackground(api === 'api' ? BASE : BASELINE!, pullers, packers) : null;
          if (lanes) await sleep(3000); // the lanes are under way
          rows.push(await phase(name, background, { kind: 'reads', users: readers }, rate, api));
          if (lanes) {
            const counts = await lanes.stop();
            done.pulls += counts.pulls;
            done.removals += counts.removals;
            done.dcuTasks += counts.dcuTasks;
            done.failures.push(...counts.failures.slice(0, 20 - done.failures.length));
          }
        }
      }
    };
    await reads(false);

    console.log(`with ${PULL_LANES} pull lanes and ${DCU_LANES} DCU lanes running through the API measured`);
    const lanes = startBackground(BASE, pullers, packers);
    await sleep(3000);
    floor.set(true, await phase('floor max (GET /healthz)', true, floorRequest, null));
    rows.push(floor.get(true)!);
    rows.push(await phase(`floor @${RATE}/s`, true, floorRequest, RATE));
    const floorCounts = await lanes.stop();
    done.pulls += floorCounts.pulls;
    done.removals += floorCounts.removals;
    done.dcuTasks += floorCounts.dcuTasks;
    await reads(true);
    console.log(`background during the loaded phases: ${done.pulls} pulls, ${done.removals} removals, ${done.dcuTasks} DCU tasks completed; ${done.failures.length} failures`);
    for (const failure of done.failures) console.log(`  failure: ${failure}`);

    console.log('');
    printTable(rows, floor);
    const held = rows.filter((r) => r.targetRate !== null && r.api === 'api' && r.phase.startsWith('reads'));
    for (const r of held) {
      const met = r.p99 <= 50 && r.rps >= 0.95 * RATE && r.non2xx + r.errors + r.timeouts === 0;
      console.log(`goal p99 ≤ 50 ms at ${RATE} req/s (${r.background ? 'with pulls and DCU' : 'quiet'}): ${met ? 'met' : 'NOT met'} (${r.rps.toFixed(0)} req/s, p99 ${r.p99} ms)`);
    }
    if (waited429 > 0) console.log(`set-up and lanes waited out ${waited429} rate-limit answers (429)`);
    await writeFile(
      opts.json,
      JSON.stringify(
        { date: new Date().toISOString(), api: BASE, baseline: BASELINE, connections: CONNECTIONS, durationSeconds: DURATION, rate: RATE, users: USERS, pullLanes: PULL_LANES, dcuLanes: DCU_LANES, phases: rows, background: done },
        null,
        2,
      ),
    );
    console.log(`figures written to ${opts.json}`);
  } finally {
    // ---- clean-up: containers, then images (their removal refunds and frees the hosts)
    await pool(readers, 3, async (user) => {
      for (const id of user.containerIds) await call('DELETE', `/api/v1/containers/${id}`, user.token, undefined, [200, 202, 204, 404]).catch(() => undefined);
    });
    await pool([...readers, ...workers], 3, async (user) => {
      const { items } = await call<{ items: Array<{ id: string }> }>('GET', '/api/v1/images?pageSize=200', user.token);
      for (const image of items) await call('DELETE', `/api/v1/images/${image.id}`, user.token, undefined, [200, 202, 204, 404, 409]).catch(() => undefined);
    });
  }
}

await main();
