/**
 * Workflow interceptors (a module the control worker loads into its workflow bundle:
 * workers/workflow-code.ts): the request id a run was started with (its `berth-request-id`
 * header, core/request-id-header.ts) goes on to every activity, child workflow and continued run
 * it starts, and onto its own log lines (`log` from @temporalio/workflow) as `reqId`, the API's
 * field for it. Only headers and log
 * attributes: no command changes, so nothing a replay compares.
 */
import type { WorkflowInterceptors } from '@temporalio/workflow';
import { requestIdOf, withRequestId } from '../core/request-id-header.js';

export const interceptors = (): WorkflowInterceptors => {
  // One factory call per run: the id is this run's.
  let requestId: string | undefined;
  return {
    inbound: [
      {
        execute(input, next) {
          requestId = requestIdOf(input.headers);
          return next(input);
        },
      },
    ],
    outbound: [
      {
        scheduleActivity: (input, next) => next({ ...input, headers: withRequestId(input.headers, requestId) }),
        scheduleLocalActivity: (input, next) => next({ ...input, headers: withRequestId(input.headers, requestId) }),
        startChildWorkflowExecution: (input, next) => next({ ...input, headers: withRequestId(input.headers, requestId) }),
        continueAsNew: (input, next) => next({ ...input, headers: withRequestId(input.headers, requestId) }),
        getLogAttributes: (input, next) => next(requestId ? { ...input, reqId: requestId } : input),
      },
    ],
  };
};
