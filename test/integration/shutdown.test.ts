/**
 * Graceful shutdown of the API process (api/server.ts, run as the stack runs it): on SIGTERM
 * it stops accepting connections, lets the request in flight finish, and exits 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { eq } from 'drizzle-orm';
import { images } from '../../db/schema.js';
import { bearer, buildTestApp, createUser, testDb } from '../support/app.js';
import { pushUniqueImage } from '../support/images.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('SIGTERM: the API stops accepting, lets the request in flight finish, and exits 0', { timeout: 180_000 }, async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 100_000 });
  // A pull that takes a while: a fresh 40 MB layer.
  const reference = await pushUniqueImage('shutdown', 40 * 1024);

  const port = await freePort();
  const api = spawn(process.execPath, ['--import', 'tsx', 'api/server.ts'], {
    cwd: root,
    env: { ...process.env, BERTH_API_HOST: '127.0.0.1', BERTH_API_PORT: String(port), BERTH_LOG_LEVEL: 'warn', BERTH_SHUTDOWN_GRACE: '10m' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  api.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => api.on('exit', (code) => resolve(code)));
  t.after(() => {
    if (api.exitCode === null) api.kill('SIGKILL');
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if ((await fetch(`${base}/healthz`).then((r) => r.ok, () => false))) break;
    assert.ok(i < 300, `the API did not start: ${stderr}`);
    await sleep(100);
  }

  // The pull in flight when the signal arrives.
  let answeredAt = 0;
  const inFlight = fetch(`${base}/api/v1/images/pull?wait=true`, {
    method: 'POST',
    headers: { ...bearer(user.token), 'content-type': 'application/json' },
    body: JSON.stringify({ image: reference, host: 'host-b' }),
  }).then(async (res) => {
    answeredAt = Date.now();
    return { status: res.status, connection: res.headers.get('connection'), body: await res.text() };
  });
  await sleep(300);
  assert.equal(answeredAt, 0, 'the pull is still in flight when the signal is sent');
  api.kill('SIGTERM');
  const signalledAt = Date.now();

  // No new connection is accepted meanwhile.
  await sleep(200);
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
