/**
 * Records the workflow histories that test/unit/replay.test.ts replays (test/replay/*.json): a
 * workflow that runs for months must keep replaying on the code that replaces the code that
 * started it, so every change of the commands a workflow emits needs patched(), and these
 * histories, made by the code before the change, prove it has one.
 *
 * The committed fixtures were recorded from commit 71430c0 (the code before issue 12's refactor):
 *
 *   bash scripts/stack.sh up      # the real stack; nobody else's integration tests running
 *   node --import tsx test/support/record-history.ts --commit 71430c0 [scenario ...]
 *
 * Scenarios (default: all, in this order; `release` releases every container and image on the
 * stack, so run it while no one else is testing):
 *   release    nightly-release.json: a nightly release of a container and an image
 *   pull       pull.json (a unique image pulled and charged), remove-image.json (its removal and
 *              refund), pull-insufficient-funds.json (a user who cannot pay), ping-host.json
 *   container  container-lifecycle-continued-as-new.json (created, stopped, started, restarted,
 *              suspended when the balance ran out, continued as new) and
 *              container-lifecycle-final.json (the run it continued as: started after a top-up,
 *              a period charged, removed)
 *   dcu        dcu-upload-failed.json (MinIO unreachable for the upload: the task fails and keeps
 *              its archive), dcu-restarted.json (the same image started again: the kept archive
 *              adopted, uploaded, charged)
 *   cleanup    dcu-gzip-cleanup.json, dcu-object-cleanup.json (a retention that deletes nothing)
 * Options: --commit <rev> (default HEAD: record before changing a workflow), --out <dir>
 * (default test/replay). BERTH_RECORD_HISTORY_LIMIT overrides the container's history limit
 * (see HISTORY_LIMIT; 100000 prints the lengths to choose it from). berth.env is read when the
 * environment has no BERTH_DATABASE_URL. After re-recording, update RECORDED in
 * test/unit/replay.test.ts: it refuses a fixture it has no entry for, or whose recording worker
 * (build id) or path (activities, patches, end) is not the one it states.
 *
 * The scenarios drive the commit's own modules (loaded by path below: core/config, api/app,
 * activities/control-activities and host-activities, test/support/app, images, stack) and its
 * API routes as they were at 71430c0; recording from a commit that moved them means adjusting
 * those paths first.
 *
 * How: `git archive <commit>` is extracted into a temporary directory (node_modules linked) and
 * this file (with test/support/history.ts) is copied into it and run there, so everything it
 * loads is that commit's: the workflows, the API that starts them, the control activities, the
 * test helpers. It starts its own worker on a task queue of its own with the commit's workflows
 * and control activities; the API (built in-process, as the tests do) starts its workflows on
 * that queue. Host steps go to the stack's host workers (today's checkout), except the DCU
 * scenario's, which go to a host of its own (registered as down, so the API never picks it)
 * whose worker runs the commit's host activities with MinIO first unreachable, then reachable.
 * Each history is saved with the temporal CLI: `temporal workflow show --output json
 * --no-json-shorthand-payloads` (shorthand payloads lose the payloads' metadata), and loaded
 * back with loadHistory to prove it loads.
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { freePort } from './ports.js';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { eq } from 'drizzle-orm';
import { DefaultLogger, NativeConnection, Runtime, Worker, type ActivityInboundCallsInterceptor } from '@temporalio/worker';
import { historySummary, loadHistory } from './history.js';

const run = promisify(execFile);
const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = resolve(HERE, '../..');
const SCENARIOS = ['release', 'pull', 'container', 'dcu', 'cleanup'] as const;
type Scenario = (typeof SCENARIOS)[number];

function parseArgs(argv: string[]) {
  let commit = 'HEAD';
  let out = join(ROOT, 'test', 'replay');
  const scenarios: Scenario[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--commit') commit = argv[++i] ?? '';
    else if (arg === '--out') out = resolve(argv[++i] ?? '');
    else if ((SCENARIOS as readonly string[]).includes(arg)) scenarios.push(arg as Scenario);
    else {
      console.error(`usage: record-history.ts [--commit <rev>] [--out <dir>] [${SCENARIOS.join('|')} ...]`);
      process.exit(2);
    }
  }
  return { commit, out, scenarios: scenarios.length > 0 ? SCENARIOS.filter((s) => scenarios.includes(s)) : [...SCENARIOS] };
}

/** The stack's environment (berth.env), unless the caller loaded it already. */
async function stackEnv(): Promise<NodeJS.ProcessEnv> {
  if (process.env.BERTH_DATABASE_URL) return process.env;
  const file = join(process.env.BERTH_STATE_DIR ?? join(homedir(), '.local', 'state', 'berth'), 'berth.env');
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

// ================================================================== in the checkout: extract, run there

if (process.env.BERTH_RECORD_ARCHIVE !== '1') {
  const args = parseArgs(process.argv.slice(2));
  const { stdout: sha } = await run('git', ['-C', ROOT, 'rev-parse', '--verify', `${args.commit}^{commit}`]);
  const commit = sha.trim();
  // A fixed directory per commit: the workflow bundle, and so the worker's default build id
  // (SDK version + bundle checksum) that every workflow task of a history records, is then the
  // same at every recording of one commit.
  const archive = join(tmpdir(), `berth-record-${commit.slice(0, 12)}`);
  await rm(archive, { recursive: true, force: true });
  await mkdir(archive);
  try {
    await run('bash', ['-o', 'pipefail', '-c', `git -C "${ROOT}" archive ${commit} | tar -x -C "${archive}"`]);
    await symlink(join(ROOT, 'node_modules'), join(archive, 'node_modules'));
    await mkdir(join(archive, 'test', 'support'), { recursive: true });
    for (const file of ['record-history.ts', 'history.ts']) await copyFile(join(HERE, file), join(archive, 'test', 'support', file));
    await mkdir(args.out, { recursive: true });
    console.log(`recording from ${commit} (extracted in ${archive}) into ${args.out}: ${args.scenarios.join(', ')}`);
    const child = spawn(process.execPath, ['--import', 'tsx', join(archive, 'test', 'support', 'record-history.ts'), '--out', args.out, ...args.scenarios], {
      cwd: archive,
      stdio: 'inherit',
      env: { ...(await stackEnv()), BERTH_RECORD_ARCHIVE: '1', BERTH_RECORD_COMMIT: commit },
    });
    const code = await new Promise<number>((done) => child.on('exit', (c, signal) => done(c ?? (signal ? 1 : 0))));
    process.exitCode = code;
  } finally {
    await rm(archive, { recursive: true, force: true });
  }
  process.exit();
}

// ================================================================== in the extracted commit: record

const args = parseArgs(process.argv.slice(2));
const COMMIT = process.env.BERTH_RECORD_COMMIT ?? 'unknown';
Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });

/** A module of the extracted commit (this file's tree), untyped: its types are the commit's, not the checkout's. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const load = (path: string): Promise<any> => import(new URL(path, import.meta.url).href);
const [configMod, temporalMod, dbMod, schema, appMod, controlMod, hostMod, namesMod, imageRefMod, minioMod, supportApp, supportImages, supportStack] =
  await Promise.all([
    load('../../core/config.js'),
    load('../../core/temporal.js'),
    load('../../db/client.js'),
    load('../../db/schema.js'),
    load('../../api/app.js'),
    load('../../activities/control-activities.js'),
    load('../../activities/host-activities.js'),
    load('../../core/temporal-names.js'),
    load('../../core/image-ref.js'),
    load('../../core/minio.js'),
    load('./app.js'),
    load('./images.js'),
    load('./stack.js'),
  ]);
const { bearer, createUser, adminToken } = supportApp;
const { pushUniqueImage } = supportImages;
const { dockerFor, REGISTRY } = supportStack;
const workflowIds = namesMod.workflowIds;

const apiConfig = configMod.loadApiConfig(process.env);
const controlConfig = configMod.loadControlWorkerConfig(process.env);
const hostConfig = configMod.loadHostWorkerConfig({ ...process.env, BERTH_HOST_ID: 'host-a' });
const TEMPORAL_CLI = join(process.env.BERTH_TOOLS_DIR ?? join(homedir(), '.cache', 'berth'), 'bin', 'temporal');
const taskQueue = `record-${randomUUID().slice(0, 8)}`;

const database = dbMod.connectDatabase(apiConfig.database.url, { max: 4 });
const db = database.db;
const connectClient = () => temporalMod.connectTemporal(apiConfig.temporal);
const temporal = await connectClient();
const connection = await NativeConnection.connect({ address: apiConfig.temporal.address });

/** The client the API gets: every workflow it starts runs on this script's queue (the commit's code). */
function onOwnQueue<C extends { workflow: object }>(client: C): C {
  const redirect = new Set(['start', 'execute', 'signalWithStart']);
  const workflow = new Proxy(client.workflow, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof prop === 'string' && redirect.has(prop)) {
        return (type: unknown, options: Record<string, unknown>) => value.call(target, type, { ...options, taskQueue });
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return new Proxy(client, {
    get(target, prop) {
      if (prop === 'workflow') return workflow;
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** The API of the commit, built in-process on the stack's database, starting its workflows on this queue. */
async function buildApi(containers: Record<string, unknown> = {}) {
  const client = await connectClient();
  const app = await appMod.buildApp({
    config: { ...apiConfig, containers: { ...apiConfig.containers, ...containers } },
    db,
    temporal: onOwnQueue(client),
  });
  return {
    app,
    close: async () => {
      await app.close();
      await client.connection.close();
    },
  };
}
type Api = Awaited<ReturnType<typeof buildApi>>['app'];

async function inject(app: Api, method: string, url: string, token: string, payload?: object, expect?: number) {
  const res = await app.inject({ method, url, headers: bearer(token), ...(payload ? { payload } : {}) });
  if (expect !== undefined && res.statusCode !== expect) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
  return res;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, limitMs = 120_000): Promise<T> {
  for (const end = Date.now() + limitMs; Date.now() < end; await sleep(250)) {
    const value = await fn();
    if (value) return value;
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A workflow's runs so far, first to last (a continue-as-new chain). */
async function runsOf(workflowId: string): Promise<string[]> {
  const runs: string[] = [];
  const latest = (await temporal.workflow.getHandle(workflowId).fetchHistory()).events?.[0];
  let runId: string | undefined = latest?.workflowExecutionStartedEventAttributes?.firstExecutionRunId ?? undefined;
  for (let i = 0; runId && i < 100; i++) {
    runs.push(runId);
    const events = (await temporal.workflow.getHandle(workflowId, runId).fetchHistory()).events ?? [];
    runId = events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
  }
  return runs;
}

/** Saves one run's history as the temporal CLI prints it, and proves it loads. */
async function save(name: string, workflowId: string, runId?: string) {
  const handle = temporal.workflow.getHandle(workflowId, runId);
  const description = await handle.describe();
  if (description.status.name === 'RUNNING') throw new Error(`${name}: ${workflowId} is still running`);
  const { stdout } = await run(
    TEMPORAL_CLI,
    [
      'workflow', 'show',
      '--workflow-id', workflowId,
      '--run-id', runId ?? description.runId,
      '--output', 'json',
      '--no-json-shorthand-payloads',
      '--address', apiConfig.temporal.address,
      '--namespace', apiConfig.temporal.namespace,
    ],
    { maxBuffer: 256 * 1024 * 1024 },
  );
  const file = join(args.out, name);
  await writeFile(file, stdout.endsWith('\n') ? stdout : `${stdout}\n`);
  const summary = historySummary(loadHistory(JSON.parse(stdout)));
  console.log(`${name}: ${summary.workflowType}, ${summary.events} events, ends ${summary.end}; activities: ${summary.activities.join(' ')}`);
  return summary;
}

/** The price of a pull of `reference` on host-a: pulled there first (a loopback registry), then inspected. */
async function pullChargeOnHostA(reference: string): Promise<number> {
  const docker = dockerFor('host-a');
  const stream = await docker.pull(reference);
  await new Promise((done, fail) => docker.modem.followProgress(stream, (error: Error | null) => (error ? fail(error) : done(null))));
  const { Size } = await docker.getImage(reference).inspect();
  // Every started MB at the per-MB price (the commit's imageCharge); the balance check after the pull proves it.
  return Math.ceil(Size / (1024 * 1024)) * controlConfig.pricePerMb;
}

async function balanceOf(app: Api, token: string): Promise<number> {
  return (await inject(app, 'GET', '/api/v1/users/me', token, undefined, 200)).json().balance;
}

// ------------------------------------------------------------------ scenarios

async function releaseScenario() {
  const { app, close } = await buildApi();
  try {
    // Something to release: a running container (its workflow on this queue) and its image.
    const user = await createUser(app, { balance: 100_000 });
    const pulled = await inject(app, 'POST', '/api/v1/images/pull?wait=true', user.token, { image: `${REGISTRY}/library/httpd:latest`, host: 'host-a' }, 201);
    await inject(app, 'POST', '/api/v1/containers?wait=true', user.token, { imageId: pulled.json().id }, 201);
    const workflowId = `record-nightly-release-${randomUUID()}`;
    await temporal.workflow.execute('nightlyRelease', { taskQueue, workflowId, args: [{ concurrency: controlConfig.release.concurrency }] });
    await save('nightly-release.json', workflowId);
  } finally {
    await close();
  }
}

async function pullScenario() {
  const { app, close } = await buildApi();
  try {
    const user = await createUser(app, { balance: 100_000 });
    const image = await pushUniqueImage('record-pull', 64);
    const pulled = await inject(app, 'POST', '/api/v1/images/pull?wait=true', user.token, { image, host: 'host-a' }, 201);
    const { id, pullId } = pulled.json();
    await save('pull.json', pullId);
    await inject(app, 'DELETE', `/api/v1/images/${id}`, user.token);
    await temporal.workflow.getHandle(workflowIds.removeImage(id)).result();
    await save('remove-image.json', workflowIds.removeImage(id));

    // A user who cannot pay: the image is pulled, the charge fails, the image leaves the host.
    const poor = await createUser(app, { balance: 0 });
    const unpaid = await pushUniqueImage('record-pull', 64);
    const started = await inject(app, 'POST', '/api/v1/images/pull', poor.token, { image: unpaid, host: 'host-a' }, 202);
    const failed = await temporal.workflow.getHandle(started.json().pullId).result().then(
      () => null,
      (error: Error) => error,
    );
    if (!failed) throw new Error('the pull of a user without money succeeded');
    await inject(app, 'GET', `/api/v1/images/pulls/${started.json().pullId}`, poor.token, undefined, 200); // frees the pull slot
    await save('pull-insufficient-funds.json', started.json().pullId);

    const pingId = workflowIds.pingHost('host-a', `record-${randomUUID().slice(0, 8)}`);
    await temporal.workflow.execute('pingHost', { taskQueue, workflowId: pingId, args: ['host-a'] });
    await save('ping-host.json', pingId);
  } finally {
    await close();
  }
}

/**
 * A container's life across continue-as-new. Billing periods of PERIOD_MS; the balance pays two
 * periods: the creation's and the start's after a stop; the next period finds no money and the
 * container is suspended. HISTORY_LIMIT is above the history's length at every wake-up before
 * that charge and below it after, so the run continues as new at its first wake-up after the
 * suspension: the start after a top-up (the start is in the first run, the continue-as-new waits
 * for it). Measured at 71430c0 (BERTH_RECORD_HISTORY_LIMIT=100000 prints the lengths): created
 * 33 events, stopped 58, started 88, restarted 112, the period's timer fired at about 139,
 * suspended 157, started again 200; the Docker events the host worker signals (and its periodic
 * reconcile) move these by about ten. The script checks the outcome.
 */
const PERIOD_MS = 30_000;
const HISTORY_LIMIT = Number(process.env.BERTH_RECORD_HISTORY_LIMIT ?? 150);

async function containerScenario() {
  const { app, close } = await buildApi({ billingPeriodMs: PERIOD_MS, historyLimit: HISTORY_LIMIT });
  try {
    const admin = await adminToken(app);
    const httpd = `${REGISTRY}/library/httpd:latest`;
    const price = (await inject(app, 'POST', '/api/v1/containers/quote', admin, {}, 200)).json().pricePerPeriod as number;
    const user = await createUser(app, { balance: (await pullChargeOnHostA(httpd)) + 2 * price });
    const pulled = await inject(app, 'POST', '/api/v1/images/pull?wait=true', user.token, { image: httpd, host: 'host-a' }, 201);
    if ((await balanceOf(app, user.token)) !== 2 * price) throw new Error(`the balance after the pull is not two periods (${2 * price})`);

    const created = await inject(app, 'POST', '/api/v1/containers?wait=true', user.token, { imageId: pulled.json().id }, 201);
    const id: string = created.json().id;
    try {
      await containerLife(app, admin, user, id, price);
    } finally {
      // Whatever happened, the container goes (a no-op when it went already).
      await inject(app, 'DELETE', `/api/v1/containers/${id}`, user.token).catch(() => undefined);
    }
  } finally {
    await close();
  }
}

async function containerLife(app: Api, admin: string, user: { id: string; token: string }, id: string, price: number) {
  const workflowId = workflowIds.container(id);
  const handle = temporal.workflow.getHandle(workflowId);
  const length = async () => (await handle.describe()).historyLength;
  const step = async (operation: string) => {
    await inject(app, 'POST', `/api/v1/containers/${id}/${operation}`, user.token, undefined, 200);
    console.log(`  container ${operation}: history ${await length()} events`);
  };
  console.log(`  container created: history ${await length()} events`);
  await step('stop');
  await step('start');
  await step('restart');
  const describe = (): Promise<{ status: string; periodsCharged: number; charged: number }> => handle.query('describe');
  await until('the suspension', async () => (await describe()).status === 'suspended', PERIOD_MS + 60_000);
  console.log(`  container suspended: history ${await length()} events`);
  await sleep(3000); // the Docker events of the stop reach the workflow
  await inject(app, 'POST', `/api/v1/users/${user.id}/credit`, admin, { amount: 2 * price, reason: 'top-up after the suspension' }, 200);
  await step('start');
  const runs = await until('the continue-as-new', async () => {
    const chain = await runsOf(workflowId);
    return chain.length >= 2 ? chain : null;
  }, HISTORY_LIMIT > 1000 ? 5000 : 120_000);
  if (runs.length !== 2) throw new Error(`expected one continue-as-new, got runs ${runs.join(', ')}: adjust HISTORY_LIMIT`);
  // A period charged in the new run, then the removal.
  await until('a period charged after the continue-as-new', async () => (await describe()).periodsCharged >= 2, PERIOD_MS + 60_000);
  await inject(app, 'DELETE', `/api/v1/containers/${id}`, user.token, undefined, 200);
  await temporal.workflow.getHandle(workflowId, runs[1]).result();
  const first = await save('container-lifecycle-continued-as-new.json', workflowId, runs[0]);
  // Stopped twice (by the user, then for the balance), started twice (after the stop, after the
  // top-up), restarted: all before the continue-as-new.
  const times = (name: string) => first.activities.filter((a) => a === name).length;
  if (times('stopContainer') !== 2 || times('startContainer') !== 2 || times('restartContainer') !== 1) {
    throw new Error(`the first run did not stop, start, restart and suspend the container (${first.activities.join(' ')}): adjust HISTORY_LIMIT`);
  }
  await save('container-lifecycle-final.json', workflowId, runs[1]);
}

/** A host of the recording's own on host-a's daemon, with the commit's host activities and a MinIO of the caller's choosing. */
async function ownHostWorker(hostId: string, gzipDir: string, minioConfig: object) {
  const worker = await Worker.create({
    connection,
    namespace: apiConfig.temporal.namespace,
    taskQueue: namesMod.hostTaskQueue(hostId),
    activities: hostMod.createHostActivities({
      docker: dockerFor('host-a'),
      hostId,
      registryCredentials: {},
      pullStallTimeoutMs: hostConfig.pullStallTimeoutMs,
      minio: minioMod.minioClient(minioConfig),
      dcu: { ...hostConfig.dcu, gzipDir, minFreeMb: 0 },
    }),
  });
  const running = worker.run();
  return async () => {
    worker.shutdown();
    await running;
  };
}


async function dcuScenario() {
  const { app, close } = await buildApi();
  const hostId = `record-${randomUUID().slice(0, 8)}`;
  const gzipDir = await mkdtemp(join(tmpdir(), 'berth-record-dcu-'));
  await db.insert(schema.hosts).values({
    id: hostId,
    dockerEndpoint: `unix://${supportStack.dockerSocket('host-a')}`,
    engineId: 'record-history',
    engineVersion: '0',
    lastHeartbeatAt: new Date(Date.now() - 3_600_000),
  });
  let objectName: string | null = null;
  let image: string | null = null;
  try {
    const user = await createUser(app, { balance: 1_000 });
    image = (await pushUniqueImage('record-dcu', 256)) as string;
    const reference = imageRefMod.parseImageReference(image).reference;
    /** What POST /api/dcu/start does, for a host the API would not pick. */
    const startTask = async () => {
      const taskId = randomUUID();
      await db.insert(schema.dcuTasks).values({ id: taskId, userId: user.id, username: user.username, hostId, dockerImageName: image, state: 'idle' });
      const input = { taskId, userId: user.id, username: user.username, hostId, reference, pricePerGb: apiConfig.dcu.pricePerGb };
      const handle = await temporal.workflow.start('dcu', { taskQueue, workflowId: workflowIds.dcu(taskId), args: [input] });
      const outcome = await handle.result().then((r: { minioObjectName: string }) => r, (error: Error) => error);
      return { workflowId: handle.workflowId, outcome };
    };

    const stopUnreachable = await ownHostWorker(hostId, gzipDir, { ...hostConfig.minio, endPoint: '127.0.0.1', port: await freePort(), useSSL: false });
    let failed;
    try {
      failed = await startTask();
    } finally {
      await stopUnreachable();
    }
    if (!(failed.outcome instanceof Error)) throw new Error('the upload to an unreachable MinIO succeeded');
    const reason = (failed.outcome.cause as Error | undefined)?.message ?? failed.outcome.message;
    if (!/^uploading failed/.test(reason)) throw new Error(`the first task did not fail at its upload: ${reason}`);
    const stopReachable = await ownHostWorker(hostId, gzipDir, hostConfig.minio);
    let restarted;
    try {
      restarted = await startTask();
    } finally {
      await stopReachable();
    }
    if (restarted.outcome instanceof Error) throw restarted.outcome;
    objectName = restarted.outcome.minioObjectName;
    await save('dcu-upload-failed.json', failed.workflowId);
    const summary = await save('dcu-restarted.json', restarted.workflowId);
    if (!summary.activities.includes('dcuAdoptArchive')) throw new Error('the second task did not adopt the kept archive');
  } finally {
    if (objectName) await minioMod.minioClient(hostConfig.minio).removeObject(hostConfig.dcu.bucket, objectName).catch(() => undefined);
    // The tasks pulled it on host-a's daemon; no image record knows it.
    if (image) await dockerFor('host-a').getImage(image).remove({ force: true }).catch(() => undefined);
    await db.delete(schema.dcuTasks).where(eq(schema.dcuTasks.hostId, hostId));
    await db.delete(schema.hosts).where(eq(schema.hosts.id, hostId));
    await rm(gzipDir, { recursive: true, force: true });
    await close();
  }
}

async function cleanupScenario() {
  // Ten years: nothing is old enough to go.
  const input = { retentionDays: 3650 };
  for (const [type, name] of [['dcuGzipCleanup', 'dcu-gzip-cleanup.json'], ['dcuObjectCleanup', 'dcu-object-cleanup.json']] as const) {
    const workflowId = `record-${type}-${randomUUID()}`;
    await temporal.workflow.execute(type, { taskQueue, workflowId, args: [input] });
    await save(name, workflowId);
  }
}

// ------------------------------------------------------------------ the worker of the commit's code

const worker = await Worker.create({
  connection,
  namespace: apiConfig.temporal.namespace,
  taskQueue,
  workflowsPath: fileURLToPath(new URL('../../workflows/index.ts', import.meta.url)),
  activities: controlMod.createControlActivities({ db, pricePerMb: controlConfig.pricePerMb, temporal }),
  // As workers/run-worker.ts of the commit: a database error leaves without its query's parameters.
  interceptors: {
    activity: [
      (): { inbound: ActivityInboundCallsInterceptor } => ({
        inbound: {
          async execute(input, next) {
            try {
              return await next(input);
            } catch (error) {
              throw dbMod.withoutQueryParams(error);
            }
          },
        },
      }),
    ],
  },
});

const scenarios: Record<Scenario, () => Promise<void>> = {
  release: releaseScenario,
  pull: pullScenario,
  container: containerScenario,
  dcu: dcuScenario,
  cleanup: cleanupScenario,
};
let failure: unknown;
try {
  await worker.runUntil(async () => {
    for (const scenario of args.scenarios) {
      console.log(`[${scenario}] (commit ${COMMIT}, queue ${taskQueue})`);
      await scenarios[scenario]();
    }
  });
} catch (error) {
  failure = error;
  console.error(error);
} finally {
  await connection.close();
  await temporal.connection.close();
  await database.close();
}
process.exit(failure ? 1 : 0);
