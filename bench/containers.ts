/**
 * Benchmark: time from `POST /api/v1/containers?wait=true` to the container answering
 * HTTP, beside a plain `docker run -d` (create + start through dockerode on the same
 * host's daemon, same image, same limits, a published port) to the same first HTTP
 * answer, measured in the same run.
 *
 *   set -a; . ~/.local/state/berth/berth.env; set +a
 *   node --import tsx bench/containers.ts [runs=30] [host=host-a]
 *
 * The image is the seeded busybox httpd, pulled once through Berth (untimed). Each round
 * runs one container each way, alternating which goes first, and removes both before the
 * next round (untimed: Berth's through DELETE /api/v1/containers/:id, Docker's with a
 * forced remove). "Answers" is any HTTP response to GET / (polled every 20 ms). One
 * warm-up round is not counted. Berth is reached in-process (app.inject, no TCP).
 *
 * Two cases: the user's first container on the host (Berth creates the user's own network
 * for it and removes it with the container), and a container of a user who has one running
 * there already (the network is there). Docker is measured two ways in the same rounds: on its
 * default bridge (`docker run -d -p`, the goal's baseline), and with Berth's own setup, which
 * separates what Berth adds from what isolation costs Docker: a user-defined bridge named as
 * Berth names a user's (`bth…`, which the host firewall's rules match), made before the
 * container in the first case and removed after it, there already in the second; the same
 * PIDs limit, no-new-privileges and no NET_RAW. The three sides take turns going first.
 */
import { randomUUID } from 'node:crypto';
import { freePort } from '../test/support/ports.js';
import { get } from 'node:http';
import { eq } from 'drizzle-orm';
import { hosts } from '../db/schema.js';
import { adminToken, bearer, createUser, testDb } from '../test/support/app.js';
import { HOST_IDS, REGISTRY, dockerFor } from '../test/support/stack.js';
import { userBridgeName } from '../activities/networks.js';
import { DEFAULT_PIDS_LIMIT } from '../activities/containers-docker.js';
import { baseConfig, benchApp, percentile, printTable, sleep, timed } from './support.js';

const RUNS = Number(process.argv[2] ?? 30);
const HOST = process.argv[3] ?? 'host-a';
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`runs must be a positive integer, got ${process.argv[2]}`);
if (!(HOST_IDS as readonly string[]).includes(HOST)) throw new Error(`host must be one of ${HOST_IDS.join(', ')}`);
const ROUNDS = RUNS + 1; // the first is a warm-up
const IMAGE = `${REGISTRY}/library/httpd:latest`;
const POLL_MS = 20;
const ANSWER_TIMEOUT_MS = 30_000;

/** True once anything answers HTTP at the URL (any status). */
function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get(url, { agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
  });
}

async function firstAnswer(url: string) {
  const deadline = performance.now() + ANSWER_TIMEOUT_MS;
  while (!(await answers(url))) {
    if (performance.now() > deadline) throw new Error(`${url} did not answer in ${ANSWER_TIMEOUT_MS} ms`);
    await sleep(POLL_MS);
  }
}


interface ContainerView {
  id: string;
  state: string;
  hostIp: string;
  hostPort: number;
  memoryMb: number;
  cpus: number;
}

async function main() {
  const docker = dockerFor(HOST);
  const { app, close } = await benchApp({
    // One live container at a time; the billing period is an hour, so the balance is charged
    // once per container and never runs out (the user would be suspended otherwise).
    containers: { ...baseConfig.containers, billingPeriodMs: 3_600_000 },
  });
  const admin = bearer(await adminToken(app));
  const [host] = await testDb().db.select().from(hosts).where(eq(hosts.id, HOST));
  if (!host) throw new Error(`no host ${HOST}`);
  const publishIp = host.publishIp;
  const memoryMb = baseConfig.containers.defaultMemoryMb;
  const cpus = baseConfig.containers.defaultCpus;

  const samples = () => ({
    berth: { total: [] as number[], post: [] as number[], remove: [] as number[] },
    plain: { total: [] as number[], start: [] as number[], remove: [] as number[] },
    isolated: { total: [] as number[], start: [] as number[], remove: [] as number[] },
  });
  const first = samples();
  const second = samples();
  let { berth, plain, isolated } = first;
  const dockerNetworks = new Set<string>();
  const berthLive = new Set<string>();
  const dockerLive = new Set<string>();
  let imageId: string | undefined;

  try {
    const user = await createUser(app, { balance: 10_000_000 });
    const pulled = await app.inject({ method: 'POST', url: '/api/v1/images/pull?wait=true', headers: bearer(user.token), payload: { image: IMAGE, host: HOST } });
    if (pulled.statusCode !== 201) throw new Error(`pull: ${pulled.statusCode} ${pulled.body}`);
    imageId = pulled.json<{ id: string }>().id;

    const viaBerth = async (keep: boolean) => {
      const t0 = performance.now();
      const res = await app.inject({ method: 'POST', url: '/api/v1/containers?wait=true', headers: bearer(user.token), payload: { imageId } });
      if (res.statusCode !== 201) throw new Error(`run: ${res.statusCode} ${res.body}`);
      const view = res.json<ContainerView>();
      berthLive.add(view.id);
      const created = performance.now();
      await firstAnswer(`http://${view.hostIp}:${view.hostPort}/`);
      const answered = performance.now();
      if (view.state !== 'running' || view.memoryMb !== memoryMb || view.cpus !== cpus) throw new Error(`unexpected container: ${JSON.stringify(view)}`);
      const removeMs = await timed(async () => {
        const removed = await app.inject({ method: 'DELETE', url: `/api/v1/containers/${view.id}`, headers: bearer(user.token) });
        if (removed.statusCode !== 200) throw new Error(`remove: ${removed.statusCode} ${removed.body}`);
      });
      berthLive.delete(view.id);
      if (keep) {
        berth.total.push(answered - t0);
        berth.post.push(created - t0);
        berth.remove.push(removeMs);
      }
    };

    /** Berth's setup on the Docker side: a network of its own per "user", as Berth makes one. */
    const benchNetwork = async () => {
      const owner = `bench-${randomUUID()}`;
      const name = `bench-net-${owner.slice(6, 14)}`;
      await docker.createNetwork({ Name: name, CheckDuplicate: true, Driver: 'bridge', Options: { 'com.docker.network.bridge.name': userBridgeName(HOST, owner) } });
      dockerNetworks.add(name);
      return name;
    };
    const removeNetwork = async (name: string) => {
      await docker.getNetwork(name).remove();
      dockerNetworks.delete(name);
    };
    // The second case's network, there before its rounds (as the resident's is for Berth).
    let residentNetwork: string | null = null;

    /** `isolation`: on a network of its own with Berth's security options, else on the default bridge. */
    const viaDocker = async (keep: boolean, isolation: boolean) => {
      const port = '80/tcp';
      const hostPort = await freePort(publishIp);
      const into = isolation ? isolated : plain;
      const t0 = performance.now();
      const network = isolation ? (residentNetwork ?? (await benchNetwork())) : null;
      const container = await docker.createContainer({
        name: `bench-run-${randomUUID().slice(0, 8)}`,
        Image: IMAGE,
        ExposedPorts: { [port]: {} },
        HostConfig: {
          ...(network ? { NetworkMode: network } : {}),
          PortBindings: { [port]: [{ HostIp: publishIp, HostPort: String(hostPort) }] },
          Memory: memoryMb * 1024 * 1024,
          MemorySwap: memoryMb * 1024 * 1024,
          NanoCpus: cpus * 1_000_000_000,
          ...(isolation ? { PidsLimit: DEFAULT_PIDS_LIMIT, SecurityOpt: ['no-new-privileges'], CapDrop: ['NET_RAW'] } : {}),
          RestartPolicy: { Name: 'no' },
        },
      });
      dockerLive.add(container.id);
      await container.start();
      const started = performance.now();
      await firstAnswer(`http://${publishIp}:${hostPort}/`);
      const answered = performance.now();
      const removeMs = await timed(async () => {
        await container.remove({ force: true, v: true });
        // Berth's DELETE of a user's last container removes the user's network too.
        if (network && network !== residentNetwork) await removeNetwork(network);
      });
      dockerLive.delete(container.id);
      if (keep) {
        into.total.push(answered - t0);
        into.start.push(started - t0);
        into.remove.push(removeMs);
      }
    };

    const rounds = async () => {
      for (let round = 0; round < ROUNDS; round++) {
        const keep = round > 0;
        const sides = [() => viaBerth(keep), () => viaDocker(keep, false), () => viaDocker(keep, true)];
        // Each side goes first, second and third in turn.
        for (let i = 0; i < sides.length; i++) await sides[(round + i) % sides.length]!();
      }
    };
    await rounds();
    // The same user keeps one container running: the next ones join its network.
    const resident = await app.inject({ method: 'POST', url: '/api/v1/containers?wait=true', headers: bearer(user.token), payload: { imageId } });
    if (resident.statusCode !== 201) throw new Error(`resident: ${resident.statusCode} ${resident.body}`);
    berthLive.add(resident.json<ContainerView>().id);
    residentNetwork = await benchNetwork();
    ({ berth, plain, isolated } = second);
    await rounds();

    const p = (samples: number[]) => `p50 ${percentile(samples, 50).toFixed(0)} ms, p95 ${percentile(samples, 95).toFixed(0)} ms`;
    console.log(`host: ${HOST} (publish IP ${publishIp}); image ${IMAGE}; ${memoryMb} MB, ${cpus} CPU; runs: ${RUNS} per side (+1 warm-up round, not counted); alternating which goes first`);
    console.log('');
    console.log('Berth against plain Docker (default bridge), the goal\'s baseline:');
    printTable([
      { name: 'first container of the user (network made)', berth: first.berth.total, docker: first.plain.total },
      { name: 'the user has one running (network there)', berth: second.berth.total, docker: second.plain.total },
    ]);
    console.log('');
    console.log('Berth against Docker with Berth\'s isolation (a bth… bridge per user, made in the first case; PIDs limit, no-new-privileges, no NET_RAW):');
    printTable([
      { name: 'first container of the user (network made)', berth: first.berth.total, docker: first.isolated.total },
      { name: 'the user has one running (network there)', berth: second.berth.total, docker: second.isolated.total },
    ]);
    console.log('');
    console.log('What isolation costs Docker itself (Docker with Berth\'s setup against the default bridge):');
    printTable([
      { name: 'network made with the container', berth: first.isolated.total, docker: first.plain.total },
      { name: 'network there', berth: second.isolated.total, docker: second.plain.total },
    ], { berth: 'isolated', docker: 'default' });
    for (const [label, { berth, plain, isolated }] of [['first container', first], ['network there', second]] as const) {
      console.log('');
      console.log(`${label}: berth POST ?wait=true returned (201): ${p(berth.post)}; docker create + start returned: default bridge ${p(plain.start)}, Berth's setup ${p(isolated.start)}`);
      console.log(`${label}: removal (untimed above): berth DELETE ${p(berth.remove)}; docker remove -f: default bridge ${p(plain.remove)}, Berth's setup (and its network in the first case) ${p(isolated.remove)}`);
    }
  } finally {
    for (const id of berthLive) {
      const res = await app.inject({ method: 'DELETE', url: `/api/v1/containers/${id}`, headers: admin });
      if (res.statusCode !== 200 && res.statusCode !== 404) console.error(`remove container ${id}: ${res.statusCode} ${res.body}`);
    }
    for (const id of dockerLive) {
      await docker.getContainer(id).remove({ force: true, v: true }).catch((error: Error) => console.error(`remove ${id}: ${error.message}`));
    }
    for (const name of dockerNetworks) {
      await docker.getNetwork(name).remove().catch((error: Error) => console.error(`remove network ${name}: ${error.message}`));
    }
    if (imageId) {
      const res = await app.inject({ method: 'DELETE', url: `/api/v1/images/${imageId}`, headers: admin });
      console.log(`clean-up: ${berthLive.size + dockerLive.size} leftover containers removed; image record deleted: HTTP ${res.statusCode} ${res.statusCode === 200 ? JSON.stringify(res.json()) : res.body}`);
    }
    await close();
  }
}

await main();
