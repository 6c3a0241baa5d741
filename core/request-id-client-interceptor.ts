/**
 * The Temporal client's side of the request id's journey (core/request-id-header.ts): a workflow
 * started while the API serves a request (core/request-context.ts) carries that request's id in
 * its start headers. Starts outside a request (a worker's own client) carry none.
 */
import type { WorkflowClientInterceptor } from '@temporalio/client';
import { currentRequestId } from './request-context.js';
import { withRequestId } from './request-id-header.js';

export const requestIdClientInterceptor: WorkflowClientInterceptor = {
  startWithDetails: (input, next) => next({ ...input, headers: withRequestId(input.headers, currentRequestId()) }),
  signalWithStart: (input, next) => next({ ...input, headers: withRequestId(input.headers, currentRequestId()) }),
  startUpdateWithStart: (input, next) => next({ ...input, workflowStartHeaders: withRequestId(input.workflowStartHeaders, currentRequestId()) }),
};
