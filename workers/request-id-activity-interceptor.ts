/**
 * The activity's side of the request id's journey (core/request-id-header.ts): the id the
 * workflow passed in the activity's headers goes onto every line the activity logs through
 * `log` from @temporalio/activity, and onto the SDK's own lines about it (failed, completed), as
 * `reqId`: the field the API's own lines carry it in (Fastify's).
 */
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { requestIdOf } from '../core/request-id-header.js';

export const requestIdActivityInterceptor: ActivityInterceptorsFactory = () => {
  // One factory call per activity execution: the id is this execution's.
  let requestId: string | undefined;
  return {
    inbound: {
      execute(input, next) {
        requestId = requestIdOf(input.headers);
        return next(input);
      },
    },
    outbound: {
      getLogAttributes: (input, next) => next(requestId ? { ...input, reqId: requestId } : input),
    },
  };
};
