import { proxyActivities } from '@temporalio/workflow';
import type { HostActivities } from '../activities/host-activities.js';
import { asWorkflowFailure } from './failures.js';
import { controlDb, onHost } from './activity-options.js';

export interface RemoveImageInput {
  imageId: string;
  hostId: string;
  reference: string;
  /** Ledger reason for the refund ("image removed", "nightly release ..."). */
  reason: string;
}

export interface RemoveImageResult {
  refunded: number;
  /** What happened on the host: removed, absent, or kept for another record. */
  host: 'removed' | 'absent' | 'kept';
}

const db = controlDb();

/**
 * Removes an image record: off the host first when no other record references it
 * there (so an image Docker cannot remove keeps its record and its charge), then
 * the refund and the record's deletion in one transaction, once.
 */
export async function removeImage(input: RemoveImageInput): Promise<RemoveImageResult> {
  const host = proxyActivities<HostActivities>({ ...onHost(input.hostId), startToCloseTimeout: '2m' });
  try {
    const others = await db.countImageRecords(input.hostId, input.reference, input.imageId);
    const onTheHost = others > 0 ? 'kept' : await host.removeImageReference(input.reference);
    const { refunded } = await db.refundAndDeleteImage(input.imageId, input.reason);
    return { refunded, host: onTheHost };
  } catch (error) {
    throw asWorkflowFailure(error);
  }
}
