/**
 * The removeImage workflow's contract: remove an image record (off the host when no other record
 * uses it there), refund its charge once and delete the record. Started by the API for a user's
 * or an admin's removal, and as a child by the nightly release (which passes its releaseId).
 * Types and pure functions only: workflows import it.
 */
import { CONTROL_TASK_QUEUE } from '../core/temporal-names.js';
import { defineWorkflow } from './workflow.js';

export interface RemoveImageInput {
  imageId: string;
  hostId: string;
  reference: string;
  /** Ledger reason for the refund ("image removed", "nightly release ..."). */
  reason: string;
  /**
   * The nightly release removing the image, when it is one: the refund is then recorded as a
   * release_refund (same idempotency key as any image refund, so an image is refunded once).
   */
  releaseId?: string;
}

export interface RemoveImageResult {
  refunded: number;
  /** What happened on the host: removed, absent, or kept for another record. */
  host: 'removed' | 'absent' | 'kept';
}

/** One removal per image at a time: a second start while one runs is refused (and waits for it). */
export const removeImageId = (imageId: string) => `image-remove-${imageId}`;

export const removeImageWorkflow = defineWorkflow<[RemoveImageInput], RemoveImageResult>('removeImage', CONTROL_TASK_QUEUE);
