/** Image activities on the control worker: records and money, each in one transaction. */
import { ApplicationFailure } from '@temporalio/activity';
import { and, count, eq, isNull } from 'drizzle-orm';
import type { Database } from '../db/client.js';
import { containers, images } from '../db/schema.js';
import { FailureType } from '../core/failures.js';
import { imageCharge } from '../billing/prices.js';
import { AppError } from '../core/errors.js';
import type { Ledger } from '../services/ledger.js';
import { countOtherRecords, toImageView, type ImageView, type PullRequest } from '../services/images.js';
import type { InspectedImage } from './images-docker.js';

export interface RecordImageInput extends PullRequest {
  image: InspectedImage;
}

export interface RemovedImage {
  refunded: number;
  deleted: boolean;
}

export function createImageDbActivities(deps: { db: Database; ledger: Ledger; pricePerMb: number }) {
  const { db, ledger, pricePerMb } = deps;

  return {
    async findOwnedImage(userId: string, hostId: string, reference: string): Promise<ImageView | null> {
      const [row] = await db
        .select()
        .from(images)
        .where(and(eq(images.userId, userId), eq(images.hostId, hostId), eq(images.reference, reference)));
      return row ? toImageView(row) : null;
    },

    /**
     * Charges the user and records the image in one transaction, keyed by the pull:
     * a retry charges nothing twice, and a charge the balance cannot pay records nothing.
     */
    async chargeAndRecordImage(input: RecordImageInput): Promise<{ image: ImageView; deduped: boolean }> {
      const amount = imageCharge(input.image.sizeBytes, pricePerMb);
      try {
        return await db.transaction(async (tx) => {
          const [row] = await tx
            .insert(images)
            .values({
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
            })
            .onConflictDoNothing({ target: [images.userId, images.hostId, images.reference] })
            .returning();
          if (!row) {
            // Recorded already: by this pull (a retry) or by another pull of the same reference.
            const [existing] = await tx
              .select()
              .from(images)
              .where(and(eq(images.userId, input.userId), eq(images.hostId, input.hostId), eq(images.reference, input.reference)));
            return { image: toImageView(existing!), deduped: existing!.pullId !== input.pullId };
          }
          if (amount > 0) {
            await ledger.applyIn(tx, {
              userId: input.userId,
              amount: -amount,
              kind: 'image_charge',
              reason: `image ${input.reference} on ${input.hostId} (${input.image.sizeBytes} bytes)`,
              idempotencyKey: `image-charge-${input.pullId}`,
            });
          }
          return { image: toImageView(row), deduped: false };
        });
      } catch (error) {
        if (error instanceof AppError && error.type === 'insufficient-funds') {
          throw ApplicationFailure.nonRetryable(
            `insufficient balance: ${input.reference} costs ${amount}; ${error.detail}`,
            FailureType.InsufficientFunds,
          );
        }
        throw error;
      }
    },

    async countImageRecords(hostId: string, reference: string, exceptId?: string): Promise<number> {
      return countOtherRecords(db, hostId, reference, exceptId);
    },

    /** Refunds what was charged (once: keyed by the image) and deletes the record. */
    async refundAndDeleteImage(imageId: string, reason: string): Promise<RemovedImage> {
      return db.transaction(async (tx) => {
        const [row] = await tx.select().from(images).where(eq(images.id, imageId)).for('update');
        if (!row) return { refunded: 0, deleted: false };
        const [inUse] = await tx
          .select({ n: count() })
          .from(containers)
          .where(and(eq(containers.imageId, imageId), isNull(containers.removedAt)));
        if (inUse && inUse.n > 0) {
          throw ApplicationFailure.nonRetryable(`image ${row.reference} is used by ${inUse.n} container(s)`, FailureType.ImageInUse);
        }
        if (row.charged > 0) {
          await ledger.applyIn(tx, {
            userId: row.userId,
            amount: row.charged,
            kind: 'image_refund',
            reason,
            idempotencyKey: `image-refund-${row.id}`,
          });
        }
        await tx.delete(images).where(eq(images.id, imageId));
        return { refunded: row.charged, deleted: true };
      });
    },
  };
}

export type ImageDbActivities = ReturnType<typeof createImageDbActivities>;
