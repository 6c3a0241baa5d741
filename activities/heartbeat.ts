/**
 * Heartbeats for activities whose work gives no progress to report (a Docker call that may take
 * seconds): a worker that dies mid-call is then noticed within the profile's heartbeatTimeout,
 * not at its startToCloseTimeout, and the step runs again on a live worker that much sooner.
 */
import { currentActivityContext } from './activity-log.js';

/** How often a step heartbeats while it works: well within the shortest heartbeatTimeout (5 s). */
export const HEARTBEAT_EVERY_MS = 1000;

/** Runs `work`, heartbeating `details()` (none by default) every HEARTBEAT_EVERY_MS until it settles. */
export async function heartbeating<T>(work: () => Promise<T>, details: () => unknown = () => undefined): Promise<T> {
  const ctx = currentActivityContext();
  if (!ctx) return work();
  ctx.heartbeat(details());
  const beat = setInterval(() => ctx.heartbeat(details()), HEARTBEAT_EVERY_MS);
  try {
    return await work();
  } finally {
    clearInterval(beat);
  }
}
