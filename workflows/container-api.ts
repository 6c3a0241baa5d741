/**
 * The container workflow's interface: updates (start, stop, restart, remove), the
 * describe query and the observed signal. Imported by the workflow, the API and the
 * host workers; ops use the same names from the CLI:
 *   temporal workflow update execute --workflow-id container-<id> --name stop
 *   temporal workflow query --workflow-id container-<id> --name describe
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

export type ContainerStatus = 'creating' | 'running' | 'stopped' | 'suspended' | 'exited' | 'removed' | 'failed';

export interface ContainerView {
  id: string;
  status: ContainerStatus;
  reason: string | null;
  hostId: string;
  hostPort: number;
  dockerId: string | null;
  exitCode: number | null;
  /** Minor units charged so far. */
  charged: number;
  /** Billing periods charged in the current run. */
  periodsCharged: number;
}

export const startUpdate = defineUpdate<ContainerView>('start');
export const stopUpdate = defineUpdate<ContainerView>('stop');
export const restartUpdate = defineUpdate<ContainerView>('restart');
export const removeUpdate = defineUpdate<ContainerView>('remove');
export const describeQuery = defineQuery<ContainerView>('describe');
/** From the host's Docker events: something happened to the container; look again. */
export const observedSignal = defineSignal<[{ action: string }]>('observed');

export const CONTAINER_OPERATIONS = { start: startUpdate, stop: stopUpdate, restart: restartUpdate, remove: removeUpdate } as const;
export type ContainerOperation = keyof typeof CONTAINER_OPERATIONS;
