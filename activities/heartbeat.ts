/**
 * Heartbeats for activities whose work gives no progress to report (a Docker call that may take
 * seconds): a worker that dies mid-call is then noticed within the profile's heartbeatTimeout,
 * not at its startToCloseTimeout, and the step runs again on a live worker that much sooner.
 */
import type { Next } from '@temporalio/common';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor } from '@temporalio/worker';
import { currentActivityContext } from './activity-log.js';

/** How often a step heartbeats while it works: well within the shortest heartbeatTimeout (5 s). */
export const HEARTBEAT_EVERY_MS = 1000;

/**
 * Runs `work`, heartbeating `details()` (none by default) every HEARTBEAT_EVERY_MS until it
 * settles. A local activity has no heartbeat (its workflow task's timeout stands for one).
 */
export async function heartbeating<T>(work: () => Promise<T>, details: () => unknown = () => undefined): Promise<T> {
  const ctx = currentActivityContext();
  if (!ctx || ctx.info.isLocal) return work();
  ctx.heartbeat(details());
  const beat = setInterval(() => ctx.heartbeat(details()), HEARTBEAT_EVERY_MS);
  try {
    return await work();
  } finally {
    clearInterval(beat);
  }
}

/**
 * An activity interceptor that heartbeats every activity of a worker while it runs (the control
 * worker's database steps: one query gives no progress to report). With the profile's
 * heartbeatTimeout, a step on a worker that died runs again on a live one within that timeout,
 * not at its startToCloseTimeout.
 */
export class HeartbeatWhileRunning implements ActivityInboundCallsInterceptor {
  execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    return heartbeating(() => next(input));
  }
}
