/**
 * Every ledger idempotency key, built here and nowhere else (as workflowIds builds workflow ids).
 * A key names one movement of money for good: a retried request, activity or workflow task that
 * builds it again finds the entry the first one wrote. The formats are those of entries already
 * in the ledger: never change one, add a new builder instead. No imports: workflows build keys too.
 */
export const billingKeys = {
  /** A user's opening balance, credited at sign-up. */
  openingBalance: (userId: string) => `user-opening-balance-${userId}`,
  /** An admin's credit; `requestKey` is the client's Idempotency-Key header, or a fresh UUID. */
  credit: (adminId: string, requestKey: string) => `credit-${adminId}-${requestKey}`,
  /** The charge of the image a pull recorded (one per pull). */
  imageCharge: (pullId: string) => `image-charge-${pullId}`,
  /** The refund of an image record, whoever removes it (the user, an admin or the nightly release): once per image. */
  imageRefund: (imageId: string) => `image-refund-${imageId}`,
  /** A container's billing period: `period` counts from 0 within run (segment) `segment`. */
  containerPeriod: (containerId: string, segment: number, period: number) => `container-${containerId}-run-${segment}-period-${period}`,
  /** The refund of what a container that could not be created was charged. */
  containerCreateRefund: (containerId: string) => `container-${containerId}-create-refund`,
  /** The charge of a DCU task, once its object is in MinIO. */
  dcuCharge: (taskId: string) => `dcu-charge-${taskId}`,
} as const;
