import { log, patched, proxyActivities } from '@temporalio/workflow';
import type { ImageDbActivities } from '../activities/images-db.js';
import type { ImageDockerActivities } from '../activities/images-docker.js';
import type { RemoveImageInput, RemoveImageResult } from '../contracts/remove-image.js';
import { database, host } from './activity-profiles.js';
import { asWorkflowFailure, rootCause } from '../core/failures.js';
import { PATCHES } from './patches.js';

export type { RemoveImageInput, RemoveImageResult } from '../contracts/remove-image.js';

const db = proxyActivities<ImageDbActivities>(database);

/**
 * Removes an image record: off the host first when no other record references it
 * there (so an image Docker cannot remove keeps its record and its charge), then
 * the refund (a release refund when the nightly release removes it) and the record's
 * deletion in one transaction, once.
 */
export async function removeImage(input: RemoveImageInput): Promise<RemoveImageResult> {
  const onHost = proxyActivities<ImageDockerActivities>(host.removal(input.hostId));
  // The record is marked as being removed before the host is touched: a pull no longer answers it as owned.
  const marks = patched(PATCHES.removeImageMarksRecord.id);
  try {
    const others = marks
      ? await db.beginImageRemoval(input.imageId, input.hostId, input.reference)
      : await db.countImageRecords(input.hostId, input.reference, input.imageId);
    const onTheHost = others > 0 ? 'kept' : await onHost.removeImageReference(input.reference);
    const { refunded } = await db.refundAndDeleteImage(input.imageId, input.reason, { releaseId: input.releaseId });
    log.info('image removed', { imageId: input.imageId, hostId: input.hostId, reference: input.reference, host: onTheHost, refunded });
    return { refunded, host: onTheHost };
  } catch (error) {
    log.warn('image removal failed', { imageId: input.imageId, hostId: input.hostId, reason: rootCause(error).message });
    // The record stays (nothing was refunded or deleted): owned again. A failure here does not hide the first.
    if (marks) await db.abandonImageRemoval(input.imageId).catch(() => undefined);
    throw asWorkflowFailure(error);
  }
}
