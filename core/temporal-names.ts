/**
 * Task queues: defined once, imported by workflows, workers and the API alike. Workflow types,
 * ids, signals, updates and queries live in each workflow's contract (contracts/<workflow>.ts).
 * No imports here, so workflow code may use it.
 */
export const CONTROL_TASK_QUEUE = 'berth-control';

export function hostTaskQueue(hostId: string): string {
  return `berth-host-${hostId}`;
}
