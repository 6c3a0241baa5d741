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

/**
 * The status a workflow closes with, waiting for it to close: a row written by a workflow's last
 * activity is visible a moment before the run itself completes.
 */
export async function closedStatus(client: Client, workflowId: string, seconds = 30): Promise<string> {
  const handle = client.workflow.getHandle(workflowId);
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const status = (await handle.describe()).status.name;
    if (status !== 'RUNNING' || Date.now() > deadline) return status;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
