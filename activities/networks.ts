/**
 * Each user's own Docker network on a host: created on first use, removed when the
 * user's last container there is gone. Containers of different users never share a
 * network; the host worker's firewall (workers/host-firewall.ts) drops traffic between
 * these networks and to private addresses.
 */
import { createHash } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/activity';
import { FailureType } from '../core/failures.js';
import type Docker from 'dockerode';
import { LABEL_USER } from '../core/container-labels.js';
import { LABEL_NETWORK, NETWORK_KIND_USER, USER_BRIDGE_PREFIX, userNetworkName } from '../core/network-names.js';
import { dockerMessage, isConflict, isNotFound } from './docker-errors.js';

const BRIDGE_NAME_OPTION = 'com.docker.network.bridge.name';

/**
 * The Linux bridge of a user's network. Both daemons of one machine share its interfaces,
 * so the name is derived from the host and the user: 48 bits of a hash, with no collision to
 * expect below millions of networks.
 */
export const userBridgeName = (hostId: string, userId: string) =>
  USER_BRIDGE_PREFIX + createHash('sha256').update(`${hostId}/${userId}`).digest('hex').slice(0, 12);

export type NetworkRemoval = 'removed' | 'in-use' | 'absent';

/** 403 (Docker 20.10) or 409: the network still has endpoints. */
const hasEndpoints = (error: unknown) => /active endpoints|in use/i.test(dockerMessage(error));

export function createUserNetworks(deps: { docker: Docker; hostId: string }) {
  const { docker, hostId } = deps;

  /**
   * One operation per user at a time on this worker: a removal that finds no container
   * cannot run between an ensure and the container's creation that follows it.
   */
  const locks = new Map<string, Promise<unknown>>();
  async function withUserLock<T>(userId: string, fn: () => Promise<T>): Promise<T> {
    const before = locks.get(userId) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const settled = run.then(() => undefined, () => undefined);
    locks.set(userId, settled);
    try {
      return await run;
    } finally {
      if (locks.get(userId) === settled) locks.delete(userId);
    }
  }

  async function inspect(name: string): Promise<Docker.NetworkInspectInfo | null> {
    try {
      return await docker.getNetwork(name).inspect();
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  /** Checks that a network of that name is Berth's own for this user (not one somebody else made). */
  function verify(info: Docker.NetworkInspectInfo, userId: string) {
    const bridge = (info.Options ?? {})[BRIDGE_NAME_OPTION];
    if (info.Labels?.[LABEL_NETWORK] !== NETWORK_KIND_USER || info.Labels?.[LABEL_USER] !== userId || bridge !== userBridgeName(hostId, userId)) {
      throw ApplicationFailure.nonRetryable(`network ${info.Name} exists on ${hostId} but is not Berth's network of this user`, FailureType.NetworkConflict);
    }
  }

  /** The user's network, created when missing (idempotent: a 409 means an earlier attempt made it). Call under withUserLock. */
  async function ensure(userId: string): Promise<string> {
    const name = userNetworkName(userId);
    const existing = await inspect(name);
    if (existing) {
      verify(existing, userId);
      return name;
    }
    try {
      await docker.createNetwork({
        Name: name,
        CheckDuplicate: true,
        Driver: 'bridge',
        Labels: { [LABEL_NETWORK]: NETWORK_KIND_USER, [LABEL_USER]: userId },
        Options: { [BRIDGE_NAME_OPTION]: userBridgeName(hostId, userId) },
      });
    } catch (error) {
      if (!isConflict(error)) throw error;
    }
    const made = await inspect(name);
    if (!made) throw ApplicationFailure.retryable(`network ${name} vanished right after its creation`, FailureType.DockerError);
    verify(made, userId);
    return name;
  }

  /**
   * Removes the network (by name or id) when no container, in any state, Berth's or not,
   * is on it: a created container that has not started yet counts. Call under withUserLock.
   */
  async function removeIfUnused(ref: string): Promise<NetworkRemoval> {
    const attached = await docker.listContainers({ all: true, filters: { network: [ref] } });
    if (attached.length > 0) return 'in-use';
    try {
      await docker.getNetwork(ref).remove();
      return 'removed';
    } catch (error) {
      if (isNotFound(error)) return 'absent';
      if (hasEndpoints(error)) return 'in-use';
      throw error;
    }
  }

  return {
    withUserLock,
    ensure,
    /** Activities registered on the host's queue. */
    activities: {
      /** Removes the user's network on this host once the user has no container left there. */
      async removeUserNetworkIfUnused(userId: string): Promise<NetworkRemoval> {
        return withUserLock(userId, () => removeIfUnused(userNetworkName(userId)));
      },

      /** The nightly release's sweep: every user network on this host that no container uses any more. */
      async removeUnusedUserNetworks(): Promise<{ removed: number; inUse: number }> {
        const networks = await docker.listNetworks({ filters: { label: [`${LABEL_NETWORK}=${NETWORK_KIND_USER}`] } });
        let removed = 0;
        let inUse = 0;
        for (const network of networks) {
          const userId = network.Labels?.[LABEL_USER] ?? network.Name;
          const outcome = await withUserLock(userId, () => removeIfUnused(network.Id));
          if (outcome === 'removed') removed += 1;
          else if (outcome === 'in-use') inUse += 1;
        }
        return { removed, inUse };
      },
    },
  };
}

export type UserNetworks = ReturnType<typeof createUserNetworks>;
