/**
 * docker-compose.yml boots, and the system it starts works: Berth's image is built from the
 * Dockerfile (on a Debian base made here: no registry image can be pulled on these machines),
 * Debian's docker-compose (1.29) starts the compose file's Berth services (migrate, api,
 * worker-control, worker-host) and what they depend on, on a Docker daemon this test starts,
 * and then, through the composed API's published port only: log in, pull an image from a
 * registry, run a container whose published port answers, read its logs (the API calls the
 * host worker's stream endpoint by its service name), run a DCU task and download its archive
 * from the presigned URL (MinIO's published address).
 *
 * What is not the real thing: the infrastructure images the compose file names (postgres,
 * temporalio/server, temporalio/admin-tools, quay.io/minio/minio) are replaced, through an
 * override file that sets only `image:`, by stand-ins built here that honour the same
 * entrypoints, environment and healthcheck tools (test/support/compose-standins/): Debian's
 * PostgreSQL 15; Temporal server v1.29.1 and its temporal-sql-tool as the stack's cluster mode
 * builds them, configured from the official config template with the compose file's environment
 * (so the schema job makes the real schema and the namespace job registers the namespace on a
 * fresh server), or, where they are not built, the temporal CLI's dev server (the same server
 * code, on SQLite: the schema job's temporal-sql-tool is then a stand-in that creates the
 * databases and checks the credentials, and no Temporal table is made); the stack's MinIO build.
 * Which Temporal ran is printed with the timings. Berth's own services, the compose file's
 * environment, healthchecks, dependencies, volumes and networks are used as they are.
 *
 * Cold (a fresh machine): the base (debootstrap, Node), the stand-ins and Berth's image are made;
 * warm: the cached base and the daemon's build cache make them seconds. The times of each step
 * are printed as diagnostics.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  DOCKER_HOST,
  ROOT,
  SOCKET,
  buildBerth,
  buildStandins,
  docker,
  ensureBase,
  removeBridge,
  run,
  startDaemon,
  stopDaemon,
  sweepDaemon,
  type TemporalStandin,
} from '../support/compose-boot.js';

/** Published ports listen here: a loopback address of its own, clear of the stack's 127.0.0.1 and 127.0.0.2. */
const ADDRESS = '127.0.14.1';
const API = `http://${ADDRESS}:8080`;
const PROJECT = 'berthboot';
const HOST_ID = 'compose';
/** The stack's own registry (127.0.0.1:5000): the test's daemon pulls from it as any daemon here does. */
const HTTPD = '127.0.0.1:5000/library/httpd:latest';

const secrets = {
  BERTH_ADMIN_PASSWORD: `admin-${randomBytes(9).toString('hex')}`,
  BERTH_POSTGRES_PASSWORD: randomBytes(18).toString('hex'),
  BERTH_MINIO_SECRET_KEY: randomBytes(18).toString('hex'),
  BERTH_INTERNAL_TOKEN: randomBytes(24).toString('hex'),
};

const timings: Array<[string, number]> = [];
let started = Date.now();
const lap = (what: string) => {
  timings.push([what, (Date.now() - started) / 1000]);
  started = Date.now();
};

let scratch = '';
let daemonStarted = false;
let temporalStandin: TemporalStandin | undefined;

function compose(args: string[], timeoutMs = 10 * 60_000) {
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    DOCKER_HOST,
    COMPOSE_HTTP_TIMEOUT: '300',
    ...secrets,
    BERTH_BIND_ADDRESS: ADDRESS,
    BERTH_PUBLISH_IP: ADDRESS,
    BERTH_MINIO_PUBLIC_ENDPOINT: `http://${ADDRESS}:9000`,
    BERTH_DOCKER_SOCKET: SOCKET,
    BERTH_HOST_ID: HOST_ID,
    BERTH_ALLOWED_REGISTRIES: '127.0.0.1:5000',
    BERTH_INTERNAL_REGISTRIES: '127.0.0.1:5000',
  };
  return run(
    'docker-compose',
    ['-p', PROJECT, '-f', 'docker-compose.yml', '-f', join(scratch, 'override.yml'), '--env-file', join(scratch, 'empty.env'), ...args],
    { cwd: ROOT, env, timeoutMs },
  );
}

/** The health of a compose service's container: healthy, unhealthy, starting, or its state when it has no healthcheck. */
async function health(service: string): Promise<string> {
  const { stdout: id } = await compose(['ps', '-q', service]);
  if (!id.trim()) return 'absent';
  const { stdout } = await docker(['inspect', '--format', '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}', id.trim()]);
  return stdout.trim();
}

async function logsOf(services: string[]) {
  try {
    return (await compose(['logs', '--no-color', '--tail', '60', ...services])).stdout;
  } catch (error) {
    return String(error);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function api(path: string, init: { method?: string; token?: string; body?: unknown; redirect?: RequestRedirect } = {}) {
  return fetch(`${API}${path}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: {
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    redirect: init.redirect ?? 'follow',
    signal: AbortSignal.timeout(5 * 60_000),
  });
}

async function json<T = Record<string, unknown>>(res: Response, status: number): Promise<T> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  return JSON.parse(text) as T;
}

async function login(username: string, password: string) {
  return (await json<{ token: string }>(await api('/api/v1/auth/login', { body: { username, password } }), 200)).token;
}

before(async () => {
  started = Date.now();
  scratch = await mkdtemp(join(tmpdir(), 'berth-compose-boot-'));
  await writeFile(join(scratch, 'empty.env'), '');
  await startDaemon();
  daemonStarted = true;
  await sweepDaemon(); // what a killed run may have left
  lap('daemon started');
  const base = await ensureBase();
  lap(`base image (${base.made})`);
  const { images: standins, built, temporal } = await buildStandins(base.image);
  temporalStandin = temporal;
  lap(`stand-in images (${built ? 'built' : 'cached'}; Temporal: ${temporal})`);
  await buildBerth(base.image, 'berth:local');
  lap("Berth's image");
  await writeFile(
    join(scratch, 'override.yml'),
    [
      '# The infrastructure images this machine cannot pull, replaced: only `image:` changes.',
      'services:',
      `  postgres: { image: "${standins.postgres}" }`,
      `  temporal-schema: { image: "${standins['admin-tools']}" }`,
      `  temporal: { image: "${standins.temporal}" }`,
      `  temporal-namespace: { image: "${standins['admin-tools']}" }`,
      `  temporal-ui: { image: "${standins.temporal}" }`,
      `  minio: { image: "${standins.minio}" }`,
      '',
    ].join('\n'),
  );
  // `up` starts the dependencies first and waits for each condition (healthy, completed).
  await compose(['up', '-d', '--no-build', 'api', 'worker-control', 'worker-host']);
  lap('compose up (dependencies healthy or completed)');
  const services = ['postgres', 'temporal', 'minio', 'api', 'worker-control', 'worker-host'];
  const deadline = Date.now() + 4 * 60_000;
  for (;;) {
    const states = await Promise.all(services.map(health));
    if (states.every((s) => s === 'healthy')) break;
    if (Date.now() > deadline || states.includes('unhealthy') || states.includes('exited')) {
      throw new Error(`not every service became healthy: ${services.map((s, i) => `${s}=${states[i]}`).join(', ')}\n${await logsOf(services)}`);
    }
    await sleep(1000);
  }
  lap('every service healthy');
});

after(async () => {
  try {
    if (daemonStarted && scratch) {
      await compose(['down', '-v', '--remove-orphans'], 5 * 60_000).catch((error: unknown) => console.error('compose down failed:', error));
      // Users' containers and networks are Berth's, not compose's: they go too.
      await sweepDaemon().catch((error: unknown) => console.error('sweeping the daemon failed:', error));
    }
  } finally {
    await stopDaemon();
    await removeBridge();
    if (scratch) await rm(scratch, { recursive: true, force: true });
    console.error(`compose-boot timings (s): ${timings.map(([what, s]) => `${what} ${s.toFixed(1)}`).join('; ')}`);
  }
});

test('the one-shot jobs completed and every long-running service is healthy', async () => {
  for (const job of ['temporal-schema', 'temporal-namespace', 'migrate']) {
    const { stdout: id } = await compose(['ps', '-q', job]);
    const { stdout } = await docker(['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', id.trim()]);
    assert.equal(stdout.trim(), 'exited 0', `${job}: ${await logsOf([job])}`);
  }
  if (temporalStandin === 'server') {
    // The real server runs on the schema the job made with the real temporal-sql-tool.
    const { stdout: pg } = await compose(['ps', '-q', 'postgres']);
    for (const db of ['temporal', 'temporal_visibility']) {
      const { stdout: version } = await docker(['exec', pg.trim(), 'psql', '-U', 'berth', '-d', db, '-tAc', 'SELECT curr_version FROM schema_version']);
      assert.match(version.trim(), /^\d+\.\d+$/, `${db} has a schema version`);
    }
  }
  // The host worker's readiness: Temporal, its worker and its Docker daemon.
  const { stdout: id } = await compose(['ps', '-q', 'worker-host']);
  const { stdout } = await docker(['exec', id.trim(), 'node', '-e', "fetch('http://127.0.0.1:9471/readyz').then(async (r) => console.log(r.status, await r.text()))"]);
  assert.match(stdout, /^200 /);
  assert.deepEqual(Object.keys(JSON.parse(stdout.slice(4)).checks).sort(), ['docker', 'temporal', 'worker']);
});

test('through the composed API: log in, pull, run a container whose port answers, read its logs, DCU and download', async () => {
  const admin = await login('admin', secrets.BERTH_ADMIN_PASSWORD);

  const hosts = await json<{ items: Array<{ id: string; status: string }> }>(await api('/api/v1/hosts', { token: admin }), 200);
  assert.deepEqual(
    hosts.items.map((h) => [h.id, h.status]),
    [[HOST_ID, 'up']],
  );

  const username = `compose-${randomBytes(4).toString('hex')}`;
  const password = `pw-${randomBytes(12).toString('hex')}`;
  await json(await api('/api/v1/users', { token: admin, body: { username, password, balance: 100_000 } }), 201);
  const token = await login(username, password);

  let t0 = Date.now();
  const image = await json<{ id: string; charged: number }>(await api('/api/v1/images/pull?wait=true', { token, body: { image: HTTPD, host: HOST_ID } }), 201);
  assert.ok(image.charged > 0, 'the pull is charged');
  timings.push(['pull', (Date.now() - t0) / 1000]);

  t0 = Date.now();
  const container = await json<{ id: string; hostIp: string; hostPort: number; state: string }>(
    await api('/api/v1/containers?wait=true', { token, body: { imageId: image.id, containerPort: 80 } }),
    201,
  );
  assert.equal(container.state, 'running');
  assert.equal(container.hostIp, ADDRESS);
  timings.push(['container start', (Date.now() - t0) / 1000]);
  const page = await fetch(`http://${container.hostIp}:${container.hostPort}/`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(page.status, 200);
  assert.match(await page.text(), /Berth httpd/);

  // Logs: the API asks the host worker's stream endpoint at worker-host:7070, on the compose network.
  let logs = '';
  for (let i = 0; i < 20 && !logs.trim(); i++) {
    const res = await api(`/api/v1/containers/${container.id}/logs?tail=100`, { token });
    logs = await res.text();
    assert.equal(res.status, 200, logs);
    if (!logs.trim()) await sleep(500);
  }
  assert.ok(logs.trim().length > 0, 'the container has logged its request');

  t0 = Date.now();
  const start = await json<{ code: number; data: { task_id: string } }>(
    await api('/api/dcu/start', { token, body: { username, docker_image_name: HTTPD, host: HOST_ID } }),
    200,
  );
  const taskId = start.data.task_id;
  let status: { state: string; sha256: string | null; compressed_bytes: number | null; error_message: string } | undefined;
  for (let i = 0; i < 600; i++) {
    status = (await json<{ data: NonNullable<typeof status> }>(await api(`/api/dcu/status/${taskId}`, { token }), 200)).data;
    if (status.state === 'completed' || status.state === 'failed') break;
    await sleep(500);
  }
  assert.equal(status?.state, 'completed', JSON.stringify(status));
  timings.push(['DCU', (Date.now() - t0) / 1000]);

  // The download link is presigned for MinIO's published address, which this client (a browser's stand-in) reaches.
  const redirect = await api(`/api/dcu/download/${taskId}`, { token, redirect: 'manual' });
  assert.equal(redirect.status, 302, await redirect.text());
  const location = new URL(redirect.headers.get('location')!);
  assert.equal(location.host, `${ADDRESS}:9000`);
  const archive = await fetch(location, { signal: AbortSignal.timeout(60_000) });
  assert.equal(archive.status, 200);
  const bytes = Buffer.from(await archive.arrayBuffer());
  assert.ok(status);
  assert.equal(bytes.length, status.compressed_bytes);
  assert.equal(createHash('sha256').update(bytes).digest('hex'), status.sha256, 'the archive the task recorded');
  assert.ok(gunzipSync(bytes).includes(Buffer.from('manifest.json')), 'a `docker save` tar inside');
});
