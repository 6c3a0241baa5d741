/**
 * The container workflow's contract: one container's whole life (create and start it on its
 * host, bill each started period while it runs, answer start/stop/restart/remove, follow what
 * Docker reports, end when it is removed). Its input, the state it carries across
 * continue-as-new, the view its updates and its describe query answer, the updates, query and
 * signal, the workflow id and the descriptor the API starts it with. Imported by the workflow,
 * the API's service, the release's activities, the host workers and the tests; ops use the same
 * names from the CLI:
 *   temporal workflow update execute --workflow-id container-<id> --name stop
 *   temporal workflow query --workflow-id container-<id> --name describe
 * Definitions and types only: the workflow imports it.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ContainerReasonCode, ContainerStatus } from '../core/container-state.js';
import { CONTROL_TASK_QUEUE } from '../core/temporal-names.js';
import { defineWorkflow } from './workflow.js';

export { CONTAINER_REASON_CODES, CONTAINER_STATES } from '../core/container-state.js';
export type { ContainerReasonCode, ContainerStatus } from '../core/container-state.js';
/** What the host worker creates: the container as Docker runs it (the workflow's input carries it). */
export interface ContainerSpec {
  id: string;
  userId: string;
  image: string;
  hostIp: string;
  hostPort: number;
  containerPort: number;
  memoryMb: number;
  cpuMillis: number;
  env: string[];
  cmd: string[] | null;
  /** Processes the container may run at once; absent in specs written before it existed. */
  pidsLimit?: number;
}

/** What the workflow carries: its status and why, what Docker said, and where billing stands. */
export interface ContainerState {
  status: ContainerStatus;
  reason: string | null;
  /** Why, as a code (absent in states carried by runs older than reason codes: null). */
  reasonCode?: ContainerReasonCode | null;
  dockerId: string | null;
  exitCode: number | null;
  charged: number;
  /** A billing segment is one uninterrupted run; periods are counted from its start. */
  segment: number;
  segmentStartedAt: number;
  periodsCharged: number;
}

export interface ContainerInput {
  id: string;
  userId: string;
  hostId: string;
  spec: ContainerSpec;
  pricePerPeriod: number;
  billingPeriodMs: number;
  /** History events after which the workflow continues as new (default 2000). */
  historyLimit?: number;
  /** Carried across continue-as-new. */
  state?: ContainerState;
  /** Carried across continue-as-new: Docker reported something the previous run had not looked at yet. */
  lookAgain?: boolean;
}

/** The container as its workflow sees it: what the updates and the describe query answer. */
export interface ContainerView {
  id: string;
  status: ContainerStatus;
  reason: string | null;
  /** Why, as a code; null when the status needs no reason. */
  reasonCode: ContainerReasonCode | null;
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
/**
 * From the nightly release's batches: the release has released the record (removed, in its
 * transaction) and removes the container from Docker itself; the workflow ends, charging nothing more.
 */
export const releasedSignal = defineSignal<[{ releaseId: string }]>('released');

/**
 * The id of the `start` update the API sends with the workflow's start (update-with-start): fixed,
 * so that a start repeated after an ambiguous failure, or the update asked again on the run,
 * gets the first one's outcome (Temporal dedups updates by id within a run).
 */
export const CREATE_START_UPDATE_ID = 'create-start';

export const CONTAINER_OPERATIONS = { start: startUpdate, stop: stopUpdate, restart: restartUpdate, remove: removeUpdate } as const;
export type ContainerOperation = keyof typeof CONTAINER_OPERATIONS;

/** A container's workflow id: "container-<id>" (one workflow per container, for its whole life). */
export const containerWorkflowId = (containerId: string) => `container-${containerId}`;

export const containerWorkflow = defineWorkflow<[ContainerInput], ContainerView>('container', CONTROL_TASK_QUEUE);
