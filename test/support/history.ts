/** Reading workflow histories: from Temporal in tests, and from the JSON files the replay test replays. */
import { createRequire } from 'node:module';
import proto from '@temporalio/proto';
import type { Client } from '@temporalio/client';
import { decodeRetryState } from '@temporalio/common';

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

// ------------------------------------------------------------------ histories as JSON files

type History = proto.temporal.api.history.v1.History;

/**
 * protobufjs's proto3-JSON codec, from the copy of protobufjs that made @temporalio/proto's
 * types. The SDK's historyFromJSON (@temporalio/common's proto-utils) takes the codec from
 * @temporalio/common's own copy: dockerode needs protobufjs 7 at the top of node_modules, so npm
 * gives each @temporalio package a nested copy of protobufjs 8, and the codec's `instanceof Type`
 * check fails on the other copy's types ("type must be a Type"). Same copy, no such failure.
 */
const protojson = createRequire(createRequire(import.meta.url).resolve('@temporalio/proto'))('protobufjs/ext/protojson') as {
  fromJson(type: unknown, json: unknown, options?: { ignoreUnknownFields?: boolean }): History | null;
  toJson(type: unknown, message: unknown): unknown;
};
const historyType = (proto as unknown as { lookupType(name: string): unknown }).lookupType('temporal.api.history.v1.History');

/**
 * Enum values as older temporal CLIs wrote them ("WorkflowExecutionStarted" for
 * EVENT_TYPE_WORKFLOW_EXECUTION_STARTED), made canonical, as the SDK's historyFromJSON does.
 */
function canonicalEnums(history: { events: Array<Record<string, unknown>> }) {
  const constant = (s: string) => s.replace(/[^\b][A-Z]/g, (m) => `${m[0]}_${m[1]}`).toUpperCase();
  const fix = (obj: Record<string, unknown> | undefined, field: string, prefix: string) => {
    const value = obj?.[field];
    if (typeof value === 'string' && !value.startsWith(prefix)) obj![field] = `${prefix}_${constant(value)}`;
  };
  for (const event of history.events) {
    fix(event, 'eventType', 'EVENT_TYPE');
    const key = Object.keys(event).find((k) => k.endsWith('EventAttributes'));
    if (!key) throw new TypeError(`history event ${String(event.eventId)} has no attributes`);
    const attributes = event[key] as Record<string, unknown>;
    fix(attributes.taskQueue as Record<string, unknown> | undefined, 'kind', 'TASK_QUEUE_KIND');
    fix(attributes, 'parentClosePolicy', 'PARENT_CLOSE_POLICY');
    fix(attributes, 'workflowIdReusePolicy', 'WORKFLOW_ID_REUSE_POLICY');
    fix(attributes, 'initiator', 'CONTINUE_AS_NEW_INITIATOR');
    fix(attributes, 'retryState', 'RETRY_STATE');
    fix(attributes.childWorkflowExecutionFailureInfo as Record<string, unknown> | undefined, 'retryState', 'RETRY_STATE');
  }
}

/**
 * A history file as `temporal workflow show --output json` writes it (proto3 JSON; payloads raw:
 * --no-json-shorthand-payloads), as the History that Worker.runReplayHistory takes. Fields this
 * SDK does not know (a newer server's) are ignored, as the SDK's own loader does.
 */
export function loadHistory(json: unknown): History {
  const history = structuredClone(json) as { events?: unknown };
  if (typeof history !== 'object' || history === null || !Array.isArray(history.events)) {
    throw new TypeError('not a history: expected an object with an array of events');
  }
  canonicalEnums(history as { events: Array<Record<string, unknown>> });
  const loaded = protojson.fromJson(historyType, history, { ignoreUnknownFields: true });
  if (!loaded) throw new TypeError('not a history');
  return loaded;
}

/** A history as the temporal CLI writes it (proto3 JSON), e.g. one fetched with fetchHistory(). */
export function historyToJson(history: proto.temporal.api.history.v1.IHistory): unknown {
  return protojson.toJson(historyType, proto.temporal.api.history.v1.History.fromObject(history));
}

/** What a recorded run did: its workflow type, events, activities scheduled (in order), patches, and how it ended. */
export function historySummary(history: proto.temporal.api.history.v1.IHistory) {
  const events = history.events ?? [];
  const last = events.at(-1);
  const end = last?.workflowExecutionCompletedEventAttributes
    ? 'completed'
    : last?.workflowExecutionFailedEventAttributes
      ? 'failed'
      : last?.workflowExecutionContinuedAsNewEventAttributes
        ? 'continuedAsNew'
        : last?.workflowExecutionTerminatedEventAttributes || last?.workflowExecutionCanceledEventAttributes || last?.workflowExecutionTimedOutEventAttributes
          ? 'ended otherwise'
          : 'open';
  return {
    workflowType: events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name ?? '',
    events: events.length,
    activities: events.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType?.name ?? ''] : [])),
    patches: [
      ...new Set(
        events.flatMap((e) => {
          const marker = e.markerRecordedEventAttributes;
          const data = marker?.markerName === 'core_patch' ? marker.details?.['patch-data']?.payloads?.[0]?.data : undefined;
          return data ? [(JSON.parse(Buffer.from(data).toString('utf8')) as { id: string }).id] : [];
        }),
      ),
    ],
    /** The build ids of the workers that completed its workflow tasks (the SDK's: version and a hash of the workflow bundle). */
    buildIds: [
      ...new Set(
        events.flatMap((e) => {
          const done = e.workflowTaskCompletedEventAttributes;
          const id = done?.deploymentVersion?.buildId || done?.workerVersion?.buildId || done?.binaryChecksum;
          return id ? [id] : [];
        }),
      ),
    ],
    end,
  };
}

type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;
type Failure = NonNullable<HistoryEvent['activityTaskFailedEventAttributes']>['failure'];

const eventMs = (ts: HistoryEvent['eventTime']) => Number(String(ts?.seconds ?? 0)) * 1000 + Math.floor((ts?.nanos ?? 0) / 1e6);

/** Each activity of a workflow run, from its history: type, the attempt that ended it, its outcome. */
export interface ActivityRun {
  type: string;
  queue: string;
  scheduledAt: number;
  endedAt?: number;
  attempt?: number;
  lastFailure?: Failure;
  outcome?: 'completed' | 'failed' | 'timedOut' | 'canceled';
  failure?: Failure;
  retryState?: string;
}

export async function activityRuns(client: Client, workflowId: string): Promise<ActivityRun[]> {
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const runs = new Map<string, ActivityRun>();
  for (const e of events) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) {
      runs.set(String(e.eventId), { type: scheduled.activityType?.name ?? '', queue: scheduled.taskQueue?.name ?? '', scheduledAt: eventMs(e.eventTime) });
    }
    const started = e.activityTaskStartedEventAttributes;
    if (started) Object.assign(runs.get(String(started.scheduledEventId))!, { attempt: started.attempt ?? 1, lastFailure: started.lastFailure });
    const done =
      (e.activityTaskCompletedEventAttributes && (['completed', e.activityTaskCompletedEventAttributes] as const)) ||
      (e.activityTaskFailedEventAttributes && (['failed', e.activityTaskFailedEventAttributes] as const)) ||
      (e.activityTaskTimedOutEventAttributes && (['timedOut', e.activityTaskTimedOutEventAttributes] as const)) ||
      (e.activityTaskCanceledEventAttributes && (['canceled', e.activityTaskCanceledEventAttributes] as const));
    if (done) {
      const [outcome, attrs] = done;
      const failed = attrs as Partial<NonNullable<HistoryEvent['activityTaskFailedEventAttributes']>>;
      Object.assign(runs.get(String(attrs.scheduledEventId))!, {
        outcome,
        endedAt: eventMs(e.eventTime),
        failure: failed.failure,
        retryState: decodeRetryState(failed.retryState),
      });
    }
  }
  return [...runs.values()];
}
