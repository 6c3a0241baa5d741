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
  dcu: (taskId: string) => `dcu-${taskId}`,
} as const;

/** The DCU workflow's signal and query names (also what operators type into the temporal CLI). */
export const DCU_SIGNALS = { cancel: 'cancel' } as const;
export const DCU_QUERIES = { status: 'status' } as const;

/** Schedules the control worker creates at start; also their workflows' id prefix. */
export const DCU_SCHEDULES = {
  gzipCleanup: 'berth-dcu-gzip-cleanup',
  objectCleanup: 'berth-dcu-object-cleanup',
} as const;

/** The nightly release of every container and private image. */
export const RELEASE_SCHEDULE_ID = 'berth-nightly-release';

export const PULL_ID = /^pull-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
