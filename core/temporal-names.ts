/**
 * Task queues, workflow types and workflow ids: defined once, imported by
 * workflows, workers and the API alike. No imports here, so workflow code may use it.
 */
export const CONTROL_TASK_QUEUE = 'berth-control';

export function hostTaskQueue(hostId: string): string {
  return `berth-host-${hostId}`;
}

export const workflowIds = {
  pingHost: (hostId: string, requestId: string) => `ping-${hostId}-${requestId}`,
} as const;
