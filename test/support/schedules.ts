/** Temporal Schedules as operators drive them: the real temporal CLI, and a trigger that waits for the run it started. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import { baseConfig } from './app.js';
import { TEMPORAL_CLI } from './stack.js';
import { sleep } from './wait.js';

/** Runs the real temporal CLI against the stack's server. */
export function temporalCli(args: string[]) {
  return promisify(execFile)(TEMPORAL_CLI, [...args, '--address', baseConfig.temporal.address, '--namespace', baseConfig.temporal.namespace]);
}

/**
 * Triggers a schedule with the temporal CLI (overlap allowed: a run of its own) and answers the
 * workflow id of the run it started and that run's result.
 */
export async function triggerScheduleAndWait<T>(temporal: Client, scheduleId: string): Promise<{ workflowId: string; result: T }> {
  const handle = temporal.schedule.getHandle(scheduleId);
  const seen = new Set((await handle.describe()).info.recentActions.map((a) => a.action.workflow.workflowId));
  await temporalCli(['schedule', 'trigger', '--schedule-id', scheduleId, '--overlap-policy', 'AllowAll']);
  for (let i = 0; i < 600; i++) {
    const taken = (await handle.describe()).info.recentActions.find((a) => !seen.has(a.action.workflow.workflowId));
    if (taken) {
      const { workflowId, firstExecutionRunId } = taken.action.workflow;
      return { workflowId, result: (await temporal.workflow.getHandle(workflowId, firstExecutionRunId).result()) as T };
    }
    await sleep(100);
  }
  throw new Error(`schedule ${scheduleId} did not start a run`);
}
