/**
 * Users' networks on a host, and the nightly release's sweep of networks nobody uses: the sweep
 * acts on every Berth network of host-b (one another test's container was about to join would
 * go), so this test runs in the serial pass's host-b lane (scripts/test.sh).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { dockerName } from '../../../../core/container-labels.js';
import { userNetworkName } from '../../../../core/network-names.js';
import { createUserNetworks } from '../../../../activities/networks.js';
import { idler, removeContainer, runContainer, userWithBusybox } from '../../../support/containers.js';
import { dockerFor } from '../../../support/stack.js';
import { eventually } from '../../../support/wait.js';

test('a user’s network exists while they have a container on the host and goes with the last one; the release’s sweep removes unused ones', async (t) => {
  const { scope, app, user, image } = await userWithBusybox(t, 'host-b');
  const docker = dockerFor('host-b');
  const network = userNetworkName(user.id);
  const exists = () => docker.getNetwork(network).inspect().then(() => true, () => false);
  assert.equal(await exists(), false, 'no network before the first container');

  const first = await runContainer(app, user, idler(image));
  const second = await runContainer(app, user, idler(image));
  scope.after(async () => {
    await removeContainer(app, user, first.id).catch(() => undefined);
    await removeContainer(app, user, second.id).catch(() => undefined);
  });
  const info = await docker.getNetwork(network).inspect();
  assert.deepEqual(
    Object.values(info.Containers ?? {}).map((e) => (e as { Name: string }).Name).sort(),
    [dockerName(first.id), dockerName(second.id)].sort(),
    'both containers are on the user’s one network',
  );

  // The nightly release's sweep (the host activity it calls) removes a network nobody uses and
  // keeps one in use.
  const networks = createUserNetworks({ docker, hostId: 'host-b' });
  const idle = randomUUID();
  await networks.withUserLock(idle, () => networks.ensure(idle));
  scope.after(() => docker.getNetwork(userNetworkName(idle)).remove().catch(() => undefined));
  const swept = await networks.activities.removeUnusedUserNetworks();
  assert.ok(swept.removed >= 1 && swept.inUse >= 1, JSON.stringify(swept));
  assert.equal(await docker.getNetwork(userNetworkName(idle)).inspect().then(() => true, () => false), false, 'the unused network is gone');
  assert.equal(await exists(), true, 'the network in use stays');

  await removeContainer(app, user, first.id);
  assert.equal(await exists(), true, 'still used by the second container');
  await removeContainer(app, user, second.id);
  await eventually('the network’s removal', async () => !(await exists()), 15);
});
