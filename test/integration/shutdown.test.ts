/**
 * Graceful shutdown of the API process (api/server.ts, run as the stack runs it): on SIGTERM
 * it stops accepting connections, lets the request in flight finish, and exits 0. Each step
 * waits for what shows it happened (a log line of the API, its listening socket, the pull's
 * activity in Temporal, its exit), never for a fixed time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { freePort } from '../support/ports.js';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { eq } from 'drizzle-orm';
import { images, pullSlots } from '../../db/schema.js';
import { connectTemporal } from '../../core/temporal.js';
import { baseConfig, bearer, buildTestApp, createUser, testDb } from '../support/app.js';
import { pushUniqueImage } from '../support/images.js';
import { eventually } from '../support/wait.js';

const root = fileURLToPath(new URL('../..', import.meta.url));


type LogEntry = { msg?: string; [key: string]: unknown };

/**
 * The API's log (pino's JSON lines on its stdout): waitFor(what, match) resolves with the first
 * line, seen already or to come, that `match` accepts; it fails naming `what` when the process
 * exits first or after `ms`.
 */
function apiLog(child: ChildProcess, stderr: () => string) {
  const seen: LogEntry[] = [];
  const waiters = new Set<(entry: LogEntry | null) => void>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let entry: LogEntry;
    try {
      entry = JSON.parse(line) as LogEntry;
    } catch {
      entry = { msg: line };
    }
    seen.push(entry);
    for (const waiter of waiters) waiter(entry);
  });
  child.on('exit', () => {
    for (const waiter of waiters) waiter(null);
  });
  return {
    waitFor(what: string, match: (entry: LogEntry) => boolean, ms = 60_000): Promise<LogEntry> {
      const found = seen.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const done = (error: Error | null, entry?: LogEntry) => {
          clearTimeout(timer);
          waiters.delete(waiter);
          if (error) reject(error);
          else resolve(entry!);
        };
        const waiter = (entry: LogEntry | null) => {
          if (entry === null) done(new Error(`the API exited (code ${child.exitCode}) before ${what}; stderr: ${stderr()}`));
          else if (match(entry)) done(null, entry);
        };
        const timer = setTimeout(() => done(new Error(`timed out after ${ms} ms waiting for ${what}; stderr: ${stderr()}`)), ms);
        waiters.add(waiter);
      });
    },
  };
}

/** Whether something listens on 127.0.0.1:`port` (TCP, state LISTEN in /proc/net/tcp). */
async function listening(port: number): Promise<boolean> {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const table = await readFile('/proc/net/tcp', 'utf8');
  return table.split('\n').some((line) => {
    const [, address, , state] = line.trim().split(/\s+/);
    return address === local && state === '0A';
  });
}

/** Polls `probe` every `everyMs` until it holds; fails naming `what` after `ms`. */
async function until(what: string, probe: () => Promise<boolean>, ms: number, everyMs = 10): Promise<void> {
  for (const end = Date.now() + ms; ; await new Promise((resolve) => setTimeout(resolve, everyMs))) {
    if (await probe()) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
  }
}

test('SIGTERM: the API stops accepting, lets the request in flight finish, and exits 0', { timeout: 180_000 }, async (t) => {
  const app = await buildTestApp(t);
  const temporal = await connectTemporal(baseConfig.temporal);
  t.after(() => temporal.connection.close());
  const user = await createUser(app, { balance: 100_000 });
  // A pull that takes a while: a fresh 40 MB layer.
  const reference = await pushUniqueImage('shutdown', 40 * 1024);

  const port = await freePort();
  // At info, the API logs that it listens and that it shuts down.
  const api = spawn(process.execPath, ['--import', 'tsx', 'api/server.ts'], {
    cwd: root,
    env: { ...process.env, BERTH_API_HOST: '127.0.0.1', BERTH_API_PORT: String(port), BERTH_LOG_LEVEL: 'info', BERTH_SHUTDOWN_GRACE: '10m' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  api.stderr.on('data', (chunk) => (stderr += chunk));
  const log = apiLog(api, () => stderr);
  const exited = new Promise<number | null>((resolve) => api.on('exit', (code) => resolve(code)));
  t.after(() => {
    if (api.exitCode === null) api.kill('SIGKILL');
  });
  const base = `http://127.0.0.1:${port}`;
  await log.waitFor('the API to listen', (e) => e.msg?.startsWith('Server listening at') ?? false);
  assert.equal((await fetch(`${base}/healthz`)).status, 200, 'the API answers once it listens');

  // The pull in flight when the signal arrives: its workflow runs the Docker pull on the host.
  let answeredAt = 0;
  const inFlight = fetch(`${base}/api/v1/images/pull?wait=true`, {
    method: 'POST',
    headers: { ...bearer(user.token), 'content-type': 'application/json' },
    body: JSON.stringify({ image: reference, host: 'host-b' }),
  }).then(async (res) => {
    answeredAt = Date.now();
    return { status: res.status, connection: res.headers.get('connection'), body: await res.text() };
  });
  /** Fails at once, with the answer, should the pull be answered before the signal. */
  const notAnswered = async () => {
    if (answeredAt) assert.fail(`the pull was answered before the signal: ${JSON.stringify(await inFlight)}`);
  };
  const pullId = await eventually('the pull’s slot (taken as its workflow starts)', async () => {
    await notAnswered();
    return (await testDb().db.select().from(pullSlots).where(eq(pullSlots.userId, user.id)))[0]?.pullId;
  }, 60);
  await until('the pull activity to run on host-b', async () => {
    await notAnswered();
    const description = await temporal.workflow.getHandle(pullId).describe().catch(() => undefined);
    return (description?.raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'ensureImage' && a.lastStartedTime);
  }, 60_000, 20);
  assert.equal(answeredAt, 0, 'the pull is still in flight when the signal is sent');
  api.kill('SIGTERM');
  const signalledAt = Date.now();

  // No new connection is accepted meanwhile: the API took the signal and closed its listener.
  await log.waitFor('the API to log that it shuts down', (e) => e.msg === 'shutting down' && e.signal === 'SIGTERM', 30_000);
  await until('the API to close its listening socket', async () => !(await listening(port)), 30_000);
  t.diagnostic(`listener closed ${Date.now() - signalledAt} ms after the signal`);
  await assert.rejects(fetch(`${base}/healthz`), 'a closing API accepts no new request');
  assert.equal(answeredAt, 0, 'the pull was still in flight while new requests were refused');

  const answer = await inFlight;
  t.diagnostic(`answered ${answeredAt - signalledAt} ms after the signal`);
  assert.equal(answer.status, 201, answer.body);
  assert.ok(answeredAt > signalledAt, 'answered after the signal');
  assert.equal(JSON.parse(answer.body).reference, reference);
  assert.equal(answer.connection, 'close', 'the answer ends its keep-alive connection, which would hold the server open');
  assert.equal(await exited, 0, `exit code (stderr: ${stderr})`);
  const exitedAfter = Date.now() - answeredAt;
  t.diagnostic(`exited ${exitedAfter} ms after the answer`);
  // Well before Fastify's 72 s keep-alive timeout, and before the 10-minute grace set above.
  assert.ok(exitedAfter < 30_000, `exited ${exitedAfter} ms after its last answer`);
  const [row] = await testDb().db.select().from(images).where(eq(images.reference, reference));
  assert.equal(row?.userId, user.id, 'the record of the finished pull is there');
});
