/** Activity options shared by the workflows: the control queue's database steps and a host's queue. */
import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { ControlActivities } from '../activities/control-activities.js';
import { NON_RETRYABLE } from '../core/failures.js';
import { hostTaskQueue } from '../core/temporal-names.js';

/** Database activities on berth-control: short, retried for a while, never for a client mistake. */
export const controlDb = () =>
  proxyActivities<ControlActivities>({
    startToCloseTimeout: '30s',
    retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 20, nonRetryableErrorTypes: NON_RETRYABLE },
  });

/**
 * The base options for a host's queue. Nothing else polls it: a dead host must fail
 * the step (scheduleToStartTimeout), not hang it.
 */
export function onHost(hostId: string) {
  return {
    taskQueue: hostTaskQueue(hostId),
    scheduleToStartTimeout: '2m',
    retry: { initialInterval: '2s', maximumInterval: '1m', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
  } as const satisfies ActivityOptions;
}
