/**
 * The pingHost workflow's contract: one activity on the host's own task queue that answers what
 * the engine says about itself (the end-to-end proof of per-host routing). Started by the API
 * (POST /api/v1/hosts/:id/ping). Types and pure functions only: the workflow imports it.
 */
import { CONTROL_TASK_QUEUE } from '../core/temporal-names.js';
import { defineWorkflow } from './workflow.js';

/** What a host's engine says about itself: the ping's answer. */
export interface EngineInfo {
  hostId: string;
  engineId: string;
  version: string;
  apiVersion: string;
  os: string;
}

/** One ping per request: the host and the API's request id. */
export const pingHostId = (hostId: string, requestId: string) => `ping-${hostId}-${requestId}`;

/** How long a ping may run in all (its activity gives up sooner: activity-profiles host.ping). */
export const PING_TIMEOUT = '30s';

export const pingHostWorkflow = defineWorkflow<[hostId: string], EngineInfo>('pingHost', CONTROL_TASK_QUEUE);
