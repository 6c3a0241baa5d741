/**
 * Containers as the API sees them: admission, host-port allocation and the
 * durable workflow that owns each container from then on.
 */
import { randomUUID } from 'node:crypto';
import { and, asc, count, desc, eq, isNull, isNotNull, type SQL } from 'drizzle-orm';
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { ContainersConfig } from '../core/config.js';
import { AppError, badRequest, conflict, notFound, unprocessable } from '../core/errors.js';
import { CONTROL_TASK_QUEUE, workflowIds } from '../core/temporal-names.js';
import type { Database } from '../db/client.js';
import { containers, images, users } from '../db/schema.js';
import type { container as containerWorkflow } from '../workflows/container.js';
import { CONTAINER_OPERATIONS, type ContainerOperation, type ContainerView } from '../workflows/container-api.js';
import type { HostService } from './hosts.js';
import type { PublicUser } from './users.js';
import { problemForFailureType, problemForWorkflowFailure } from './workflow-failures.js';
import { FailureType } from '../core/failures.js';
import { containerPricePerPeriod } from '../billing/prices.js';

export type ContainerRow = typeof containers.$inferSelect;

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

export function toContainerView(row: ContainerRow) {
  return {
    id: row.id,
    name: row.name,
    userId: row.userId,
    host: row.hostId,
    imageId: row.imageId,
    image: row.imageReference,
    state: row.state,
    stateReason: row.stateReason,
    hostIp: row.hostIp,
    hostPort: row.hostPort,
    containerPort: row.containerPort,
    memoryMb: row.memoryMb,
    cpus: row.cpuMillis / 1000,
    pidsLimit: row.pidsLimit,
    pricePerPeriod: row.pricePerPeriod,
    exitCode: row.exitCode,
    charged: row.charged,
    workflowId: workflowIds.container(row.id),
    createdAt: row.createdAt,
    startedAt: row.startedAt,
    removedAt: row.removedAt,
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
  temporal: Client;
  hosts: Pick<HostService, 'get'>;
  config: ContainersConfig;
}) {
  const { db, temporal, hosts, config } = deps;

  function visibleTo(user: PublicUser): SQL | undefined {
    return user.role === 'admin' ? undefined : eq(containers.userId, user.id);
  }

  async function getVisible(user: PublicUser, id: string) {
    const [row] = await db.select().from(containers).where(and(eq(containers.id, id), visibleTo(user)));
    if (!row) throw notFound('Container');
    return toContainerView(row);
  }

  /** Runs an operation through the container's workflow update and answers with the new state. */
  async function operate(user: PublicUser, id: string, operation: ContainerOperation): Promise<ContainerView> {
    const current = await getVisible(user, id);
    if (current.removedAt) {
      if (operation === 'remove') throw notFound('Container');
      throw conflict(`The container is ${current.state}.`);
    }
    const handle = temporal.workflow.getHandle(workflowIds.container(id));
    try {
      return await handle.executeUpdate(CONTAINER_OPERATIONS[operation]);
    } catch (error) {
      if (error instanceof WorkflowUpdateFailedError) throw problemForWorkflowFailure(error);
      throw error;
    }
  }

  /** Admission and port allocation, in one transaction serialised per user. */
  async function admit(user: PublicUser, input: CreateContainerInput) {
    const resources = resourcesFor(config, input);

    const [image] = await db.select().from(images).where(eq(images.id, input.imageId));
    if (!image || (image.userId !== user.id && image.visibility !== 'public')) throw notFound('Image');
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
          const [owner] = await tx.select({ balance: users.balance }).from(users).where(eq(users.id, user.id)).for('update');
          const [live] = await tx
            .select({ n: count() })
            .from(containers)
            .where(and(eq(containers.userId, user.id), isNull(containers.removedAt)));
          if ((live?.n ?? 0) >= config.maxPerUser) {
            throw conflict(`Container limit reached: at most ${config.maxPerUser} containers per user.`);
          }
          if ((owner?.balance ?? 0) < resources.pricePerPeriod) {
            throw new AppError(409, 'insufficient-funds', 'Insufficient Funds', `The balance (${owner?.balance ?? 0}) cannot pay the first billing period (${resources.pricePerPeriod}).`);
          }
          const used = new Set(
            (
              await tx
                .select({ port: containers.hostPort })
                .from(containers)
                .where(and(eq(containers.hostId, image.hostId), isNull(containers.removedAt)))
            ).map((r) => r.port),
          );
          let hostPort: number | undefined;
          for (let p = config.portRange.from; p <= config.portRange.to; p++) {
            if (!used.has(p)) {
              hostPort = p;
              break;
            }
          }
          if (hostPort === undefined) throw conflict(`No free host port on ${image.hostId} in ${config.portRange.from}-${config.portRange.to}.`);
          const [row] = await tx
            .insert(containers)
            .values({
              userId: user.id,
              hostId: image.hostId,
              imageId: image.id,
              imageReference: image.reference,
              hostIp: host.publishIp,
              name: input.name ?? `c-${randomUUID().slice(0, 8)}`,
              hostPort,
              containerPort: containerPort!,
              memoryMb: resources.memoryMb,
              cpuMillis: resources.cpuMillis,
              pidsLimit: resources.pidsLimit,
              pricePerPeriod: resources.pricePerPeriod,
              state: 'creating',
              env: Object.entries(input.env ?? {}).map(([k, v]) => `${k}=${v}`),
              cmd: input.cmd ?? null,
            })
            .returning();
          return row!;
        });
      } catch (error) {
        const constraint = constraintOf(error);
        if (constraint === 'containers_user_name_live_key') throw conflict(`You already have a container named "${input.name}".`);
        // Another request took the same port at the same moment: pick again.
        if (constraint === 'containers_host_port_live_key' && attempt < 20) continue;
        throw error;
      }
    }
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

    async create(user: PublicUser, input: CreateContainerInput) {
      const row = await admit(user, input);
      await temporal.workflow.start<typeof containerWorkflow>('container', {
        taskQueue: CONTROL_TASK_QUEUE,
        workflowId: workflowIds.container(row.id),
        args: [
          {
            id: row.id,
            userId: user.id,
            hostId: row.hostId,
            spec: {
              id: row.id,
              userId: user.id,
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
          },
        ],
        memo: { userId: user.id },
      });
      return { id: row.id, workflowId: workflowIds.container(row.id) };
    },

    async list(user: PublicUser, filter: { userId?: string; host?: string; state?: string; limit: number; offset: number }) {
      const where = and(
        visibleTo(user),
        filter.userId && user.role === 'admin' ? eq(containers.userId, filter.userId) : undefined,
        filter.host ? eq(containers.hostId, filter.host) : undefined,
        filter.state ? eq(containers.state, filter.state as ContainerRow['state']) : isNull(containers.removedAt),
      );
      const [rows, [totals]] = await Promise.all([
        db
          .select()
          .from(containers)
          .where(where)
          .orderBy(desc(containers.createdAt), asc(containers.id))
          .limit(filter.limit)
          .offset(filter.offset),
        db.select({ n: count() }).from(containers).where(where),
      ]);
      return { items: rows.map(toContainerView), total: totals?.n ?? 0 };
    },

    operate,

    /**
     * Waits for a new container to have run (the start update queues behind its creation) and
     * answers it; a container that could not be run is a problem with the workflow's reason.
     */
    async waitRunning(user: PublicUser, id: string) {
      // A creation that failed first ended the workflow, so the update may fail: the reason is told below.
      const refused = await operate(user, id, 'start').then(() => null, (error: unknown) => ({ error }));
      const view = await getVisible(user, id);
      if (view.state !== 'failed') {
        if (refused) throw refused.error;
        return view;
      }
      const reason = view.stateReason ?? 'the container could not be run';
      const unpaid = reason.startsWith('insufficient balance') ? problemForFailureType(FailureType.InsufficientFunds, reason) : undefined;
      throw unpaid ?? new AppError(502, 'container-failed', 'Container Failed', reason);
    },
  };
}

export type ContainerService = ReturnType<typeof createContainerService>;

/** Live containers of a host that Docker has seen, for reconciliation on its host worker. */
export async function liveContainersOnHost(db: Database, hostId: string): Promise<Array<{ id: string }>> {
  return db
    .select({ id: containers.id })
    .from(containers)
    .where(and(eq(containers.hostId, hostId), isNull(containers.removedAt), isNotNull(containers.dockerId)));
}
