/**
 * Tenant isolation at runtime (issue 11, items 1 and 3's Docker part), proven with real
 * traffic on the stack's daemons. Traffic goes only to this machine: containers' addresses
 * on the stack's networks, the bridges' gateways, and a network namespace the test makes
 * itself (with its own link-local and private addresses and its own listener). Users'
 * networks and the release's sweep of unused ones (which acts on every network of a host) are
 * tested in serial/isolation.test.ts.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import { eq } from 'drizzle-orm';
import { hosts } from '../../db/schema.js';
import { LABEL_USER, dockerName } from '../../core/container-labels.js';
import { LABEL_NETWORK, userNetworkName } from '../../core/network-names.js';
import { createUserNetworks, userBridgeName } from '../../activities/networks.js';
import { DEFAULT_PIDS_LIMIT, createContainerDockerActivities } from '../../activities/containers-docker.js';
import { BLOCKED_DESTINATIONS, FORWARD_CHAIN, INPUT_CHAIN, JUMPS, hostNameservers, installFirewall, otherBridges } from '../../workers/host-firewall.js';
import { loadHostWorkerConfig } from '../../core/config.js';
import pino from 'pino';
import { bearer, buildTestApp, createUser, testDb, type TestUser } from '../support/app.js';
import { BUSYBOX, cleanupScope, idler, pull, removeContainer, runContainer, userWithBusybox } from '../support/containers.js';
import { dockerFor, dockerSocket } from '../support/stack.js';
import { eventually } from '../support/wait.js';

const run = promisify(execFile);
const HTTPD = '127.0.0.1:5000/library/httpd:latest';
/** What the seeded httpd image serves. */
const HTTPD_PAGE = /Berth httpd/;

const inspectOn = (host: string, id: string) => dockerFor(host).getContainer(dockerName(id)).inspect();

/** The container's address and gateway on its user's network. */
async function addressOf(host: string, id: string, userId: string) {
  const info = await inspectOn(host, id);
  const endpoint = info.NetworkSettings.Networks[userNetworkName(userId)];
  assert.ok(endpoint?.IPAddress, `${id} is on ${userNetworkName(userId)}: ${JSON.stringify(Object.keys(info.NetworkSettings.Networks))}`);
  return { ip: endpoint.IPAddress, gateway: endpoint.Gateway };
}

/** Runs a shell command in a container (its network namespace, its limits); stdout and stderr together. */
async function execIn(host: string, containerName: string, script: string): Promise<string> {
  const { stdout, stderr } = await run('docker', ['-H', `unix://${dockerSocket(host)}`, 'exec', containerName, 'sh', '-c', script]);
  return stdout + stderr;
}

/**
 * HTTP GETs from inside a container, all at once, 3 s each: url → the body, or null when
 * nothing answered (wget's exit code was not 0). `timeout`, not wget's -T: Debian's busybox
 * 1.35 wget crashes (SIGSEGV) with -T.
 */
async function fetchFrom(host: string, containerName: string, urls: string[]): Promise<Map<string, string | null>> {
  const script = urls
    .map((url, i) => `(out=$(timeout 3 wget -q -O- '${url}' 2>&1); echo "probe-${i} exit=$? $(echo "$out" | head -c 200 | tr '\\n' ' ')") &`)
    .join('\n') + '\nwait';
  const output = await execIn(host, containerName, script);
  const results = new Map<string, string | null>();
  urls.forEach((url, i) => {
    const line = output.split('\n').find((l) => l.startsWith(`probe-${i} `));
    assert.ok(line, `no result for ${url} in: ${output}`);
    const match = /^probe-\d+ exit=(\d+) ?(.*)$/.exec(line)!;
    results.set(url, match[1] === '0' ? match[2]!.trim() : null);
  });
  return results;
}

/** A container on the daemon's default bridge (no user network, so no Berth rule): the control that shows a path works. */
async function controlContainer(scope: { after: (hook: () => unknown) => void }, host: string) {
  const name = `berth-isolation-control-${randomUUID().slice(0, 8)}`;
  const docker = dockerFor(host);
  const container = await docker.createContainer({ name, Image: BUSYBOX, Cmd: ['sleep', '3600'] });
  scope.after(() => container.remove({ force: true }));
  await container.start();
  const info = await container.inspect();
  return { name, gateway: info.NetworkSettings.Networks.bridge!.Gateway };
}

/** As userWithBusybox, with an idle busybox container of the user's (removed after the test). */
async function userWithIdler(t: TestContext, host: string) {
  const { scope, app, user, image } = await userWithBusybox(t, host);
  const c = await runContainer(app, user, idler(image));
  scope.after(() => removeContainer(app, user, c.id));
  return { scope, app, user, image, c };
}

const iptablesHas = (chain: string, rule: string) =>
  run('iptables', ['-w', '10', '-C', chain, ...rule.split(' ')]).then(() => true, () => false);

test('the firewall installed by several host workers at once: exactly one jump into each of Berth’s chains', async () => {
  // The plan the stack's host workers install (the same rules: installing them again changes nothing).
  const { egress } = loadHostWorkerConfig({ ...process.env, BERTH_HOST_ID: 'host-a' });
  const plan = { allowCidrs: egress.allowCidrs, otherBridges: await otherBridges(), nameservers: await hostNameservers() };
  await Promise.all(Array.from({ length: 4 }, () => installFirewall(plan, pino({ level: 'silent' }))));
  for (const [chain, ...rule] of JUMPS) {
    const { stdout } = await run('iptables', ['-w', '10', '-S', chain]);
    const copies = stdout.split('\n').filter((line) => line.trim() === `-A ${chain} ${rule.join(' ')}`).length;
    assert.equal(copies, 1, `${chain} jumps to Berth’s chain once`);
  }
});

test('users’ networks: another user’s container is unreachable on any port, on this daemon or the other; a user’s own containers reach each other; published ports answer', async (t) => {
  const scope = cleanupScope(t);
  const app = await buildTestApp(scope);
  const alice = await createUser(app, { balance: 100_000 });
  const carol = await createUser(app, { balance: 100_000 });
  const [aliceHttpdA, aliceHttpdB, aliceBusybox, carolBusybox] = await Promise.all([
    pull(app, alice, HTTPD, 'host-a'),
    pull(app, alice, HTTPD, 'host-b'),
    pull(app, alice, BUSYBOX, 'host-a'),
    pull(app, carol, BUSYBOX, 'host-a'),
  ]);

  const web = await runContainer(app, alice, { imageId: aliceHttpdA, memoryMb: 64 });
  const webB = await runContainer(app, alice, { imageId: aliceHttpdB, memoryMb: 64 });
  const aliceShell = await runContainer(app, alice, idler(aliceBusybox));
  const carolShell = await runContainer(app, carol, idler(carolBusybox));
  for (const c of [web, webB, aliceShell, carolShell]) assert.equal(c.state, 'running');
  scope.after(async () => {
    for (const c of [web, webB, aliceShell]) await removeContainer(app, alice, c.id);
    await removeContainer(app, carol, carolShell.id);
  });

  // Each user has a network of their own on each host, labelled as Berth's.
  const aliceNet = await dockerFor('host-a').getNetwork(userNetworkName(alice.id)).inspect();
  assert.equal(aliceNet.Labels?.[LABEL_NETWORK], 'user');
  assert.equal(aliceNet.Labels?.[LABEL_USER], alice.id);
  assert.equal(aliceNet.Options?.['com.docker.network.bridge.name'], userBridgeName('host-a', alice.id));
  const carolNet = await dockerFor('host-a').getNetwork(userNetworkName(carol.id)).inspect();
  assert.equal(carolNet.Labels?.[LABEL_USER], carol.id);
  assert.notEqual(carolNet.Id, aliceNet.Id);
  assert.equal((await inspectOn('host-a', web.id)).HostConfig.NetworkMode, userNetworkName(alice.id));
  const webIp = (await addressOf('host-a', web.id, alice.id)).ip;
  const webBIp = (await addressOf('host-b', webB.id, alice.id)).ip;
  const carolAddress = await addressOf('host-a', carolShell.id, carol.id);

  // Alice's own containers reach each other (the control: the server answers on this path).
  const fromAlice = await fetchFrom('host-a', dockerName(aliceShell.id), [`http://${webIp}:80/`]);
  assert.match(fromAlice.get(`http://${webIp}:80/`) ?? '', HTTPD_PAGE, 'a user’s own containers reach each other');

  // Carol cannot reach Alice's httpd, on host-a (another network) or host-b (the other daemon's).
  const fromCarol = await fetchFrom('host-a', dockerName(carolShell.id), [`http://${webIp}:80/`, `http://${webBIp}:80/`]);
  assert.equal(fromCarol.get(`http://${webIp}:80/`), null, 'another user’s container on this host is unreachable');
  assert.equal(fromCarol.get(`http://${webBIp}:80/`), null, 'another user’s container on the other daemon is unreachable');
  // Not even a port the container does not publish, nor the other way round.
  const ports = await execIn('host-a', dockerName(carolShell.id), `nc -w 2 ${webIp} 22 </dev/null; echo nc-exit=$?`);
  assert.match(ports, /nc-exit=[1-9]/);
  const toCarol = await execIn('host-a', dockerName(aliceShell.id), `nc -w 2 ${carolAddress.ip} 8080 </dev/null; echo nc-exit=$?`);
  assert.match(toCarol, /nc-exit=[1-9]/);

  // The same probe as a user would run it: a container whose command is the probe, read from its logs.
  const carolProbe = await runContainer(app, carol, {
    imageId: carolBusybox,
    containerPort: 8080,
    cmd: ['sh', '-c', `timeout 3 wget -q -O- http://${webIp}:80/; echo probe-exit=$?`],
  });
  const aliceProbe = await runContainer(app, alice, {
    imageId: aliceBusybox,
    containerPort: 8080,
    cmd: ['sh', '-c', `timeout 3 wget -q -O- http://${webIp}:80/; echo probe-exit=$?`],
  });
  scope.after(async () => {
    await removeContainer(app, carol, carolProbe.id);
    await removeContainer(app, alice, aliceProbe.id);
  });
  const logsOf = (user: TestUser, id: string) =>
    eventually(`the probe's result in ${id}'s logs`, async () => {
      const res = await app.inject({ method: 'GET', url: `/api/v1/containers/${id}/logs`, headers: bearer(user.token) });
      return res.statusCode === 200 && /probe-exit=\d+/.test(res.body) ? res.body : undefined;
    });
  const carolLogs = await logsOf(carol, carolProbe.id);
  assert.doesNotMatch(carolLogs, HTTPD_PAGE);
  assert.match(carolLogs, /probe-exit=[1-9]/);
  const aliceLogs = await logsOf(alice, aliceProbe.id);
  assert.match(aliceLogs, HTTPD_PAGE);
  assert.match(aliceLogs, /probe-exit=0/);

  // The published port still answers from outside (the machine).
  for (const c of [web, webB]) {
    const page = await fetch(`http://${c.hostIp}:${c.hostPort}/`);
    assert.match(await page.text(), HTTPD_PAGE, `${c.host}'s published port answers`);
  }
});

test('containers run without new privileges, without NET_RAW and with a PIDs limit; a refused limit does not show the host’s paths', async (t) => {
  const { scope, c } = await userWithIdler(t, 'host-b');

  const expectedPids = c.pidsLimit ?? DEFAULT_PIDS_LIMIT;
  const { HostConfig } = await inspectOn('host-b', c.id);
  assert.deepEqual(HostConfig.SecurityOpt, ['no-new-privileges']);
  assert.deepEqual(HostConfig.CapDrop, ['NET_RAW']);
  assert.equal(HostConfig.PidsLimit, expectedPids);
  // And in effect, as the container's processes see it. CAP_NET_RAW is bit 13.
  const status = await execIn('host-b', dockerName(c.id), 'grep -E "NoNewPrivs|CapEff" /proc/self/status; cat /sys/fs/cgroup/pids/pids.max');
  assert.match(status, /NoNewPrivs:\s*1/);
  const capEff = BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(status)![1]}`);
  assert.equal(capEff & (1n << 13n), 0n, 'no NET_RAW');
  assert.ok(capEff & (1n << 10n), 'the other default capabilities stay (NET_BIND_SERVICE)');
  assert.match(status, new RegExp(`^${expectedPids}$`, 'm'));

  // A spec written before the floors (a running workflow's input may hold 0, Docker's "unlimited"):
  // what Docker gets is the floor, and the container runs limited. (0.001 CPU, which the kernel
  // refused at start naming a cgroup file, is raised to 0.01 too; the path-free wording of such
  // a refusal is tested in test/unit/egress.test.ts.)
  const docker = dockerFor('host-b');
  const activities = createContainerDockerActivities({ docker, networks: createUserNetworks({ docker, hostId: 'host-b' }) });
  const row = (await testDb().db.select().from(hosts).where(eq(hosts.id, 'host-b')))[0]!;
  for (const cpuMillis of [0, 1]) {
    const id = randomUUID();
    const userId = randomUUID();
    scope.after(async () => {
      await activities.removeContainer(id);
      await docker.getNetwork(userNetworkName(userId)).remove().catch(() => undefined);
    });
    const observed = await activities.createAndStartContainer({
      id, userId, image: BUSYBOX, hostIp: row.publishIp, hostPort: 0, containerPort: 8080,
      memoryMb: 0, cpuMillis, env: [], cmd: ['sleep', '30'],
    });
    assert.ok(observed.running, `cpuMillis ${cpuMillis}: it runs`);
    const limits = (await docker.getContainer(dockerName(id)).inspect()).HostConfig;
    assert.equal(limits.NanoCpus, 10_000_000, `cpuMillis ${cpuMillis}: 0.01 CPU, never 0 (unlimited)`);
    assert.equal(limits.Memory, 6 * 1024 * 1024, 'memory 0 (unlimited) is raised to 6 MB');
    assert.equal(limits.PidsLimit, DEFAULT_PIDS_LIMIT);
  }
});

test('no container reaches the host through its gateway: not the stack’s ports, not a listener on every address', async (t) => {
  const { scope, user, c } = await userWithIdler(t, 'host-a');
  const { gateway } = await addressOf('host-a', c.id, user.id);

  // A listener of the test's own on every address of the machine.
  const server = createServer((_req, res) => res.end('host-listener'));
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  scope.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;

  // The control: from the default bridge (no Berth rule), the listener answers through the gateway.
  const control = await controlContainer(scope, 'host-a');
  const fromControl = await fetchFrom('host-a', control.name, [`http://${control.gateway}:${port}/`]);
  assert.equal(fromControl.get(`http://${control.gateway}:${port}/`), 'host-listener', 'the control reaches the host');

  const streamPort = (await testDb().db.select().from(hosts).where(eq(hosts.id, 'host-a')))[0]!.streamUrl?.match(/:(\d+)/)?.[1];
  const stackPorts = [8080, 5432, 7233, 8233, 9000, 9001, 5000, 5001, ...(streamPort ? [Number(streamPort)] : [])];
  const urls = [port, ...stackPorts].map((p) => `http://${gateway}:${p}/`);
  const fromUser = await fetchFrom('host-a', dockerName(c.id), urls);
  for (const url of urls) assert.equal(fromUser.get(url), null, `${url} is unreachable from a user's container`);
  assert.ok(await iptablesHas('INPUT', `-i bth+ -j ${INPUT_CHAIN}`), 'INPUT sends users’ networks to Berth’s chain');
  assert.ok(await iptablesHas(INPUT_CHAIN, '-j DROP'));
});

test('egress: link-local and private addresses are dropped from users’ networks (listeners in a namespace of the test’s own)', async (t) => {
  const { scope, c } = await userWithIdler(t, 'host-a');

  // The namespace: a veth pair, a link-local and a private /30 on it, a web server inside.
  const tag = randomBytes(3).toString('hex');
  const octet = 100 + (parseInt(tag, 16) % 100);
  const ns = `berth-iso-${tag}`;
  const [hostEnd, nsEnd] = [`biso${tag}h`, `biso${tag}n`];
  const linkLocal = `169.254.${octet}.2`; // never .169.254: the test makes its own address
  const privateIp = `10.197.${octet}.2`;
  const ip = (...args: string[]) => run('ip', args);
  await ip('netns', 'add', ns);
  scope.after(() => ip('netns', 'del', ns).catch(() => undefined));
  await ip('link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', nsEnd);
  scope.after(() => ip('link', 'del', hostEnd).catch(() => undefined));
  await ip('link', 'set', nsEnd, 'netns', ns);
  await ip('addr', 'add', `169.254.${octet}.1/30`, 'dev', hostEnd);
  await ip('addr', 'add', `10.197.${octet}.1/30`, 'dev', hostEnd);
  await ip('link', 'set', hostEnd, 'up');
  await ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${linkLocal}/30`, 'dev', nsEnd);
  await ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${privateIp}/30`, 'dev', nsEnd);
  await ip('netns', 'exec', ns, 'ip', 'link', 'set', nsEnd, 'up');
  await ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
  await ip('netns', 'exec', ns, 'ip', 'route', 'add', 'default', 'via', `169.254.${octet}.1`);
  const www = await mkdtemp(join(tmpdir(), 'berth-iso-'));
  scope.after(() => rm(www, { recursive: true, force: true }));
  await writeFile(join(www, 'index.html'), 'netns-listener\n');
  const port = 18000 + (parseInt(tag, 16) % 1000);
  const listener = spawn('ip', ['netns', 'exec', ns, '/bin/busybox', 'httpd', '-f', '-p', String(port), '-h', www], { stdio: 'ignore' });
  scope.after(() => listener.kill('SIGKILL'));
  const urls = [`http://${linkLocal}:${port}/`, `http://${privateIp}:${port}/`];

  // The listener answers the machine, and a container of the default bridge (no Berth rule):
  // the path works, so what stops a user's container is the rule.
  for (const url of urls) {
    await eventually(`the listener at ${url}`, () => fetch(url).then((r) => r.text(), () => undefined));
  }
  const control = await controlContainer(scope, 'host-a');
  const fromControl = await fetchFrom('host-a', control.name, urls);
  for (const url of urls) assert.match(fromControl.get(url) ?? '', /netns-listener/, `the control reaches ${url}`);

  const fromUser = await fetchFrom('host-a', dockerName(c.id), urls);
  for (const url of urls) assert.equal(fromUser.get(url), null, `${url} is unreachable from a user's container`);

  // The rules as installed.
  assert.ok(await iptablesHas('DOCKER-USER', `-j ${FORWARD_CHAIN}`), 'DOCKER-USER jumps to Berth’s chain');
  for (const cidr of BLOCKED_DESTINATIONS) {
    assert.ok(await iptablesHas(FORWARD_CHAIN, `-i bth+ -d ${cidr} -j DROP`), `${cidr} is dropped`);
  }
  assert.ok(await iptablesHas(FORWARD_CHAIN, '-i bth+ -o bth+ -j DROP'), 'another user’s network is dropped');
});
