/** Reading workflow histories from Temporal in tests. */
import proto from '@temporalio/proto';
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

/** Each activity of a workflow run, in order: its type and the milliseconds from scheduled to closed. */
export async function activityDurations(client: Client, workflowId: string): Promise<Array<{ activityType: string; ms: number }>> {
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const at = (e: (typeof events)[number]) => Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
  const scheduled = new Map<string, { activityType: string; ms: number }>();
  const durations: Array<{ activityType: string; ms: number }> = [];
  for (const e of events) {
    const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
    if (name) scheduled.set(String(e.eventId), { activityType: name, ms: at(e) });
    const closed =
      e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes ?? e.activityTaskCanceledEventAttributes;
    const start = closed && scheduled.get(String(closed.scheduledEventId));
    if (start) durations.push({ activityType: start.activityType, ms: at(e) - start.ms });
  }
  return durations;
}

/** A history as plain JSON (protobufjs's object form: enums by name, 64-bit numbers as strings). */
export function historyToObject(history: proto.temporal.api.history.v1.IHistory): Record<string, unknown> {
  const { History } = proto.temporal.api.history.v1;
  return History.toObject(History.fromObject(history), { enums: String, longs: String, bytes: String });
}

/** The history historyToObject wrote, for Worker.runReplayHistory. */
export function historyFromObject(object: Record<string, unknown>): proto.temporal.api.history.v1.History {
  return proto.temporal.api.history.v1.History.fromObject(object);
}
