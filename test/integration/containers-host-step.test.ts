/**
 * The host step that runs a container (createAndStartContainer: the user's network, create,
 * start, inspect, with no look before the create), driven directly on host-a's real Docker
 * daemon, as a host worker runs it: an attempt that created the container and failed before it
 * ran is followed by one that starts that very container (one container, its limits, port,
 * network and security options as the spec says), and a retry after a success changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import { createContainerDockerActivities, DEFAULT_PIDS_LIMIT } from '../../activities/containers-docker.js';
import { createUserNetworks } from '../../activities/networks.js';
import { FailureType } from '../../core/failures.js';
import { LABEL_ID, dockerName } from '../../core/container-labels.js';
import { userNetworkName } from '../../core/network-names.js';
import type { ContainerSpec } from '../../contracts/container.js';
import { buildTestApp, createUser } from '../support/app.js';
import { HTTPD, pullHttpd } from '../support/containers.js';
import { dockerFor } from '../support/stack.js';
import { freePort } from '../support/ports.js';

const HOST = 'host-a';
const HOST_IP = '127.0.0.1';

const listen = (port: number) =>
  new Promise<Server>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, HOST_IP, () => resolve(server));
  });

test('a creation whose start failed is started by the next attempt: one container, with its limits, port and network', async (t) => {
  // httpd on host-a, through Berth (the image the spec names).
  const app = await buildTestApp(t);
  const user = await createUser(app);
  await pullHttpd(app, await createUser(app, { balance: 10_000 }), HOST);

  const docker = dockerFor(HOST);
  const networks = createUserNetworks({ docker, hostId: HOST });
  const steps = createContainerDockerActivities({ docker, networks });
  const id = randomUUID();
  const spec: ContainerSpec = {
    id,
    userId: user.id,
    image: HTTPD,
    hostIp: HOST_IP,
    hostPort: await freePort(HOST_IP),
    containerPort: 80,
    memoryMb: 48,
    cpuMillis: 250,
    env: ['GREETING=hi'],
    cmd: null,
    pidsLimit: 64,
  };
  t.after(async () => {
    await steps.removeContainer(id);
    await networks.activities.removeUserNetworkIfUnused(user.id);
  });

  // The published port is taken: Docker creates the container, and its start fails (the proxy cannot bind).
  const blocker = await listen(spec.hostPort);
  const failed = await steps.createAndStartContainer(spec).then(
    () => assert.fail('the start must fail while the port is taken'),
    (error: unknown) => error,
  );
  assert.ok(failed instanceof ApplicationFailure, String(failed));
  assert.equal(failed.type, FailureType.DockerError);
  assert.equal(failed.nonRetryable, false, 'retried: the next attempt may find the port free');
  assert.match(failed.message, /^cannot start the container/);
  const left = await docker.getContainer(dockerName(id)).inspect();
  assert.equal(left.State.Running, false, 'created, never run');
  await new Promise((resolve) => blocker.close(resolve));

  // The retry: no second container, the one created is started.
  const observed = await steps.createAndStartContainer(spec);
  assert.equal(observed.running, true);
  assert.equal(observed.dockerId, left.Id, 'the container the failed attempt created');
  const labelled = await docker.listContainers({ all: true, filters: { label: [`${LABEL_ID}=${id}`] } });
  assert.deepEqual(labelled.map((c) => c.Id), [left.Id], 'one container for the spec');

  const info = await docker.getContainer(dockerName(id)).inspect();
  assert.equal(info.HostConfig.Memory, 48 * 1024 * 1024);
  assert.equal(info.HostConfig.MemorySwap, 48 * 1024 * 1024);
  assert.equal(info.HostConfig.NanoCpus, 250_000_000);
  assert.equal(info.HostConfig.PidsLimit, 64);
  assert.notEqual(info.HostConfig.PidsLimit, DEFAULT_PIDS_LIMIT, 'the spec’s own limit');
  assert.deepEqual(info.HostConfig.SecurityOpt, ['no-new-privileges']);
  assert.deepEqual(info.HostConfig.CapDrop, ['NET_RAW']);
  assert.equal(info.HostConfig.NetworkMode, userNetworkName(user.id), 'on the user’s own network');
  assert.deepEqual(Object.keys(info.NetworkSettings.Networks), [userNetworkName(user.id)]);
  assert.deepEqual(info.HostConfig.PortBindings['80/tcp'], [{ HostIp: HOST_IP, HostPort: String(spec.hostPort) }]);
  assert.ok(info.Config.Env.includes('GREETING=hi'));
  const page = await fetch(`http://${HOST_IP}:${spec.hostPort}/`);
  assert.match(await page.text(), /Berth httpd/, 'it answers on its published port');

  // A retry after a success (its completion lost) finds it running and changes nothing.
  const again = await steps.createAndStartContainer(spec);
  assert.deepEqual(again, observed);
  assert.equal((await docker.getContainer(dockerName(id)).inspect()).State.StartedAt, info.State.StartedAt, 'not started a second time');
});
