/**
 * Container activities on a host worker. Each is idempotent: creating finds the
 * container made by an earlier attempt, stopping a stopped container succeeds,
 * removing an absent one succeeds.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { activityLog } from './activity-log.js';
import { FailureType } from '../core/failures.js';
import type Docker from 'dockerode';
import { LABEL_ID, LABEL_USER, dockerName } from '../core/container-labels.js';
import { dockerMessage, isConflict, isNotFound, publicDockerMessage } from './docker-errors.js';
import type { UserNetworks } from './networks.js';
import { heartbeating } from './heartbeat.js';
import { removeMany } from './batch-removal.js';
import type { BatchRemovals } from '../contracts/nightly-release.js';
import type { ContainerSpec } from '../contracts/container.js';


/** The PIDs limit of a container whose spec names none (a fork bomb stops there). */
export const DEFAULT_PIDS_LIMIT = 256;

/**
 * Docker reads 0 as "no limit" for CPUs, memory and PIDs. The API refuses such values, but a
 * spec written before it did (a running workflow's input) may hold them: what Docker gets is
 * never below these floors (0.01 CPU is the least the kernel's CFS quota expresses; 6 MB is
 * Docker's own minimum).
 */
const FLOOR = { cpuMillis: 10, memoryMb: 6, pids: 16 } as const;

/** The limits Docker gets for a spec: never 0, never unlimited. */
export function dockerLimits(spec: Pick<ContainerSpec, 'memoryMb' | 'cpuMillis' | 'pidsLimit'>) {
  const memoryBytes = Math.max(spec.memoryMb, FLOOR.memoryMb) * 1024 * 1024;
  return {
    Memory: memoryBytes,
    MemorySwap: memoryBytes,
    NanoCpus: Math.max(spec.cpuMillis, FLOOR.cpuMillis) * 1_000_000,
    PidsLimit: Math.max(spec.pidsLimit ?? DEFAULT_PIDS_LIMIT, FLOOR.pids),
  };
}

export interface ObservedContainer {
  dockerId: string;
  running: boolean;
  status: string;
  exitCode: number;
  oomKilled: boolean;
}

const STOP_TIMEOUT_S = 10;

export function createContainerDockerActivities(deps: { docker: Docker; networks: UserNetworks }) {
  const { docker, networks } = deps;

  async function inspect(ref: string): Promise<ObservedContainer | null> {
    try {
      const info = await docker.getContainer(ref).inspect();
      return {
        dockerId: info.Id,
        running: info.State.Running,
        status: info.State.Status,
        exitCode: info.State.ExitCode,
        oomKilled: info.State.OOMKilled,
      };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  /** Creates the container; false when it exists already (made by an earlier attempt of the same step). */
  async function createContainer(spec: ContainerSpec, name: string, network: string): Promise<boolean> {
    const port = `${spec.containerPort}/tcp`;
    try {
      await docker.createContainer({
        name,
        Image: spec.image,
        ...(spec.cmd ? { Cmd: spec.cmd } : {}),
        Env: spec.env,
        Labels: { [LABEL_ID]: spec.id, [LABEL_USER]: spec.userId },
        ExposedPorts: { [port]: {} },
        HostConfig: {
          NetworkMode: network,
          PortBindings: { [port]: [{ HostIp: spec.hostIp, HostPort: String(spec.hostPort) }] },
          ...dockerLimits(spec),
          // No setuid escalation inside, and no raw sockets (ARP and ICMP spoofing on the bridge).
          SecurityOpt: ['no-new-privileges'],
          CapDrop: ['NET_RAW'],
          RestartPolicy: { Name: 'no' },
        },
      });
      return true;
    } catch (error) {
      if (isConflict(error)) return false; // an earlier attempt created it
      const message = `cannot create the container: ${publicDockerMessage(error)}`;
      // The network was removed outside this worker's lock (another process): the next attempt makes it again.
      if (/network .* not found/i.test(dockerMessage(error))) throw ApplicationFailure.retryable(message, FailureType.DockerError);
      const status = (error as { statusCode?: number }).statusCode;
      if (status === 400 || status === 404) throw ApplicationFailure.nonRetryable(message, FailureType.ContainerInvalid);
      throw ApplicationFailure.retryable(message, FailureType.DockerError);
    }
  }

  /** Starts a created container; one running already (304) is as good. */
  async function startCreated(name: string): Promise<void> {
    try {
      await docker.getContainer(name).start();
    } catch (error) {
      const status = (error as { statusCode?: number }).statusCode;
      if (status === 304) return;
      // Otherwise runc's reason, without the host's paths.
      const message = `cannot start the container: ${publicDockerMessage(error)}`;
      // A 400, or limits the kernel refuses (cgroup), would fail the same way on every attempt.
      if (status === 400 || /cgroup/i.test(dockerMessage(error))) throw ApplicationFailure.nonRetryable(message, FailureType.ContainerInvalid);
      // 404 too: removed between its creation and its start; the next attempt creates it again.
      throw ApplicationFailure.retryable(message, FailureType.DockerError);
    }
  }

  /** Force-removes a container by name or Docker id; an absent one counts as removed. */
  async function removeNamed(nameOrId: string): Promise<'removed' | 'absent'> {
    try {
      await docker.getContainer(nameOrId).remove({ force: true, v: true });
      return 'removed';
    } catch (error) {
      if (isNotFound(error)) return 'absent';
      // 409 "removal already in progress" is as good as removed once it completes.
      if (isConflict(error) && /already in progress/.test(dockerMessage(error))) return 'removed';
      throw error;
    }
  }

  // The steps a container workflow runs (profile host.container) heartbeat while Docker works.
  return {
    /**
     * Creates (once) and starts the container, on its user's own network (made on first use);
     * returns what Docker then says of it.
     */
    createAndStartContainer: (spec: ContainerSpec): Promise<ObservedContainer> => heartbeating(async () => {
      const name = dockerName(spec.id);
      // Three Docker calls on the way (create, start, inspect), and no look first: a create that
      // finds the name taken (409) is an earlier attempt's container, which may have died between
      // its create and its start; starting one that runs already is a 304.
      // Under the user's lock: the network cannot be removed between its check and the creation.
      const created = await networks.withUserLock(spec.userId, async () => createContainer(spec, name, await networks.ensure(spec.userId)));
      if (created) activityLog.info('container created', { containerId: spec.id, image: spec.image });
      await startCreated(name);
      const observed = await inspect(name);
      if (!observed) throw ApplicationFailure.retryable(`container ${name} vanished right after its start`, FailureType.DockerError);
      activityLog.info('container started', { containerId: spec.id, dockerId: observed.dockerId, running: observed.running });
      return observed;
    }),

    startContainer: (id: string): Promise<ObservedContainer | null> => heartbeating(async () => {
      const name = dockerName(id);
      try {
        await docker.getContainer(name).start();
      } catch (error) {
        const status = (error as { statusCode?: number }).statusCode;
        if (status === 404) return null;
        if (status !== 304) throw error;
      }
      return inspect(name);
    }),

    stopContainer: (id: string): Promise<ObservedContainer | null> => heartbeating(async () => {
      const name = dockerName(id);
      try {
        await docker.getContainer(name).stop({ t: STOP_TIMEOUT_S });
      } catch (error) {
        const status = (error as { statusCode?: number }).statusCode;
        if (status === 404) return null;
        if (status !== 304) throw error; // 304: already stopped
      }
      return inspect(name);
    }),

    restartContainer: (id: string): Promise<ObservedContainer | null> => heartbeating(async () => {
      const name = dockerName(id);
      try {
        await docker.getContainer(name).restart({ t: STOP_TIMEOUT_S });
      } catch (error) {
        if (isNotFound(error)) return null;
        throw error;
      }
      return inspect(name);
    }),

    removeContainer: (id: string): Promise<'removed' | 'absent'> =>
      heartbeating(async () => {
        const removed = await removeNamed(dockerName(id));
        activityLog.info('container removed from Docker', { containerId: id, result: removed });
        return removed;
      }),

    /** Every container on this host that carries Berth's label, in any state: its Berth id, Docker id and the owner its label names. */
    async listBerthContainers(): Promise<Array<{ id: string; dockerId: string; userId: string }>> {
      const found = await docker.listContainers({ all: true, filters: { label: [LABEL_ID] } });
      return found.map((c) => ({ id: c.Labels?.[LABEL_ID] ?? '', dockerId: c.Id, userId: c.Labels?.[LABEL_USER] ?? '' }));
    },

    /**
     * The nightly release's removals on this host: containers by Berth id (`berth-<id>`) or Docker
     * id, force-removed at most `width` at a time, each outcome on its own (absent counts as removed).
     */
    removeContainersBatch: (refs: string[], width: number): Promise<BatchRemovals> =>
      removeMany(
        refs,
        width,
        async (ref) => {
          try {
            await removeNamed(ref);
          } catch (error) {
            throw new Error(`cannot remove the container: ${publicDockerMessage(error)}`, { cause: error });
          }
        },
        () => false,
      ),

    /** Removes a container by its Docker id (whatever its name); an absent one counts as removed. */
    async removeDockerContainer(dockerId: string): Promise<'removed' | 'absent'> {
      return removeNamed(dockerId);
    },

    inspectContainer: (id: string): Promise<ObservedContainer | null> => heartbeating(() => inspect(dockerName(id))),
  };
}

export type ContainerDockerActivities = ReturnType<typeof createContainerDockerActivities>;
