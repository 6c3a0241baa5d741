/** Reading workflow histories from Temporal in tests. */
import type { Client } from '@temporalio/client';

/** The attempt numbers with which an activity type's tasks started (as the history records them). */
export async function activityAttempts(client: Client, workflowId: string, activityType: string): Promise<number[]> {
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const scheduled = new Set(events.flatMap((e) =>
    e.activityTaskScheduledEventAttributes?.activityType?.name === activityType ? [String(e.eventId)] : []));
  return events.flatMap((e) =>
    e.activityTaskStartedEventAttributes && scheduled.has(String(e.activityTaskStartedEventAttributes.scheduledEventId))
      ? [e.activityTaskStartedEventAttributes.attempt ?? 1] : []);
}
