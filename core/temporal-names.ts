/**
 * Task queues: defined once, imported by workflows, workers and the API alike. Workflow types,
 * ids, signals, updates and queries live in each workflow's contract (contracts/<workflow>.ts).
 * No imports here, so workflow code may use it.
 */
export const CONTROL_TASK_QUEUE = 'berth-control';

export function hostTaskQueue(hostId: string): string {
  return `berth-host-${hostId}`;
}

/** Workflow ids come from business keys, so a second start of the same thing is refused. */
export const workflowIds = {
  /** @deprecated contracts/remove-image.ts removeImageId (the same id): goes once nightly-release.ts and record-history.ts use that. */
  removeImage: (imageId: string) => `image-remove-${imageId}`,
  /** @deprecated contracts/container.ts containerWorkflowId (the same id): goes once activities/release.ts and test/support/record-history.ts use that. */
  container: (containerId: string) => `container-${containerId}`,
} as const;
