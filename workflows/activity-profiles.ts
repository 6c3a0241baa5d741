/**
 * The only source of activity options: named profiles, one per kind of step. A workflow takes
 * `proxyActivities(profile)`; no options are spelled anywhere else. Changing a profile's values
 * changes no command a running workflow replays, so it needs no patch.
 *
 * Every profile on a host's queue bounds how long a task may wait to be picked up
 * (scheduleToStartTimeout or scheduleToCloseTimeout): nothing else polls that queue, so a task for
 * a dead host would otherwise wait forever.
 */
import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';
import { ActivityCancellationType } from '@temporalio/workflow';
import { NON_RETRYABLE } from '../core/failures.js';
import { hostTaskQueue } from '../core/temporal-names.js';

const retryable = { nonRetryableErrorTypes: NON_RETRYABLE };

/**
 * Database steps on berth-control: short, retried for about ten minutes of outage, never for a
 * client mistake. The control worker heartbeats every step (workers/control.ts), so a step on a
 * control worker that died runs again within the heartbeat timeout.
 */
export const database = {
  startToCloseTimeout: '30s',
  heartbeatTimeout: '10s',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 20, ...retryable },
} as const satisfies ActivityOptions;

/**
 * The same database steps as local activities: run by the workflow's own worker inside its
 * workflow task (berth-control holds both), so a step costs its query and no round trip through
 * the server. Retried like `database`; past localRetryThreshold a retry waits on a server timer.
 * No heartbeat: a local activity's worker is the workflow task's worker, and a dead one's task
 * times out and is run again on a live worker, step and all.
 */
export const localDatabase = {
  startToCloseTimeout: database.startToCloseTimeout,
  localRetryThreshold: '10s',
  retry: database.retry,
} as const satisfies LocalActivityOptions;

/** Database steps of the scheduled sweeps (release, cleanups): a run that fails is retried by the next. */
export const sweepDatabase = {
  startToCloseTimeout: '1m',
  heartbeatTimeout: '10s',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 10, ...retryable },
} as const satisfies ActivityOptions;

/**
 * A step on berth-control that waits for a container workflow's update (Docker stop and remove).
 * It heartbeats while it waits, so one on a control worker that died runs again within 10 s.
 */
export const containerUpdate = {
  startToCloseTimeout: '3m',
  heartbeatTimeout: '10s',
  retry: { initialInterval: '2s', maximumInterval: '30s', maximumAttempts: 3, ...retryable },
} as const satisfies ActivityOptions;

/** The base of every host profile: the host's own queue, a bounded wait to be picked up, five attempts. */
function onHost(hostId: string) {
  return {
    taskQueue: hostTaskQueue(hostId),
    scheduleToStartTimeout: '2m',
    retry: { initialInterval: '2s', maximumInterval: '1m', maximumAttempts: 5, ...retryable },
  } as const satisfies ActivityOptions;
}

/** Attempts of a host step before it fails (the DCU says so in its error message). */
export const HOST_MAX_ATTEMPTS = onHost('').retry.maximumAttempts;

/** The host profiles, by what the step does. */
export const host = {
  /** A quick Docker call (inspect, remove a reference, list). */
  quick: (hostId: string) => ({ ...onHost(hostId), startToCloseTimeout: '1m' }) as const satisfies ActivityOptions,
  /** A quick call whose whole budget is bounded too (the DCU's steps between phases). */
  quickBounded: (hostId: string) => ({ ...onHost(hostId), startToCloseTimeout: '1m', scheduleToCloseTimeout: '10m' }) as const satisfies ActivityOptions,
  /** An image removal, which may wait for Docker to free layers. */
  removal: (hostId: string) => ({ ...onHost(hostId), startToCloseTimeout: '2m' }) as const satisfies ActivityOptions,
  /** A pull: long, heartbeating its progress and every second; a dead worker's pull runs again within 10 s. */
  pull: (hostId: string) => ({ ...onHost(hostId), startToCloseTimeout: '30m', heartbeatTimeout: '10s' }) as const satisfies ActivityOptions,
  /** The DCU's download: its cancel ends the Docker request; the workflow need not wait for that. */
  download: (hostId: string) =>
    ({
      ...onHost(hostId),
      startToCloseTimeout: '1h',
      scheduleToCloseTimeout: '3h',
      heartbeatTimeout: '10s',
      cancellationType: ActivityCancellationType.TRY_CANCEL,
    }) as const satisfies ActivityOptions,
  /**
   * The DCU's compress and upload: they heartbeat every second and learn of a cancel within the
   * heartbeat throttle (80% of 5s); the workflow waits until they have cleaned up after themselves.
   */
  phase: (hostId: string) =>
    ({
      ...onHost(hostId),
      startToCloseTimeout: '1h',
      scheduleToCloseTimeout: '3h',
      heartbeatTimeout: '5s',
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    }) as const satisfies ActivityOptions,
  /** Compensation after a failure or a cancel: short, so a dead host cannot hold a task's end. */
  compensation: (hostId: string) =>
    ({
      ...onHost(hostId),
      scheduleToStartTimeout: '1m',
      startToCloseTimeout: '1m',
      scheduleToCloseTimeout: '3m',
      retry: { ...onHost(hostId).retry, maximumAttempts: 3 },
    }) as const satisfies ActivityOptions,
  /**
   * A container's Docker operation: ten quick attempts; a specification Docker refuses is not
   * retried. It heartbeats every second, so one on a worker that died runs again within 10 s.
   */
  container: (hostId: string) =>
    ({
      ...onHost(hostId),
      scheduleToStartTimeout: '1m',
      startToCloseTimeout: '1m',
      heartbeatTimeout: '10s',
      retry: { initialInterval: '1s', maximumInterval: '20s', maximumAttempts: 10, ...retryable },
    }) as const satisfies ActivityOptions,
  /** Best effort (a user network's removal): three quick attempts; the caller goes on without it. */
  bestEffort: (hostId: string) =>
    ({
      ...onHost(hostId),
      scheduleToStartTimeout: '1m',
      startToCloseTimeout: '30s',
      retry: { initialInterval: '1s', maximumInterval: '5s', maximumAttempts: 3, ...retryable },
    }) as const satisfies ActivityOptions,
  /** The host ping: an answer within 20 seconds or none. */
  ping: (hostId: string) =>
    ({
      taskQueue: hostTaskQueue(hostId),
      scheduleToCloseTimeout: '20s',
      startToCloseTimeout: '10s',
      retry: { initialInterval: '500ms', maximumAttempts: 5, ...retryable },
    }) as const satisfies ActivityOptions,
  /** The release's steps on a host: a host that is down is skipped quickly. */
  release: (hostId: string) => ({ ...onHost(hostId), scheduleToStartTimeout: '30s', startToCloseTimeout: '1m' }) as const satisfies ActivityOptions,
  /**
   * A batch of the release's removals on a host (many containers or image references, bounded
   * inside): heartbeating every second, so one on a worker that died runs again within 10 s.
   */
  releaseBatch: (hostId: string) =>
    ({ ...onHost(hostId), scheduleToStartTimeout: '30s', startToCloseTimeout: '10m', heartbeatTimeout: '10s' }) as const satisfies ActivityOptions,
  /** The sweep of a host's user networks, one removal after another: thousands take minutes. */
  networkSweep: (hostId: string) => ({ ...onHost(hostId), scheduleToStartTimeout: '30s', startToCloseTimeout: '15m' }) as const satisfies ActivityOptions,
  /** A scheduled sweep of a host's files or of the bucket: heartbeating, three attempts. */
  sweep: (hostId: string) =>
    ({
      taskQueue: hostTaskQueue(hostId),
      scheduleToStartTimeout: '1m',
      startToCloseTimeout: '10m',
      scheduleToCloseTimeout: '15m',
      heartbeatTimeout: '1m',
      retry: { initialInterval: '2s', maximumInterval: '30s', maximumAttempts: 3, ...retryable },
    }) as const satisfies ActivityOptions,
} as const;
