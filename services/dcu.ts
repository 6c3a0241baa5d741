/**
 * DCU tasks as the API sees them: started as `dcu-<task_id>` workflows, read from
 * dcu_tasks (plus the running phase's heartbeat for live bytes), cancelled by signal,
 * downloaded through a presigned MinIO URL. A user sees only their own tasks; an
 * admin sees all.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Client as MinioClient } from 'minio';
import type { Database, Transaction } from '../db/client.js';
import { AppError, badRequest, conflict, forbidden, notFound, unavailable } from '../core/errors.js';
import { DCU_PROGRESS, DCU_STATE_DISPLAY, DCU_STATE_DISPLAY_ZH, isTerminal, type DcuState } from '../core/dcu-state.js';
import { quotaRefusal } from '../core/dcu-limits.js';
import { LIMITS, countLimited } from '../core/metrics.js';
import { rootCause } from '../core/failures.js';
import { InvalidReferenceError, parseImageReference } from '../core/image-ref.js';
import { billing, InsufficientFundsError } from '../billing/ledger.js';
import { mb } from '../core/sizes.js';
import { dcuCancelSignal, dcuWorkflow, dcuWorkflowId, type DcuInput } from '../contracts/dcu.js';
import { PULL_ACTIVITY_NAMES } from '../contracts/pull-image.js';
import * as tasks from '../repositories/dcu-tasks.js';
import type { DcuTaskRow } from '../repositories/dcu-tasks.js';
import { pageRequest } from '../repositories/paging.js';
import * as userRepo from '../repositories/users.js';
import type { HostService } from './hosts.js';
import type { RegistryPolicy } from './registry-policy.js';
import type { WorkflowRuns } from './workflow-runs.js';
import { workflowRunning } from './workflow-status.js';
import type { PublicUser } from './users.js';

export type { DcuTaskRow } from '../repositories/dcu-tasks.js';

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

/** A task row this old whose workflow is not running any more no longer counts as in flight. */
const STALE_AFTER_MS = 60_000;

export const tooManyDcuTasks = (inFlight: number, limit: number) =>
  new AppError(429, 'too-many-dcu-tasks', 'Too Many Requests', `You have ${inFlight} DCU tasks in flight, the most allowed is ${limit}: start another once one has ended.`).withDetailZh(
    `您有 ${inFlight} 个 DCU 任务正在进行，最多允许 ${limit} 个：请在其中一个结束后再启动。`,
  );
export const dcuQuotaExceeded = (message: string) => new AppError(409, 'dcu-quota-exceeded', 'DCU Quota Exceeded', message);
const pad = (n: number) => String(n).padStart(2, '0');
const taskNotFound = () => notFound('Task').withDetailZh('任务不存在。');

/** "YYYY-MM-DD HH:mm:ss" in UTC, as the original wrote times; '' for none. */
export function formatDcuTime(date: Date | null): string {
  if (!date) return '';
  return (
    `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}`
  );
}

export function toDcuTaskView(row: DcuTaskRow, now = new Date(), live?: { bytesDone: number; bytesTotal: number }): DcuTaskView {
  const state = row.state;
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

/** Activities whose heartbeat carries the running phase's bytes: the Docker pull (by either of its names), compress, upload. */
const PHASE_ACTIVITIES = new Set([...PULL_ACTIVITY_NAMES, 'dcuCompress', 'dcuUpload']);

export function createDcuService(deps: {
  db: Database;
  /** For the cancel signal and the running phase's progress; starts go through `runs`. */
  temporal: Client;
  runs: Pick<WorkflowRuns, 'start'>;
  hosts: Pick<HostService, 'pick'>;
  /** Where images may be pulled from: the same rule as the images API. */
  registries: RegistryPolicy;
  /** For presigned download URLs; null when the API has no MinIO credentials. */
  minio: MinioClient | null;
  bucket: string;
  downloadUrlTtlSeconds: number;
  limits: DcuLimits;
}) {
  const { db, temporal, runs, hosts, registries, minio, bucket, downloadUrlTtlSeconds, limits } = deps;

  /**
   * The owner's tasks in flight (not in a terminal state). Counted with the owner's row locked
   * by the caller. At the limit, rows older than a minute whose workflow is no longer running
   * (terminated by an operator, say) are marked failed and not counted, so they cannot block
   * the user for ever.
   */
  async function tasksInFlight(tx: Transaction, userId: string): Promise<number> {
    const n = await tasks.countInFlight(tx, userId);
    if (n < limits.maxInFlight) return n;
    const ended: string[] = [];
    for (const id of await tasks.inFlightCreatedBefore(tx, userId, new Date(Date.now() - STALE_AFTER_MS))) {
      try {
        if (!(await workflowRunning(temporal, dcuWorkflowId(id)))) ended.push(id);
      } catch {
        // Temporal could not say: count it, rather than let a hiccup lift the limit.
      }
    }
    if (ended.length === 0) return n;
    await tasks.failUnfinished(tx, ended, 'the task’s workflow ended without finishing it');
    return n - ended.length;
  }

  /** The caller's own task, or any task for an admin; 404 otherwise (also for someone else's). */
  async function visibleTask(user: PublicUser, taskId: string): Promise<DcuTaskRow> {
    const row = await tasks.findVisible(db, user, taskId);
    if (!row) throw taskNotFound();
    return row;
  }

  /** Bytes of the running phase, from its last heartbeat; undefined when unknown. */
  async function liveProgress(taskId: string): Promise<{ bytesDone: number; bytesTotal: number } | undefined> {
    try {
      const description = await temporal.workflow.getHandle(dcuWorkflowId(taskId)).describe();
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
        if (user.role !== 'admin') throw forbidden(`username must be your own ("${user.username}").`).withDetailZh(`username 必须是您自己的用户名（"${user.username}"）。`);
        const id = await userRepo.findUserIdByName(db, body.username);
        if (!id) throw badRequest(`Unknown username "${body.username}".`).withDetailZh(`未知的用户名 "${body.username}"。`);
        owner = { id, username: body.username };
      }
      // Not trimmed: a name with surrounding spaces is refused, as the images API refuses it.
      const imageName = body.docker_image_name;
      let ref;
      try {
        ref = parseImageReference(imageName);
      } catch (error) {
        if (error instanceof InvalidReferenceError) throw badRequest(`Invalid docker_image_name: ${error.message}.`).withDetailZh(`docker_image_name 无效：${error.message}。`);
        throw error;
      }
      const host = await hosts.pick(body.host);
      // Last, as it may resolve the registry's name: a refused host or reference never gets that far.
      await registries.check(ref, user);
      const taskId = randomUUID();
      await db.transaction(async (tx) => {
        // The owner's row lock serialises their starts: concurrent starts cannot overshoot the limits.
        if (!(await userRepo.lockUser(tx, owner.id))) throw badRequest(`Unknown username "${owner.username}".`).withDetailZh(`未知的用户名 "${owner.username}"。`);
        const inFlight = await tasksInFlight(tx, owner.id);
        if (inFlight >= limits.maxInFlight) {
          countLimited(LIMITS.dcuInFlight);
          throw tooManyDcuTasks(inFlight, limits.maxInFlight);
        }
        const stored = await tasks.storedBytes(tx, owner.id);
        const refusal = quotaRefusal(stored, limits.quotaMb);
        if (refusal) {
          countLimited(LIMITS.dcuQuota);
          throw dcuQuotaExceeded(refusal).withDetailZh(
            `DCU 存储配额已用完：您存储的归档占用 ${mb(stored)} MB，配额为 ${limits.quotaMb} MB；旧归档过期后才能启动新任务。`,
          );
        }
        // A start needs at least one GB's price in the balance (the charge comes once the object is in MinIO).
        let refusedZh = '';
        await billing
          .assertCanPay(tx, {
            userId: owner.id,
            amount: limits.pricePerGb,
            what: 'a DCU task',
            refusal: (balance) => {
              refusedZh = `余额不足：DCU 任务按镜像每开始 1 GB 收费 ${limits.pricePerGb}，您的余额为 ${balance}。`;
              return `insufficient balance: a DCU task costs ${limits.pricePerGb} per started GB of image and your balance is ${balance}.`;
            },
          })
          .catch((error: unknown) => {
            throw error instanceof InsufficientFundsError && refusedZh ? error.withDetailZh(refusedZh) : error;
          });
        await tasks.insertTask(tx, { id: taskId, userId: owner.id, username: owner.username, hostId: host.id, dockerImageName: imageName, state: 'idle' });
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
        await runs.start(dcuWorkflow, {
          workflowId: dcuWorkflowId(taskId),
          args: [input],
          subject: { userId: owner.id, hostId: host.id, resourceId: taskId },
          memo: { userId: owner.id, taskId, reference: ref.reference, hostId: host.id },
        });
      } catch (error) {
        await tasks.failUnfinished(db, [taskId], 'the workflow could not be started');
        const cause = rootCause(error).message;
        throw unavailable(`The task could not be started: ${cause}`).withDetailZh(`任务无法启动：${cause}`);
      }
      return { task_id: taskId, state: 'idle' as const };
    },

    async status(user: PublicUser, taskId: string): Promise<DcuTaskView> {
      const row = await visibleTask(user, taskId);
      const live = isTerminal(row.state) || row.state === 'idle' ? undefined : await liveProgress(taskId);
      return toDcuTaskView(row, new Date(), live);
    },

    async query(user: PublicUser, q: DcuQuery): Promise<{ total: number; items: DcuTaskView[] }> {
      const page = pageRequest({ page: q.page, pageSize: Math.min(q.page_size, DCU_PAGE_SIZE_MAX) });
      const { items, total } = await tasks.listVisible(db, user, { dockerImageName: q.docker_image_name, username: q.username, state: q.state }, page);
      const now = new Date();
      return { total, items: items.map((row) => toDcuTaskView(row, now)) };
    },

    /** Signals `cancel`; the workflow stops the running phase and ends the task in failed. */
    async cancel(user: PublicUser, taskId: string) {
      const row = await visibleTask(user, taskId);
      if (isTerminal(row.state)) throw conflict(`The task has ended already (${row.state}).`).withDetailZh(`任务已结束（${DCU_STATE_DISPLAY_ZH[row.state]}）。`);
      try {
        await temporal.workflow.getHandle(dcuWorkflowId(taskId)).signal(dcuCancelSignal, `cancelled by ${user.username}`);
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) throw conflict('The task has ended already.').withDetailZh('任务已结束。');
        throw error;
      }
      return { task_id: taskId, state: row.state, cancel_requested: true };
    },

    /** A presigned GET URL of the task's archive. */
    async downloadUrl(user: PublicUser, taskId: string): Promise<string> {
      const row = await visibleTask(user, taskId);
      if (row.state !== 'completed' || !row.minioObjectName) {
        throw conflict(`The task is ${row.state}, not completed: there is no archive.`).withDetailZh(`任务${DCU_STATE_DISPLAY_ZH[row.state]}，尚未完成：没有归档。`);
      }
      if (row.artifactsExpired) throw gone('The archive has expired and was deleted.').withDetailZh('归档已过期并已删除。');
      if (!minio) throw unavailable('Downloads are not configured (no MinIO credentials).').withDetailZh('下载未配置（没有 MinIO 凭据）。');
      const fileName = row.minioObjectName.slice(row.minioObjectName.lastIndexOf('/') + 1);
      return minio.presignedGetObject(bucket, row.minioObjectName, downloadUrlTtlSeconds, {
        'response-content-disposition': `attachment; filename="${fileName}"`,
        'response-content-type': 'application/gzip',
      });
    },
  };
}

export type DcuService = ReturnType<typeof createDcuService>;
