import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { ControlActivities } from '../activities/control-activities.js';
import type { HostActivities } from '../activities/host-activities.js';
import type { ContainerSpec, ObservedContainer } from '../activities/containers-docker.js';
import { FailureType, NON_RETRYABLE } from '../core/failures.js';
import { hostTaskQueue } from '../core/temporal-names.js';
import { failureType } from './failures.js';
import { rootMessage } from '../core/errors.js';
import {
  describeQuery,
  observedSignal,
  removeUpdate,
  restartUpdate,
  startUpdate,
  stopUpdate,
  type ContainerStatus,
  type ContainerView,
} from './container-api.js';

export interface ContainerState {
  status: ContainerStatus;
  reason: string | null;
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

const HISTORY_LIMIT = 2000;
/** patched() id of the step that removes the user's network after a removal. */
const NETWORK_REMOVAL_PATCH = 'remove-user-network';

const db = proxyActivities<ControlActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', maximumInterval: '30s', nonRetryableErrorTypes: NON_RETRYABLE },
});

/**
 * One container's whole life: create and start it on its host, charge each started
 * billing period while it runs, answer start/stop/restart/remove updates, follow
 * what Docker reports, and end when it is removed.
 */
export async function container(input: ContainerInput): Promise<ContainerView> {
  const host = proxyActivities<HostActivities>({
    taskQueue: hostTaskQueue(input.hostId),
    scheduleToStartTimeout: '1m',
    startToCloseTimeout: '1m',
    retry: { initialInterval: '1s', maximumInterval: '20s', maximumAttempts: 10, nonRetryableErrorTypes: ['ContainerInvalid'] },
  });
  // Best effort: a network left behind is removed by the next removal or the nightly release.
  const hostNetworks = proxyActivities<HostActivities>({
    taskQueue: hostTaskQueue(input.hostId),
    scheduleToStartTimeout: '1m',
    startToCloseTimeout: '30s',
    retry: { initialInterval: '1s', maximumInterval: '5s', maximumAttempts: 3 },
  });
  const s: ContainerState = input.state ?? {
    status: 'creating',
    reason: null,
    dockerId: null,
    exitCode: null,
    charged: 0,
    segment: 0,
    segmentStartedAt: 0,
    periodsCharged: 0,
  };
  let lookAgain = input.lookAgain ?? false;

  // Operations run one at a time, in the order they arrive.
  let chain: Promise<unknown> = Promise.resolve();
  function exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = chain.then(fn);
    chain = run.catch(() => undefined);
    return run;
  }

  const view = (): ContainerView => ({
    id: input.id,
    status: s.status,
    reason: s.reason,
    hostId: input.hostId,
    hostPort: input.spec.hostPort,
    dockerId: s.dockerId,
    exitCode: s.exitCode,
    charged: s.charged,
    periodsCharged: s.periodsCharged,
  });

  async function setStatus(status: ContainerStatus, reason: string | null, extra: { exitCode?: number | null; startedAt?: number } = {}) {
    s.status = status;
    s.reason = reason;
    if (extra.exitCode !== undefined) s.exitCode = extra.exitCode;
    await db.recordContainerState(input.id, { state: status, stateReason: reason, ...(s.dockerId ? { dockerId: s.dockerId } : {}), ...extra });
  }

  /** Charges the next period of the current segment; false when the balance cannot pay it. */
  async function chargePeriod(): Promise<boolean> {
    if (input.pricePerPeriod > 0) {
      try {
        const { applied } = await db.chargeContainerPeriod({
          containerId: input.id,
          userId: input.userId,
          amount: input.pricePerPeriod,
          idempotencyKey: `container-${input.id}-run-${s.segment}-period-${s.periodsCharged}`,
          reason: `container ${input.spec.image} on ${input.hostId}: run ${s.segment}, period ${s.periodsCharged + 1}`,
        });
        if (applied) s.charged += input.pricePerPeriod;
      } catch (error) {
        if (failureType(error) === FailureType.InsufficientFunds) return false;
        throw error;
      }
    }
    s.periodsCharged += 1;
    return true;
  }

  function beginSegment() {
    s.segment += 1;
    s.segmentStartedAt = Date.now();
    s.periodsCharged = 0;
  }

  async function release(status: 'removed' | 'failed', reason: string | null) {
    s.status = status;
    s.reason = reason;
    await db.releaseContainer(input.id, status, reason);
  }

  /**
   * After this container's removal from Docker: the user's network on the host goes once
   * no container of theirs is left on it. A command workflows started before it did not
   * emit, hence the patch.
   */
  async function removeNetworkIfUnused() {
    if (!patched(NETWORK_REMOVAL_PATCH)) return;
    try {
      await hostNetworks.removeUserNetworkIfUnused(input.spec.userId);
    } catch {
      // The network stays until the user's next removal there or the nightly release.
    }
  }

  /** Docker no longer has the container: its record is released, and the user's network may go with it. */
  async function releaseRemovedOutside() {
    await removeNetworkIfUnused();
    await release('removed', 'removed outside Berth');
  }

  function applyObserved(observed: ObservedContainer) {
    s.dockerId = observed.dockerId;
  }

  async function create() {
    beginSegment();
    if (!(await chargePeriod())) {
      await release('failed', 'insufficient balance for the first billing period');
      return;
    }
    try {
      const observed = await host.createAndStartContainer(input.spec);
      applyObserved(observed);
      if (observed.running) await setStatus('running', null, { startedAt: Date.now(), exitCode: null });
      else await setStatus('exited', `container exited at start (code ${observed.exitCode})`, { exitCode: observed.exitCode });
    } catch (error) {
      await host.removeContainer(input.id);
      await removeNetworkIfUnused();
      // It never ran: the first period is given back.
      if (s.charged > 0) {
        const { applied } = await db.refundContainerCharge({
          containerId: input.id,
          userId: input.userId,
          amount: s.charged,
          idempotencyKey: `container-${input.id}-create-refund`,
          reason: `container ${input.spec.image} on ${input.hostId} could not be created`,
        });
        if (applied) s.charged = 0;
      }
      await release('failed', rootMessage(error));
    }
  }

  async function start(): Promise<ContainerView> {
    if (s.status === 'running' || s.status === 'removed' || s.status === 'failed') return view();
    beginSegment();
    if (!(await chargePeriod())) {
      throw ApplicationFailure.create({ message: 'insufficient balance for the first billing period; top up, then start', type: FailureType.InsufficientFunds });
    }
    const observed = await host.startContainer(input.id);
    if (!observed) {
      await releaseRemovedOutside();
      return view();
    }
    applyObserved(observed);
    await setStatus('running', null, { startedAt: Date.now(), exitCode: null });
    return view();
  }

  async function stop(status: 'stopped' | 'suspended' = 'stopped', reason: string | null = null): Promise<ContainerView> {
    if (s.status === 'removed' || s.status === 'failed') return view();
    if (s.status === 'stopped' || (s.status === 'suspended' && status === 'stopped')) return view();
    const observed = await host.stopContainer(input.id);
    if (!observed) {
      await releaseRemovedOutside();
      return view();
    }
    await setStatus(status, reason, { exitCode: observed.exitCode });
    return view();
  }

  async function restart(): Promise<ContainerView> {
    if (s.status !== 'running') return start();
    const observed = await host.restartContainer(input.id);
    if (!observed) await releaseRemovedOutside();
    return view();
  }

  async function remove(): Promise<ContainerView> {
    if (s.status === 'removed') return view();
    await host.removeContainer(input.id);
    await removeNetworkIfUnused();
    await release('removed', null);
    return view();
  }

  /** Billing follows the real state: Docker is asked, and the record is corrected. */
  async function reconcile() {
    if (s.status === 'removed' || s.status === 'failed' || s.status === 'creating') return;
    const observed = await host.inspectContainer(input.id);
    if (!observed) {
      await releaseRemovedOutside();
      return;
    }
    applyObserved(observed);
    if (!observed.running && s.status === 'running') {
      const why = observed.oomKilled ? 'killed: out of memory' : `exited with code ${observed.exitCode}`;
      await setStatus('exited', why, { exitCode: observed.exitCode });
    } else if (observed.running && s.status !== 'running') {
      // Started outside Berth: it runs, so it is billed.
      beginSegment();
      if (await chargePeriod()) await setStatus('running', 'started outside Berth', { startedAt: Date.now() });
      else await stop('suspended', 'insufficient balance for the next billing period');
    }
  }

  // A function, so that TypeScript does not narrow the status across awaits.
  const ended = () => s.status === 'removed' || s.status === 'failed';
  const notRemoved = () => {
    if (ended()) throw new Error(`container ${input.id} is ${s.status}`);
  };
  // An operation that arrives while the container is being created waits for the creation
  // (an update can be handled before the workflow body has queued the creation).
  const afterCreation = <T>(fn: () => Promise<T>) => async () => {
    await condition(() => s.status !== 'creating');
    return exclusive(fn);
  };
  setHandler(describeQuery, view);
  setHandler(startUpdate, afterCreation(start), { validator: notRemoved });
  setHandler(stopUpdate, afterCreation(() => stop()), { validator: notRemoved });
  setHandler(restartUpdate, afterCreation(restart), { validator: notRemoved });
  setHandler(removeUpdate, afterCreation(remove));
  setHandler(observedSignal, () => {
    lookAgain = true;
  });

  /** Continues as new, carrying the state, once the history is long and nothing is in flight. */
  async function continueAsNewIfLong() {
    const info = workflowInfo();
    if (!info.continueAsNewSuggested && info.historyLength <= (input.historyLimit ?? HISTORY_LIMIT)) return;
    await condition(allHandlersFinished);
    // A removed container ends in this run.
    if (ended()) return;
    // A Docker event this run has not looked at yet is looked at by the next.
    await continueAsNew<typeof container>({ ...input, state: s, lookAgain });
  }

  if (!input.state) await exclusive(create);

  while (!ended()) {
    if (lookAgain) {
      lookAgain = false;
      await exclusive(reconcile);
      continue;
    }
    if (s.status === 'running') {
      const due = s.segmentStartedAt + s.periodsCharged * input.billingPeriodMs;
      if (due <= Date.now()) {
        await exclusive(async () => {
          if (s.status !== 'running' || s.segmentStartedAt + s.periodsCharged * input.billingPeriodMs > Date.now()) return;
          if (!(await chargePeriod())) await stop('suspended', 'insufficient balance for the next billing period');
        });
        continue;
      }
      const segment = s.segment;
      await condition(() => s.status !== 'running' || s.segment !== segment || lookAgain, due - Date.now());
    } else {
      const status = s.status;
      const segment = s.segment;
      await condition(() => s.status !== status || s.segment !== segment || lookAgain);
    }
    await continueAsNewIfLong();
  }
  await condition(allHandlersFinished);
  return view();
}
