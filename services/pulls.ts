/** Image pulls as the API sees them: started, watched and awaited through Temporal. */
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { and, count, eq, inArray, isNull, lt, sql } from 'drizzle-orm';
import { defaultPayloadConverter } from '@temporalio/common';
import { CONTROL_TASK_QUEUE, workflowIds } from '../core/temporal-names.js';
import { InvalidReferenceError, parseImageReference } from '../core/image-ref.js';
import { AppError, badRequest, gatewayTimeout, notFound } from '../core/errors.js';
import type { Database } from '../db/client.js';
import { pullSlots, users } from '../db/schema.js';
import type { RegistryPolicy } from './registry-policy.js';
import { workflowRunning } from './workflow-status.js';
import type { PullSnapshot } from '../core/pull-progress.js';
import type { PullImageInput, PullImageResult, pullImage } from '../workflows/pull-image.js';
import { rootCause } from '../core/failures.js';
import type { HostService } from './hosts.js';
import type { PublicUser } from './users.js';

export interface PullStatus {
  pullId: string;
  state: 'running' | 'completed' | 'failed';
  progress: PullSnapshot | null;
  image?: PullImageResult['image'];
  deduped?: boolean;
  error?: { type?: string; message: string };
}

/** A slot younger than this is never freed by asking Temporal: its workflow may not be started yet. */
const SLOT_STARTING_MS = 60_000;

export const tooManyPulls = (max: number) =>
  new AppError(429, 'too-many-pulls', 'Too Many Requests', `At most ${max} pulls in flight per user: wait for one to end.`);

export function createPullService(deps: {
  db: Database;
  temporal: Client;
  hosts: Pick<HostService, 'pick'>;
  registries: RegistryPolicy;
  waitTimeoutMs: number;
  /** Pulls in flight per user at most. */
  maxConcurrentPerUser: number;
}) {
  const { db, temporal, hosts, registries, waitTimeoutMs, maxConcurrentPerUser } = deps;

  /** Marks a pull's slot free (idempotent). */
  async function releaseSlot(pullId: string) {
    await db.update(pullSlots).set({ releasedAt: sql`now()` }).where(and(eq(pullSlots.pullId, pullId), isNull(pullSlots.releasedAt)));
  }

  /**
   * Takes one of the user's pull slots, in a transaction serialised per user (the user's row
   * is locked), so concurrent requests cannot overshoot. Slots of pulls that ended without
   * the API seeing it (started without ?wait) are freed here, when the limit is reached.
   */
  async function takeSlot(userId: string, pullId: string) {
    await db.transaction(async (tx) => {
      await tx.select({ id: users.id }).from(users).where(eq(users.id, userId)).for('update');
      const open = and(eq(pullSlots.userId, userId), isNull(pullSlots.releasedAt));
      const [{ n } = { n: 0 }] = await tx.select({ n: count() }).from(pullSlots).where(open);
      if (n >= maxConcurrentPerUser) {
        // Only slots older than a minute: a slot just taken belongs to a pull whose workflow is being
        // started right now, which Temporal does not know yet (it would look ended).
        const held = await tx
          .select({ pullId: pullSlots.pullId })
          .from(pullSlots)
          .where(and(open, lt(pullSlots.createdAt, new Date(Date.now() - SLOT_STARTING_MS))));
        const ended: string[] = [];
        for (const slot of held) if (!(await workflowRunning(temporal, slot.pullId))) ended.push(slot.pullId);
        if (ended.length > 0) await tx.update(pullSlots).set({ releasedAt: sql`now()` }).where(inArray(pullSlots.pullId, ended));
        if (n - ended.length >= maxConcurrentPerUser) throw tooManyPulls(maxConcurrentPerUser);
      }
      await tx.insert(pullSlots).values({ pullId, userId });
    });
  }

  async function ownedHandle(user: PublicUser, pullId: string) {
    const handle = temporal.workflow.getHandle<typeof pullImage>(pullId);
    try {
      const description = await handle.describe();
      if (description.type !== 'pullImage' || (user.role !== 'admin' && description.memo?.userId !== user.id)) {
        throw notFound('Pull');
      }
      return { handle, description };
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw notFound('Pull');
      throw error;
    }
  }

  return {
    /** Validates the reference and the host, then starts the workflow; nothing starts on bad input. */
    async start(user: PublicUser, body: { image: string; host?: string }) {
      let ref;
      try {
        ref = parseImageReference(body.image);
      } catch (error) {
        if (error instanceof InvalidReferenceError) throw badRequest(`Invalid image reference: ${error.message}.`);
        throw error;
      }
      const host = await hosts.pick(body.host);
      // Last, as it may resolve the registry's name: a refused host or reference never gets that far.
      await registries.check(ref, user);
      const pullId = workflowIds.pullImage(randomUUID());
      await takeSlot(user.id, pullId);
      const input: PullImageInput = {
        pullId,
        userId: user.id,
        hostId: host.id,
        reference: ref.reference,
        repository: ref.repository,
        tag: ref.tag ?? null,
        digest: ref.digest ?? null,
      };
      try {
        await temporal.workflow.start<typeof pullImage>('pullImage', {
          taskQueue: CONTROL_TASK_QUEUE,
          workflowId: pullId,
          args: [input],
          memo: { userId: user.id, reference: ref.reference, hostId: host.id },
        });
      } catch (error) {
        await releaseSlot(pullId);
        throw error;
      }
      return { pullId, image: ref.reference, host: host.id };
    },

    async status(user: PublicUser, pullId: string): Promise<PullStatus> {
      const { handle, description } = await ownedHandle(user, pullId);
      if (description.status.name === 'RUNNING') {
        const pending = description.raw.pendingActivities?.find((a) => a.activityType?.name === 'pullImage');
        const payload = pending?.heartbeatDetails?.payloads?.[0];
        const progress = payload ? defaultPayloadConverter.fromPayload<PullSnapshot>(payload) : null;
        return { pullId, state: 'running', progress };
      }
      try {
        const result = await handle.result();
        await releaseSlot(pullId);
        return { pullId, state: 'completed', progress: result.progress, image: result.image, deduped: result.deduped };
      } catch (error) {
        await releaseSlot(pullId);
        return { pullId, state: 'failed', progress: null, error: rootCause(error) };
      }
    },

    /** Waits for the end; the workflow's failure is thrown as it is, for the caller to map. */
    async result(pullId: string): Promise<PullImageResult> {
      const handle = temporal.workflow.getHandle<typeof pullImage>(pullId);
      let timer: NodeJS.Timeout | undefined;
      try {
        return await Promise.race([
          handle.result().finally(() => releaseSlot(pullId)),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(gatewayTimeout(`The pull is still running; follow it at /api/v1/images/pulls/${pullId}.`)),
              waitTimeoutMs,
            );
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

export type PullService = ReturnType<typeof createPullService>;
