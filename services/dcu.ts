/**
 * DCU tasks as the API sees them: started as `dcu-<task_id>` workflows, read from
 * dcu_tasks (plus the running phase's heartbeat for live bytes), cancelled by signal,
 * downloaded through a presigned MinIO URL. A user sees only their own tasks; an
 * admin sees all.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { and, count, desc, eq, ilike, inArray, lt, notInArray, sql, type SQL } from 'drizzle-orm';
import type { Client as MinioClient } from 'minio';
import type { Database, Transaction } from '../db/client.js';
import { dcuTasks, users } from '../db/schema.js';
import { AppError, badRequest, conflict, forbidden, notFound, unavailable } from '../core/errors.js';
import { DCU_PROGRESS, DCU_STATES, DCU_STATE_DISPLAY, isTerminal, type DcuState } from '../core/dcu-state.js';
import { quotaRefusal } from '../core/dcu-limits.js';
import { InvalidReferenceError, parseImageReference } from '../core/image-ref.js';
import { CONTROL_TASK_QUEUE, DCU_SIGNALS, workflowIds } from '../core/temporal-names.js';
import type { dcu, DcuInput } from '../workflows/dcu.js';
import type { HostService } from './hosts.js';
import type { RegistryPolicy } from './registry-policy.js';
import { workflowRunning } from './workflow-status.js';
import type { PublicUser } from './users.js';

export type DcuTaskRow = typeof dcuTasks.$inferSelect;

/** A task in the original service's shape (snake_case), plus Berth's additions. */
export interface DcuTaskView {
  task_id: string;
  state: DcuState;
  state_display: string;
  docker_image_name: string;
  gzip_file_name: string;
  minio_object_name: string;
  progress: number;
  duration: number;
  username: string;
  start_time: string;
  end_time: string;
  error_message: string;
  bytes_done: number;
  bytes_total: number;
  size_bytes: number | null;
  compressed_bytes: number | null;
  sha256: string | null;
  host: string | null;
  artifacts_expired: boolean;
  /** Minor units charged (once the object was in MinIO). */
  charged: number;
}

export interface DcuQuery {
  docker_image_name?: string;
  username?: string;
  state?: DcuState;
  page: number;
  page_size: number;
}

/** page_size above this is capped, not refused. */
export const DCU_PAGE_SIZE_MAX = 100;

export const gone = (detail: string) => new AppError(410, 'gone', 'Gone', detail);

/** Per-user DCU limits (README, DCU: "Cost, limits and reuse"). */
export interface DcuLimits {
  /** Tasks not in a terminal state, per user, at most; beyond: 429. */
  maxInFlight: number;
  /** Stored archives per user (MB); at or beyond: 409. */
  quotaMb: number;
  /** Minor units per started GB of tar; a start needs at least one GB's price in the balance. */
  pricePerGb: number;
}

const TERMINAL_STATES = DCU_STATES.filter((s) => isTerminal(s));
/** A task row this old whose workflow is not running any more no longer counts as in flight. */
const STALE_AFTER_MS = 60_000;

export const tooManyDcuTasks = (inFlight: number, limit: number) =>
  new AppError(429, 'too-many-dcu-tasks', 'Too Many Requests', `You have ${inFlight} DCU tasks in flight, the most allowed is ${limit}: start another once one has ended.`);
export const dcuQuotaExceeded = (message: string) => new AppError(409, 'dcu-quota-exceeded', 'DCU Quota Exceeded', message);
export const dcuInsufficientFunds = (balance: number, pricePerGb: number) =>
  new AppError(
    409,
    'insufficient-funds',
    'Insufficient Funds',
    `insufficient balance: a DCU task costs ${pricePerGb} per started GB of image and your balance is ${balance}.`,
  );

const pad = (n: number) => String(n).padStart(2, '0');

/** "YYYY-MM-DD HH:mm:ss" in UTC, as the original wrote times; '' for none. */
export function formatDcuTime(date: Date | null): string {
  if (!date) return '';
  return (
    `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}`
  );
}

export function toDcuTaskView(row: DcuTaskRow, now = new Date(), live?: { bytesDone: number; bytesTotal: number }): DcuTaskView {
  const state = row.state as DcuState;
  const end = row.endTime ?? (isTerminal(state) ? row.updatedAt : now);
  return {
    task_id: row.id,
    state,
    state_display: DCU_STATE_DISPLAY[state],
    docker_image_name: row.dockerImageName,
    gzip_file_name: row.gzipFileName ?? '',
    minio_object_name: row.minioObjectName ?? '',
    progress: DCU_PROGRESS[state],
    duration: row.startTime ? Math.max(0, end.getTime() - row.startTime.getTime()) : 0,
    username: row.username,
    start_time: formatDcuTime(row.startTime),
    end_time: formatDcuTime(row.endTime),
    error_message: row.errorMessage ?? '',
    bytes_done: live?.bytesDone ?? row.bytesDone,
    bytes_total: live?.bytesTotal ?? row.bytesTotal,
    size_bytes: row.sizeBytes,
    compressed_bytes: row.compressedBytes,
    sha256: row.sha256,
    host: row.hostId,
    artifacts_expired: row.artifactsExpired,
    charged: row.charged,
  };
}

/** Activities whose heartbeat carries the running phase's bytes. */
const PHASE_ACTIVITIES = new Set(['pullImage', 'dcuCompress', 'dcuUpload']);

/** Escapes LIKE wildcards so a substring filter matches literally. */
const likeLiteral = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

export function createDcuService(deps: {
  db: Database;
  temporal: Client;
  hosts: Pick<HostService, 'pick'>;
  /** Where images may be pulled from: the same rule as the images API. */
  registries: RegistryPolicy;
  /** For presigned download URLs; null when the API has no MinIO credentials. */
  minio: MinioClient | null;
  bucket: string;
  downloadUrlTtlSeconds: number;
  limits: DcuLimits;
}) {
  const { db, temporal, hosts, registries, minio, bucket, downloadUrlTtlSeconds, limits } = deps;

  /**
   * The owner's tasks in flight (not in a terminal state). Counted with the owner's row locked
   * by the caller. At the limit, rows older than a minute whose workflow is no longer running
   * (terminated by an operator, say) are marked failed and not counted, so they cannot block
   * the user for ever.
   */
  async function tasksInFlight(tx: Transaction, userId: string): Promise<number> {
    const open = and(eq(dcuTasks.userId, userId), notInArray(dcuTasks.state, TERMINAL_STATES));
    const [row] = await tx.select({ n: count() }).from(dcuTasks).where(open);
    const n = row?.n ?? 0;
    if (n < limits.maxInFlight) return n;
    const old = await tx
      .select({ id: dcuTasks.id })
      .from(dcuTasks)
      .where(and(open, lt(dcuTasks.createdAt, new Date(Date.now() - STALE_AFTER_MS))));
    const ended: string[] = [];
    for (const { id } of old) {
      try {
        if (!(await workflowRunning(temporal, workflowIds.dcu(id)))) ended.push(id);
      } catch {
        // Temporal could not say: count it, rather than let a hiccup lift the limit.
      }
    }
    if (ended.length === 0) return n;
    await tx
      .update(dcuTasks)
      .set({ state: 'failed', errorMessage: 'the task’s workflow ended without finishing it', endTime: sql`now()`, updatedAt: sql`now()` })
      .where(and(inArray(dcuTasks.id, ended), notInArray(dcuTasks.state, TERMINAL_STATES)));
    return n - ended.length;
  }

  /** Bytes of the owner's stored archives: completed, not expired, each object once. */
  async function storedBytes(tx: Transaction, userId: string): Promise<number> {
    const result = await tx.execute<{ used: string | null }>(sql`
      select coalesce(sum(compressed_bytes), 0)::text as used from (
        select distinct on (${dcuTasks.minioObjectName}) ${dcuTasks.compressedBytes} as compressed_bytes
        from ${dcuTasks}
        where ${dcuTasks.userId} = ${userId} and ${dcuTasks.state} = 'completed' and ${dcuTasks.artifactsExpired} = false
      ) stored`);
    return Number(result.rows[0]?.used ?? 0);
  }

  /** The caller's own task, or any task for an admin; 404 otherwise (also for someone else's). */
  async function visibleTask(user: PublicUser, taskId: string): Promise<DcuTaskRow> {
    const [row] = await db
      .select()
      .from(dcuTasks)
      .where(and(eq(dcuTasks.id, taskId), user.role === 'admin' ? undefined : eq(dcuTasks.userId, user.id)));
    if (!row) throw notFound('Task');
    return row;
  }

  /** Bytes of the running phase, from its last heartbeat; undefined when unknown. */
  async function liveProgress(taskId: string): Promise<{ bytesDone: number; bytesTotal: number } | undefined> {
    try {
      const description = await temporal.workflow.getHandle(workflowIds.dcu(taskId)).describe();
      const pending = description.raw.pendingActivities?.find((a) => PHASE_ACTIVITIES.has(a.activityType?.name ?? ''));
      const payload = pending?.heartbeatDetails?.payloads?.[0];
      if (!payload) return undefined;
      const details = defaultPayloadConverter.fromPayload<{ bytesDone?: number; bytesTotal?: number }>(payload);
      if (typeof details?.bytesDone !== 'number') return undefined;
      return { bytesDone: details.bytesDone, bytesTotal: Math.max(details.bytesTotal ?? 0, details.bytesDone) };
    } catch {
      return undefined; // progress is a nicety: the row says the rest
    }
  }

  return {
    /** Validates everything first (nothing starts on bad input), records the task, starts its workflow. */
    async start(user: PublicUser, body: { username: string; docker_image_name: string; host?: string }) {
      let owner: { id: string; username: string } = user;
      if (body.username !== user.username) {
        if (user.role !== 'admin') throw forbidden(`username must be your own ("${user.username}").`);
        const [row] = await db.select({ id: users.id, username: users.username }).from(users).where(eq(users.username, body.username));
        if (!row) throw badRequest(`Unknown username "${body.username}".`);
        owner = row;
      }
      // Not trimmed: a name with surrounding spaces is refused, as the images API refuses it.
      const imageName = body.docker_image_name;
      let ref;
      try {
        ref = parseImageReference(imageName);
      } catch (error) {
        if (error instanceof InvalidReferenceError) throw badRequest(`Invalid docker_image_name: ${error.message}.`);
        throw error;
      }
      const host = await hosts.pick(body.host);
      // Last, as it may resolve the registry's name: a refused host or reference never gets that far.
      await registries.check(ref, user);
      const taskId = randomUUID();
      await db.transaction(async (tx) => {
        // The owner's row lock serialises their starts: concurrent starts cannot overshoot the limits.
        const [locked] = await tx.select({ balance: users.balance }).from(users).where(eq(users.id, owner.id)).for('update');
        if (!locked) throw badRequest(`Unknown username "${owner.username}".`);
        const inFlight = await tasksInFlight(tx, owner.id);
        if (inFlight >= limits.maxInFlight) throw tooManyDcuTasks(inFlight, limits.maxInFlight);
        const refusal = quotaRefusal(await storedBytes(tx, owner.id), limits.quotaMb);
        if (refusal) throw dcuQuotaExceeded(refusal);
        if (locked.balance < limits.pricePerGb) throw dcuInsufficientFunds(locked.balance, limits.pricePerGb);
        await tx.insert(dcuTasks).values({
          id: taskId,
          userId: owner.id,
          username: owner.username,
          hostId: host.id,
          dockerImageName: imageName,
          state: 'idle',
        });
      });
      const input: DcuInput = {
        taskId,
        userId: owner.id,
        username: owner.username,
        hostId: host.id,
        reference: ref.reference,
        pricePerGb: limits.pricePerGb,
      };
      try {
        await temporal.workflow.start<typeof dcu>('dcu', {
          taskQueue: CONTROL_TASK_QUEUE,
          workflowId: workflowIds.dcu(taskId),
          args: [input],
          memo: { userId: owner.id, taskId, reference: ref.reference, hostId: host.id },
        });
      } catch (error) {
        await db
          .update(dcuTasks)
          .set({ state: 'failed', errorMessage: 'the workflow could not be started', endTime: sql`now()`, updatedAt: sql`now()` })
          .where(eq(dcuTasks.id, taskId));
        throw unavailable(`The task could not be started: ${error instanceof Error ? error.message : String(error)}`);
      }
      return { task_id: taskId, state: 'idle' as const };
    },

    async status(user: PublicUser, taskId: string): Promise<DcuTaskView> {
      const row = await visibleTask(user, taskId);
      const live = isTerminal(row.state as DcuState) || row.state === 'idle' ? undefined : await liveProgress(taskId);
      return toDcuTaskView(row, new Date(), live);
    },

    async query(user: PublicUser, q: DcuQuery): Promise<{ total: number; items: DcuTaskView[] }> {
      const filters: Array<SQL | undefined> = [];
      if (user.role !== 'admin') filters.push(eq(dcuTasks.userId, user.id));
      if (q.username) filters.push(eq(dcuTasks.username, q.username));
      if (q.state) filters.push(eq(dcuTasks.state, q.state));
      if (q.docker_image_name) filters.push(ilike(dcuTasks.dockerImageName, `%${likeLiteral(q.docker_image_name)}%`));
      const where = and(...filters);
      const pageSize = Math.min(q.page_size, DCU_PAGE_SIZE_MAX);
      const [rows, [totals]] = await Promise.all([
        db
          .select()
          .from(dcuTasks)
          .where(where)
          .orderBy(desc(dcuTasks.createdAt), desc(dcuTasks.id))
          .limit(pageSize)
          .offset((q.page - 1) * pageSize),
        db.select({ total: count() }).from(dcuTasks).where(where),
      ]);
      const now = new Date();
      return { total: totals?.total ?? 0, items: rows.map((row) => toDcuTaskView(row, now)) };
    },

    /** Signals `cancel`; the workflow stops the running phase and ends the task in failed. */
    async cancel(user: PublicUser, taskId: string) {
      const row = await visibleTask(user, taskId);
      if (isTerminal(row.state as DcuState)) throw conflict(`The task has ended already (${row.state}).`);
      try {
        await temporal.workflow.getHandle(workflowIds.dcu(taskId)).signal(DCU_SIGNALS.cancel, `cancelled by ${user.username}`);
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) throw conflict('The task has ended already.');
        throw error;
      }
      return { task_id: taskId, state: row.state as DcuState, cancel_requested: true };
    },

    /** A presigned GET URL of the task's archive. */
    async downloadUrl(user: PublicUser, taskId: string): Promise<string> {
      const row = await visibleTask(user, taskId);
      if (row.state !== 'completed' || !row.minioObjectName) throw conflict(`The task is ${row.state}, not completed: there is no archive.`);
      if (row.artifactsExpired) throw gone('The archive has expired and was deleted.');
      if (!minio) throw unavailable('Downloads are not configured (no MinIO credentials).');
      const fileName = row.minioObjectName.slice(row.minioObjectName.lastIndexOf('/') + 1);
      return minio.presignedGetObject(bucket, row.minioObjectName, downloadUrlTtlSeconds, {
        'response-content-disposition': `attachment; filename="${fileName}"`,
        'response-content-type': 'application/gzip',
      });
    },
  };
}

export type DcuService = ReturnType<typeof createDcuService>;
