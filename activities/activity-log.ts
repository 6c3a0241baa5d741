/**
 * The activity context logger (`log` from @temporalio/activity) for the key steps of activities:
 * each line carries the workflow id and run id, the activity type and attempt, and the request id
 * (workers/sdk-logger.ts, workers/request-id-activity-interceptor.ts). Outside an activity (a
 * test calling an activity function directly) nothing is logged, where `log` would throw.
 */
import { Context, log } from '@temporalio/activity';
import type { LogMetadata } from '@temporalio/common';

/** The current activity's context, or undefined when called outside an activity. */
export function currentActivityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

export const activityLog = {
  info(message: string, meta?: LogMetadata): void {
    if (currentActivityContext()) log.info(message, meta);
  },
  warn(message: string, meta?: LogMetadata): void {
    if (currentActivityContext()) log.warn(message, meta);
  },
};
