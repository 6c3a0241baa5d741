/**
 * Task queues, workflow types and workflow ids: defined once, imported by
 * workflows, workers and the API alike. No imports here, so workflow code may use it.
 */
export const CONTROL_TASK_QUEUE = 'berth-control';

export function hostTaskQueue(hostId: string): string {
  return `berth-host-${hostId}`;
}

/** Workflow ids come from business keys, so a second start of the same thing is refused. */
export const workflowIds = {
  pingHost: (hostId: string, requestId: string) => `ping-${hostId}-${requestId}`,
  /** `pullId` is itself the workflow id: "pull-<uuid>". */
  pullImage: (uuid: string) => `pull-${uuid}`,
  removeImage: (imageId: string) => `image-remove-${imageId}`,
  container: (containerId: string) => `container-${containerId}`,
} as const;

export const PULL_ID = /^pull-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
