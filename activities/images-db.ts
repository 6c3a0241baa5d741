/** Image activities on the control worker: records and money, each in one transaction. */
import { ApplicationFailure } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Database } from '../db/client.js';
import { removeImageId } from '../contracts/remove-image.js';
import { activityLog } from './activity-log.js';
import { FailureType } from '../core/failures.js';
import { imageCharge } from '../billing/prices.js';
import { billing, InsufficientFundsError } from '../billing/ledger.js';
import type { ImageView, PullImageInput } from '../contracts/pull-image.js';
import * as imageRepo from '../repositories/images.js';
import * as containerRepo from '../repositories/containers.js';
import { toImageView } from '../repositories/images.js';
import { appendAudit, systemEntry } from '../repositories/audit.js';
import { auditOrigin } from './audit-db.js';
import type { InspectedImage } from './images-docker.js';
import type { Transaction } from '../db/client.js';
import type { ImageBatchResult, ReleaseItem } from '../contracts/nightly-release.js';

export interface RecordImageInput extends PullImageInput {
  image: InspectedImage;
}

export interface RemovedImage {
  refunded: number;
  deleted: boolean;
}

/** How many removals of one record a findOwnedImage waits out before it fails (and is retried). */
const REMOVAL_WAITS = 3;
/** How long it waits for one removal's end (well within the database steps' 30 s start-to-close). */
const REMOVAL_WAIT_MS = 15_000;

/**
 * In `tx`: refunds what the image record was charged (keyed by the image: once) and deletes it;
 * a release's removal (`releaseId`) is a release refund, audited as `release.removeImage`. A
 * record a live container still uses stays (`inUse` says why); a record gone already refunds 0.
 */
async function refundAndDelete(
  tx: Transaction,
  imageId: string,
  reason: string,
  releaseId: string | undefined,
  removeImageWorkflowId: string | null,
): Promise<RemovedImage | { inUse: string }> {
  const row = await imageRepo.lockById(tx, imageId);
  if (!row) return { refunded: 0, deleted: false };
  const inUse = await containerRepo.countLiveUsingImage(tx, imageId);
  if (inUse > 0) return { inUse: `image ${row.reference} is used by ${inUse} container(s)` };
  if (row.charged > 0) {
    const refund = { userId: row.userId, imageId: row.id, amount: row.charged, reason };
    await (releaseId ? billing.releaseRefund(tx, refund) : billing.refundImage(tx, refund));
  }
  await imageRepo.deleteById(tx, imageId);
  if (releaseId) {
    await appendAudit(tx, [
      systemEntry({
        action: 'release.removeImage',
        targetType: 'image',
        targetId: row.id,
        subjectUserId: row.userId,
        workflowId: releaseId,
        detail: {
          releaseId,
          hostId: row.hostId,
          reference: row.reference,
          refunded: row.charged,
          ...(removeImageWorkflowId ? { removeImageWorkflowId } : {}),
        },
      }),
    ]);
  }
  return { refunded: row.charged, deleted: true };
}

export function createImageDbActivities(deps: {
  db: Database;
  /** To wait for a removal of the record a pull would answer (findOwnedImage). */
  temporal: Pick<Client, 'workflow'>;
  /** The price of pulls started before the API fixed it in their input (input.pricePerMb). */
  pricePerMb: number;
}) {
  const { db, temporal } = deps;

  /** Waits for the removeImage run of `imageId` to end, however it ends, for REMOVAL_WAIT_MS at most. */
  async function removalEnd(imageId: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      temporal.workflow.getHandle(removeImageId(imageId)).result().catch(() => undefined),
      new Promise((resolve) => (timer = setTimeout(resolve, REMOVAL_WAIT_MS))),
    ]);
    clearTimeout(timer);
  }

  async function removalRunning(imageId: string): Promise<boolean> {
    try {
      return (await temporal.workflow.getHandle(removeImageId(imageId)).describe()).status.name === 'RUNNING';
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return false;
      throw error;
    }
  }

  return {
    /**
     * The user's record of `reference` on the host, or null. A record whose removal has started is
     * not owned: this waits for that removal's end (its workflow's result), then reads again: gone
     * (null: the pull goes on and records it anew) or kept (the removal failed: owned).
     */
    async findOwnedImage(userId: string, hostId: string, reference: string): Promise<ImageView | null> {
      for (let attempt = 0; attempt < REMOVAL_WAITS; attempt++) {
        const row = await imageRepo.findOwned(db, { userId, hostId, reference });
        if (!row) return null;
        if (!imageRepo.isLeaving(row)) return toImageView(row);
        if (await removalRunning(row.id)) {
          activityLog.info('the owned image is being removed: waiting for the removal', { imageId: row.id, hostId, reference });
          await removalEnd(row.id);
          continue;
        }
        // Marked, but no removal runs (its run was ended from outside before it unmarked it): read
        // again, as the removal may have deleted the record just now; what is still there is owned.
        const after = await imageRepo.findOwned(db, { userId, hostId, reference });
        if (!after) return null;
        if (after.id !== row.id || after.removalStartedAt?.getTime() !== row.removalStartedAt?.getTime()) continue;
        await imageRepo.clearRemoval(db, row.id, row.removalStartedAt);
        return toImageView({ ...after, removalStartedAt: null });
      }
      throw ApplicationFailure.retryable(`the image ${reference} on ${hostId} is still being removed`, FailureType.ImageBeingRemoved);
    },

    /**
     * removeImage's first step: marks the record as being removed (a pull no longer answers it as
     * owned) and counts the other records of the reference on the host, which keep the image there.
     */
    async beginImageRemoval(imageId: string, hostId: string, reference: string): Promise<number> {
      return imageRepo.markRemoval(db, imageId, hostId, reference);
    },

    /** removeImage's failure: the record stays, owned again. */
    async abandonImageRemoval(imageId: string): Promise<void> {
      await imageRepo.clearRemoval(db, imageId);
    },

    /**
     * Charges the user and records the image in one transaction, keyed by the pull:
     * a retry charges nothing twice, and a charge the balance cannot pay records nothing.
     * The price is the one the pull started with.
     */
    async chargeAndRecordImage(input: RecordImageInput): Promise<{ image: ImageView; deduped: boolean }> {
      const amount = imageCharge(input.image.sizeBytes, input.pricePerMb ?? deps.pricePerMb);
      try {
        return await db.transaction(async (tx) => {
          const row = await imageRepo.insertUnlessOwned(tx, {
            userId: input.userId,
            hostId: input.hostId,
            reference: input.reference,
            repository: input.repository,
            tag: input.tag,
            digest: input.digest,
            imageId: input.image.imageId,
            sizeBytes: input.image.sizeBytes,
            ports: input.image.ports,
            charged: amount,
            pullId: input.pullId,
          });
          if (!row) {
            // Recorded already: by this pull (a retry) or by another pull of the same reference.
            const existing = (await imageRepo.findOwned(tx, input))!;
            return { image: toImageView(existing), deduped: existing.pullId !== input.pullId };
          }
          if (amount > 0) {
            await billing.chargeImage(tx, {
              userId: input.userId,
              pullId: input.pullId,
              amount,
              reason: `image ${input.reference} on ${input.hostId} (${input.image.sizeBytes} bytes)`,
            });
          }
          return { image: toImageView(row), deduped: false };
        });
      } catch (error) {
        // The same failure, saying what the image costs (the worker makes it InsufficientFunds).
        if (error instanceof InsufficientFundsError) {
          throw new InsufficientFundsError(`insufficient balance: ${input.reference} costs ${amount}; ${error.detail}`);
        }
        throw error;
      }
    },

    async countImageRecords(hostId: string, reference: string, exceptId?: string): Promise<number> {
      return imageRepo.countOtherRecords(db, hostId, reference, exceptId);
    },

    /**
     * Refunds what was charged (once: keyed by the image) and deletes the record. A removal by
     * the nightly release (`releaseId`) records its refund as a release refund, and is audited
     * in the same transaction (`release.removeImage`, the release's workflow id, the amount
     * refunded): a retry finds no record, so it is audited once. A user's own removal is
     * audited by the API's request audit.
     */
    async refundAndDeleteImage(imageId: string, reason: string, options: { releaseId?: string } = {}): Promise<RemovedImage> {
      const origin = auditOrigin();
      return db.transaction(async (tx) => {
        const removed = await refundAndDelete(tx, imageId, reason, options.releaseId, origin.workflowId);
        if ('inUse' in removed) throw ApplicationFailure.nonRetryable(removed.inUse, FailureType.ImageInUse);
        return removed;
      });
    },

    /**
     * The nightly release's batch: each image refunded (once: keyed by the image, as a release
     * refund) and deleted, audited, all in one transaction; an image a live container still uses
     * is kept and reported. A retry finds the removed records gone and refunds nothing twice.
     */
    async refundAndDeleteImagesForRelease(items: ReleaseItem[], reason: string, releaseId: string): Promise<ImageBatchResult> {
      // Users' balances are locked in one order in every batch: batches of two hosts at once never deadlock.
      const ordered = [...items].sort((a, b) => (a.userId ?? '').localeCompare(b.userId ?? '') || a.id.localeCompare(b.id));
      const result: ImageBatchResult = { removed: [], failed: [] };
      await db.transaction(async (tx) => {
        result.removed = [];
        result.failed = [];
        for (const { id } of ordered) {
          const removed = await refundAndDelete(tx, id, reason, releaseId, null);
          if ('inUse' in removed) result.failed.push({ id, reason: removed.inUse });
          else result.removed.push({ id, refunded: removed.refunded });
        }
      });
      return result;
    },
  };
}

export type ImageDbActivities = ReturnType<typeof createImageDbActivities>;
