/** Image pulls as the API sees them: started, watched and awaited through Temporal. */
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { InvalidReferenceError, parseImageReference } from '../core/image-ref.js';
import { AppError, badRequest, notFound } from '../core/errors.js';
import type { Database } from '../db/client.js';
import type { RegistryPolicy } from './registry-policy.js';
import { workflowRunning } from './workflow-status.js';
import type { PullSnapshot } from '../core/pull-progress.js';
import { PULL_ACTIVITY_NAMES, pullId as newPullId, pullImageWorkflow, type PullImageInput, type PullImageResult } from '../contracts/pull-image.js';
import * as pullSlots from '../repositories/pull-slots.js';
import * as userRepo from '../repositories/users.js';
import * as imageRepo from '../repositories/images.js';
import { toImageView, type Viewer } from '../repositories/images.js';
import { rootCause } from '../core/failures.js';
import { LIMITS, countLimited, recordPull } from '../core/metrics.js';
import type { HostService } from './hosts.js';
import { startOutcomeUnknown, type WorkflowRuns } from './workflow-runs.js';

/** A pull the API accepted: its id, reference and host; `deduped` the caller's own image when it was answered without a workflow. */
export interface StartedPull {
  pullId: string;
  image: string;
  host: string;
  deduped: PullImageResult['image'] | null;
}

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
  /** Read by status(): a pull's description, pending activity and result. */
  temporal: Client;
  runs: Pick<WorkflowRuns, 'start' | 'wait'>;
  hosts: Pick<HostService, 'pick'>;
  registries: RegistryPolicy;
  /** Pulls in flight per user at most. */
  maxConcurrentPerUser: number;
  /** Minor units per started MB: the price a pull started now is charged at. */
  pricePerMb: number;
}) {
  const { db, temporal, runs, hosts, registries, maxConcurrentPerUser, pricePerMb } = deps;

  /** Marks a pull's slot free (idempotent). */
  const releaseSlot = (pullId: string) => pullSlots.release(db, [pullId]);

  /**
   * Takes one of the user's pull slots, in a transaction serialised per user (the user's row
   * is locked), so concurrent requests cannot overshoot. Slots of pulls that ended without
   * the API seeing it (started without ?wait) are freed here, when the limit is reached.
   */
  async function takeSlot(userId: string, pullId: string) {
    await db.transaction(async (tx) => {
      await userRepo.lockUser(tx, userId);
      const n = await pullSlots.countOpen(tx, userId);
      if (n >= maxConcurrentPerUser) {
        // Only slots older than a minute: a slot just taken belongs to a pull whose workflow is being
        // started right now, which Temporal does not know yet (it would look ended).
        const held = await pullSlots.openTakenBefore(tx, userId, new Date(Date.now() - SLOT_STARTING_MS));
        const ended: string[] = [];
        for (const slot of held) if (!(await workflowRunning(temporal, slot))) ended.push(slot);
        await pullSlots.release(tx, ended);
        if (n - ended.length >= maxConcurrentPerUser) {
          countLimited(LIMITS.pullConcurrency);
          throw tooManyPulls(maxConcurrentPerUser);
        }
      }
      await pullSlots.take(tx, userId, pullId);
    });
  }

  async function ownedHandle(user: Viewer, pullId: string) {
    const handle = temporal.workflow.getHandle<(input: PullImageInput) => Promise<PullImageResult>>(pullId);
    try {
      const description = await handle.describe();
      if (description.type !== pullImageWorkflow.type || (user.role !== 'admin' && description.memo?.userId !== user.id)) {
        throw notFound('Pull');
      }
      return { handle, description };
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw notFound('Pull');
      throw error;
    }
  }

  return {
    /**
     * Validates the reference and the host; then answers from PostgreSQL when the caller owns
     * that reference on that host already (a dedup: no workflow, no slot, nothing charged), else
     * takes a slot and starts the workflow at today's price. Nothing starts on bad input.
     *
     * A dedup's answer is the one the workflow would give: the owned image, `deduped`. Started
     * with `wait`, the caller gets the image and nothing is written; without, the caller gets a
     * pull id, kept with the image answered (pull_slots.deduped_image) so that GET of the pull
     * (and its event stream) answers completed, deduped, as it would for the workflow's run. A
     * record whose removal has started is not owned: that pull goes to the workflow, which waits
     * for the removal's end (activities/images-db.ts findOwnedImage).
     */
    async start(user: Viewer, body: { image: string; host?: string }, options: { wait: boolean }): Promise<StartedPull> {
      const startedAt = performance.now();
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
      const pullId = newPullId(randomUUID());
      const accepted = { pullId, image: ref.reference, host: host.id };

      const owned = await imageRepo.findOwned(db, { userId: user.id, hostId: host.id, reference: ref.reference });
      if (owned && !imageRepo.isLeaving(owned)) {
        const image = toImageView(owned);
        if (!options.wait) await pullSlots.recordDeduped(db, user.id, pullId, image);
        recordPull('deduped', (performance.now() - startedAt) / 1000);
        return { ...accepted, deduped: image };
      }

      await takeSlot(user.id, pullId);
      const input: PullImageInput = {
        pullId,
        userId: user.id,
        hostId: host.id,
        reference: ref.reference,
        repository: ref.repository,
        tag: ref.tag ?? null,
        digest: ref.digest ?? null,
        pricePerMb,
      };
      try {
        await runs.start(pullImageWorkflow, {
          workflowId: pullId,
          args: [input],
          // The image's record does not exist yet: the pull is the resource (the record keeps its pullId).
          subject: { userId: user.id, hostId: host.id, resourceId: pullId },
          memo: { userId: user.id, reference: ref.reference, hostId: host.id },
        });
      } catch (error) {
        // A start whose outcome is unknown keeps its slot: a run that landed holds it while it
        // runs; one that never started is freed by takeSlot's sweep once the slot is a minute old.
        if (!startOutcomeUnknown(error)) await releaseSlot(pullId);
        throw error;
      }
      return { ...accepted, deduped: null };
    },

    async status(user: Viewer, pullId: string): Promise<PullStatus> {
      // A dedup the API answered itself has no workflow: its answer is kept in PostgreSQL.
      const deduped = await pullSlots.findDeduped(db, pullId);
      if (deduped) {
        if (user.role !== 'admin' && deduped.userId !== user.id) throw notFound('Pull');
        return { pullId, state: 'completed', progress: null, image: deduped.image, deduped: true };
      }
      const { handle, description } = await ownedHandle(user, pullId);
      if (description.status.name === 'RUNNING') {
        // The Docker pull's heartbeats, under the host activity's name of today or of before its rename.
        const pending = description.raw.pendingActivities?.find((a) => PULL_ACTIVITY_NAMES.includes(a.activityType?.name ?? ''));
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

    /**
     * Waits for the pull's end, up to BERTH_WAIT_TIMEOUT (then 504: the pull goes on); its failure
     * is the problem its type says. The slot is freed when it ends.
     */
    async result(pullId: string): Promise<PullImageResult> {
      return runs.wait(pullImageWorkflow, pullId, {
        followAt: `/api/v1/images/pulls/${pullId}`,
        what: 'pull',
        onSettled: () => releaseSlot(pullId),
      });
    },
  };
}

export type PullService = ReturnType<typeof createPullService>;
