/** Whether a workflow still runs, as the limits that count work in flight need to know. */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';

/** True while the workflow runs; one Temporal no longer knows has ended. Other errors are thrown. */
export async function workflowRunning(temporal: Client, workflowId: string): Promise<boolean> {
  try {
    return (await temporal.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING';
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return false;
    throw error;
  }
}
