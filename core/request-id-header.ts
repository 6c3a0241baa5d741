/**
 * The API's request id as it travels through Temporal: a header (`berth-request-id`) on the
 * workflow's start, which the workflow's interceptors (workflows/request-id-interceptors.ts) pass
 * on to every activity, child and continued run it starts, and which the activity interceptor
 * (workers/request-id-activity-interceptor.ts) adds to the activity's log lines. Headers are not
 * part of a workflow's commands: setting them changes nothing a replay compares.
 *
 * Only @temporalio/common: workflow code uses it.
 */
import { defaultPayloadConverter, type Headers } from '@temporalio/common';

export const REQUEST_ID_HEADER = 'berth-request-id';

/** The request id a set of headers carries, if any. */
export function requestIdOf(headers: Headers): string | undefined {
  const payload = headers[REQUEST_ID_HEADER];
  if (!payload) return undefined;
  const value: unknown = defaultPayloadConverter.fromPayload(payload);
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** `headers` with the request id set (unchanged without one, or when it carries one already). */
export function withRequestId(headers: Headers, requestId: string | undefined): Headers {
  if (!requestId || headers[REQUEST_ID_HEADER]) return headers;
  return { ...headers, [REQUEST_ID_HEADER]: defaultPayloadConverter.toPayload(requestId) };
}
