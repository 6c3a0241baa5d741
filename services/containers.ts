/**
 * Containers as the API sees them: admission, host-port allocation and the
 * durable workflow that owns each container from then on.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { ContainersConfig } from '../core/config.js';
import { AppError, badRequest, conflict, notFound, unprocessable } from '../core/errors.js';
import { rootCause } from '../core/failures.js';
import { isContainerStatus, nextChargeAfter } from '../core/container-state.js';
import type { Database } from '../db/client.js';
import { billing, InsufficientFundsError } from '../billing/ledger.js';
import { containerPricePerPeriod } from '../billing/prices.js';
import {
  CONTAINER_OPERATIONS,
  CREATE_START_UPDATE_ID,
  startUpdate,
  containerWorkflow,
  containerWorkflowId,
  type ContainerInput,
  type ContainerOperation,
  type ContainerView,
} from '../contracts/container.js';
import * as containerRepo from '../repositories/containers.js';
import { CONTAINER_CONSTRAINTS, type ContainerRow, type Viewer } from '../repositories/containers.js';
import type { Page, PageRequest } from '../repositories/paging.js';
import * as imageRepo from '../repositories/images.js';
import * as userRepo from '../repositories/users.js';
import type { HostService } from './hosts.js';
import type { WorkflowRuns } from './workflow-runs.js';
import { problemForWorkflowFailure } from './workflow-failures.js';
import { LIMITS, countLimited } from '../core/metrics.js';

export type { ContainerRow } from '../repositories/containers.js';

export interface CreateContainerInput {
  imageId: string;
  name?: string;
  containerPort?: number;
  memoryMb?: number;
  cpus?: number;
  env?: Record<string, string>;
  cmd?: string[];
  pidsLimit?: number;
}

/** The resources a container asks for, validated against the settings, and their price. */
export interface ContainerResources {
  memoryMb: number;
  cpuMillis: number;
  pidsLimit: number;
  pricePerPeriod: number;
}

/**
 * Checks the limits asked for (or their defaults) against the minimums and maximums, and
 * prices them. Nothing can mean "unlimited": CPUs are stored in thousandths and must come to
 * at least the minimum, so Docker never gets NanoCpus 0.
 */
export function resourcesFor(config: ContainersConfig, input: Pick<CreateContainerInput, 'memoryMb' | 'cpus' | 'pidsLimit'>): ContainerResources {
  const memoryMb = input.memoryMb ?? config.defaultMemoryMb;
  if (memoryMb < config.minMemoryMb || memoryMb > config.maxMemoryMb) {
    throw badRequest(`memoryMb must be between ${config.minMemoryMb} and ${config.maxMemoryMb}.`);
  }
  const cpus = input.cpus ?? config.defaultCpus;
  const cpuMillis = Math.round(cpus * 1000);
  if (!Number.isFinite(cpus) || cpuMillis < config.minCpuMillis || cpus > config.maxCpus) {
    throw badRequest(`cpus must be between ${config.minCpuMillis / 1000} and ${config.maxCpus}.`);
  }
  if (Math.abs(cpus * 1000 - cpuMillis) > 1e-6) throw badRequest('cpus can have at most three decimals (0.001 CPU).');
  const pidsLimit = input.pidsLimit ?? config.defaultPidsLimit;
  if (pidsLimit > config.maxPidsLimit) throw badRequest(`pidsLimit must be at most ${config.maxPidsLimit}.`);
  return { memoryMb, cpuMillis, pidsLimit, pricePerPeriod: containerPricePerPeriod({ cpuMillis, memoryMb }, config.prices) };
}

/** A container as the API shows it; `billingPeriodMs` to say when a running one is charged next. */
export function toContainerView(row: ContainerRow, billingPeriodMs: number, now = Date.now()) {
  return {
    id: row.id,
    name: row.name,
    userId: row.userId,
    host: row.hostId,
    imageId: row.imageId,
    image: row.imageReference,
    state: row.state,
    stateReason: row.stateReason,
    stateReasonCode: row.stateReasonCode,
    hostIp: row.hostIp,
    hostPort: row.hostPort,
    containerPort: row.containerPort,
    memoryMb: row.memoryMb,
    cpus: row.cpuMillis / 1000,
    pidsLimit: row.pidsLimit,
    pricePerPeriod: row.pricePerPeriod,
    nextChargeAt:
      row.state === 'running' && row.startedAt && row.pricePerPeriod !== null
        ? new Date(nextChargeAfter(row.startedAt.getTime(), now, billingPeriodMs))
        : null,
    exitCode: row.exitCode,
    charged: row.charged,
    workflowId: containerWorkflowId(row.id),
    createdAt: row.createdAt,
    startedAt: row.startedAt,
    removedAt: row.removedAt,
  };
}

export type ContainerApiView = ReturnType<typeof toContainerView>;

/** The workflow's input for an admitted record: the record fixed everything it needs. */
function workflowInput(row: ContainerRow, config: ContainersConfig): ContainerInput {
  return {
    id: row.id,
    userId: row.userId,
    hostId: row.hostId,
    spec: {
      id: row.id,
      userId: row.userId,
      image: row.imageReference,
      hostIp: row.hostIp,
      hostPort: row.hostPort,
      containerPort: row.containerPort,
      memoryMb: row.memoryMb,
      cpuMillis: row.cpuMillis,
      env: row.env,
      cmd: row.cmd,
      pidsLimit: row.pidsLimit!,
    },
    pricePerPeriod: row.pricePerPeriod!, // set by admit(); null only on rows older than prices by resources
    billingPeriodMs: config.billingPeriodMs,
    historyLimit: config.historyLimit,
  };
}

const PG_UNIQUE = '23505';
const constraintOf = (error: unknown): string | undefined => {
  const e = error as { code?: string; constraint?: string; cause?: { code?: string; constraint?: string } };
  const pg = e.code === PG_UNIQUE ? e : e.cause?.code === PG_UNIQUE ? e.cause : undefined;
  return pg?.constraint;
};

export function createContainerService(deps: {
  db: Database;
  /** For the container's updates (start, stop, restart, remove). */
  temporal: Client;
  runs: Pick<WorkflowRuns, 'start' | 'startWithUpdate'>;
  hosts: Pick<HostService, 'get'>;
  config: ContainersConfig;
}) {
  const { db, temporal, runs, hosts, config } = deps;

  async function getVisible(user: Viewer, id: string) {
    const row = await containerRepo.findVisible(db, user, id);
    if (!row) throw notFound('Container');
    return toContainerView(row, config.billingPeriodMs);
  }

  /** Runs an operation through the container's workflow update and answers with the new state. */
  async function operate(user: Viewer, id: string, operation: ContainerOperation): Promise<ContainerView> {
    const current = await getVisible(user, id);
    if (current.removedAt) {
      if (operation === 'remove') throw notFound('Container');
      throw conflict(`The container is ${current.state}.`);
    }
    const handle = temporal.workflow.getHandle(containerWorkflowId(id));
    try {
      return await handle.executeUpdate(CONTAINER_OPERATIONS[operation]);
    } catch (error) {
      if (error instanceof WorkflowUpdateFailedError) throw problemForWorkflowFailure(error);
      throw error;
    }
  }

  /** Admission and port allocation, in one transaction serialised per user. */
  async function admit(user: Viewer, input: CreateContainerInput): Promise<ContainerRow> {
    const resources = resourcesFor(config, input);

    // Their own image or a public one, admins included: an admin runs no one else's private image.
    const image = await imageRepo.findVisible(db, { id: user.id, role: 'user' }, input.imageId);
    if (!image) throw notFound('Image');
    let containerPort = input.containerPort;
    if (containerPort === undefined) {
      const first = image.ports.map((p) => Number.parseInt(p, 10)).find((p) => p >= 1 && p <= 65535);
      if (first === undefined) throw badRequest('The image exposes no port: give containerPort.');
      containerPort = first;
    }
    const host = await hosts.get(image.hostId);
    if (!host || host.status !== 'up') throw unprocessable(`The image's host "${image.hostId}" is down.`);

    for (let attempt = 0; ; attempt++) {
      try {
        return await db.transaction(async (tx) => {
          await userRepo.lockUser(tx, user.id);
          if ((await containerRepo.countLive(tx, user.id)) >= config.maxPerUser) {
            countLimited(LIMITS.containerQuota);
            throw conflict(`Container limit reached: at most ${config.maxPerUser} containers per user.`);
          }
          await billing.assertCanPay(tx, { userId: user.id, amount: resources.pricePerPeriod, what: 'the first billing period' });
          const hostPort = await containerRepo.freePort(tx, image.hostId, config.portRange);
          if (hostPort === undefined) throw conflict(`No free host port on ${image.hostId} in ${config.portRange.from}-${config.portRange.to}.`);
          return containerRepo.insert(tx, {
            userId: user.id,
            hostId: image.hostId,
            imageId: image.id,
            imageReference: image.reference,
            hostIp: host.publishIp,
            name: input.name ?? `c-${randomUUID().slice(0, 8)}`,
            hostPort,
            containerPort,
            memoryMb: resources.memoryMb,
            cpuMillis: resources.cpuMillis,
            pidsLimit: resources.pidsLimit,
            pricePerPeriod: resources.pricePerPeriod,
            state: 'creating',
            env: Object.entries(input.env ?? {}).map(([k, v]) => `${k}=${v}`),
            cmd: input.cmd ?? null,
          });
        });
      } catch (error) {
        const constraint = constraintOf(error);
        if (constraint === CONTAINER_CONSTRAINTS.userNameLive) throw conflict(`You already have a container named "${input.name}".`);
        // Another request took the same port at the same moment: pick again.
        if (constraint === CONTAINER_CONSTRAINTS.hostPortLive && attempt < 20) continue;
        throw error;
      }
    }
  }

  /** The start of an admitted record's workflow: its id, input, search attributes and memo. */
  const startOptions = (row: ContainerRow) => ({
    workflowId: containerWorkflowId(row.id),
    args: [workflowInput(row, config)] as [ContainerInput],
    subject: { userId: row.userId, hostId: row.hostId, resourceId: row.id },
    memo: { userId: row.userId },
  });

  /**
   * A record whose workflow could not be started, or not confirmed started, is released (failed,
   * start_failed): its port and slot are free again, and a run that lands later finds it ended and
   * does nothing. Only while the record is still `creating` with nothing charged: a record the
   * run has taken (it charged the first period, or recorded a state) is the run's, which exists.
   * Answers whether it released the record; a release that fails counts as done (the nightly
   * release finds the record without a workflow).
   */
  async function releaseUnstarted(row: ContainerRow, error: unknown): Promise<boolean> {
    const reason = `its workflow could not be started: ${rootCause(error).message}`;
    return db.transaction((tx) => containerRepo.releaseUnstarted(tx, row.id, reason)).catch(() => true);
  }

  /**
   * The answer to a run that was asked to start: the container as recorded once it runs, or the
   * problem of a run that failed, told by its reason code (insufficient funds a 409, anything
   * else a 502 with the workflow's reason); `refused` is the start update's failure, if any (a
   * creation that failed ends the workflow, so the update may fail: the record tells why).
   */
  async function runOutcome(user: Viewer, id: string, refused: { error: unknown } | null) {
    const view = await getVisible(user, id);
    if (view.state !== 'failed') {
      if (refused) {
        if (refused.error instanceof WorkflowUpdateFailedError) throw problemForWorkflowFailure(refused.error);
        throw refused.error;
      }
      return view;
    }
    const reason = view.stateReason ?? 'the container could not be run';
    if (view.stateReasonCode === 'insufficient_funds') throw new InsufficientFundsError(reason);
    throw new AppError(502, 'container-failed', 'Container Failed', reason);
  }

  return {
    getVisible,

    /** What a container with these limits would cost per billing period (nothing is created). */
    quote(input: Pick<CreateContainerInput, 'memoryMb' | 'cpus' | 'pidsLimit'>) {
      const resources = resourcesFor(config, input);
      return {
        memoryMb: resources.memoryMb,
        cpus: resources.cpuMillis / 1000,
        pidsLimit: resources.pidsLimit,
        pricePerPeriod: resources.pricePerPeriod,
        billingPeriodSeconds: Math.round(config.billingPeriodMs / 1000),
        prices: { ...config.prices },
      };
    },

    /**
     * Admits the container (its record holds a port and one of the user's slots), then starts
     * its workflow. A workflow that cannot be started releases the record in the same request
     * (failed, start_failed), so the port and the slot are free again, and the error is raised.
     */
    async create(user: Viewer, input: CreateContainerInput) {
      const row = await admit(user, input);
      const workflowId = containerWorkflowId(row.id);
      try {
        await runs.start(containerWorkflow, startOptions(row));
      } catch (error) {
        // Not released: a run whose start the API could not confirm has taken the record. It runs.
        if (await releaseUnstarted(row, error)) throw error;
      }
      return { id: row.id, workflowId };
    },

    /**
     * create(), then a wait for the container to run: the workflow is started with its start update in the same
     * request to Temporal (update-with-start, with the update's fixed id CREATE_START_UPDATE_ID), so the run takes
     * the update in its first task, and the answer is the container once it runs (or the problem of why it could
     * not). When the start could not be confirmed and the record turns out to be the run's (not released), the
     * answer is the run's, through the same update.
     */
    async createRunning(user: Viewer, input: CreateContainerInput) {
      const row = await admit(user, input);
      const outcome = await runs.startWithUpdate(containerWorkflow, startOptions(row), startUpdate, CREATE_START_UPDATE_ID);
      if (outcome.started) return runOutcome(user, row.id, 'error' in outcome ? { error: outcome.error } : null);
      if (await releaseUnstarted(row, outcome.error)) throw outcome.error;
      const handle = temporal.workflow.getHandle(containerWorkflowId(row.id));
      const refused = await handle.executeUpdate(startUpdate, { updateId: CREATE_START_UPDATE_ID }).then(
        () => null,
        (error: unknown) => ({ error }),
      );
      return runOutcome(user, row.id, refused);
    },

    /** The containers the user may see, newest first (admins: all, filtered by user, host and state). */
    async list(user: Viewer, filter: { userId?: string; host?: string; state?: string }, page: PageRequest): Promise<Page<ContainerApiView>> {
      const { items, total } = await containerRepo.listVisible(
        db,
        user,
        { userId: filter.userId, host: filter.host, state: isContainerStatus(filter.state) ? filter.state : undefined },
        page,
      );
      const now = Date.now();
      return { items: items.map((row) => toContainerView(row, config.billingPeriodMs, now)), total };
    },

    operate,
  };
}

export type ContainerService = ReturnType<typeof createContainerService>;

