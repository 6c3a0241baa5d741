import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { ControlActivities } from '../activities/control-activities.js';
import type { HostActivities } from '../activities/host-activities.js';
import type { ObservedContainer } from '../activities/containers-docker.js';
import { FailureType, failureTypeOf, rootCause } from '../core/failures.js';
import { creationFailureCode, isEnded, nextChargeDue, type ContainerReasonCode } from '../core/container-state.js';
import { billingKeys } from '../billing/keys.js';
import {
  describeQuery,
  observedSignal,
  releasedSignal,
  removeUpdate,
  restartUpdate,
  startUpdate,
  stopUpdate,
  type ContainerInput,
  type ContainerState,
  type ContainerStatus,
  type ContainerView,
} from '../contracts/container.js';
import { database, localDatabase, host as onHost } from './activity-profiles.js';
import { PATCHES } from './patches.js';

const HISTORY_LIMIT = 2000;

const remoteDb = proxyActivities<ControlActivities>(database);
const localDb = proxyLocalActivities<ControlActivities>(localDatabase);
/**
 * The database steps (state, charge, refund, release): local activities in a run that took
 * the patch, so that a step adds its query and no trip through the server to the container's
 * run; a history recorded before it replays with the activities it scheduled.
 */
const db = () => (patched(PATCHES.containerLocalDatabaseSteps.id) ? localDb : remoteDb);

/**
 * One container's whole life: create and start it on its host, charge each started
 * billing period while it runs, answer start/stop/restart/remove updates, follow
 * what Docker reports, and end when it is removed.
 */
export async function container(input: ContainerInput): Promise<ContainerView> {
  const host = proxyActivities<HostActivities>(onHost.container(input.hostId));
  // Best effort: a network left behind is removed by the next removal or the nightly release.
  const hostNetworks = proxyActivities<HostActivities>(onHost.bestEffort(input.hostId));
  const s: ContainerState = input.state ?? {
    status: 'creating',
    reason: null,
    reasonCode: null,
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
    reasonCode: s.reasonCode ?? null,
    hostId: input.hostId,
    hostPort: input.spec.hostPort,
    dockerId: s.dockerId,
    exitCode: s.exitCode,
    charged: s.charged,
    periodsCharged: s.periodsCharged,
  });

  async function setStatus(
    status: ContainerStatus,
    reason: string | null,
    reasonCode: ContainerReasonCode | null,
    extra: { exitCode?: number | null; startedAt?: number } = {},
  ) {
    s.status = status;
    s.reason = reason;
    s.reasonCode = reasonCode;
    if (extra.exitCode !== undefined) s.exitCode = extra.exitCode;
    log.info('container state', { containerId: input.id, hostId: input.hostId, status, reason, reasonCode, exitCode: s.exitCode });
    await db().recordContainerState(input.id, {
      state: status,
      stateReason: reason,
      stateReasonCode: reasonCode,
      ...(s.dockerId ? { dockerId: s.dockerId } : {}),
      ...extra,
    });
  }

  /** Set when a charge found the record ended (released outside this run): nothing was charged. */
  let recordEnded = false;

  /** Charges the next period of the current segment; false when the balance cannot pay it. */
  async function chargePeriod(): Promise<boolean> {
    if (input.pricePerPeriod > 0) {
      try {
        const { applied, ended } = await db().chargeContainerPeriod({
          containerId: input.id,
          userId: input.userId,
          amount: input.pricePerPeriod,
          idempotencyKey: billingKeys.containerPeriod(input.id, s.segment, s.periodsCharged),
          reason: `container ${input.spec.image} on ${input.hostId}: run ${s.segment}, period ${s.periodsCharged + 1}`,
        });
        if (applied) s.charged += input.pricePerPeriod;
        if (ended) recordEnded = true;
        log.info('container period charged', { containerId: input.id, segment: s.segment, period: s.periodsCharged + 1, amount: input.pricePerPeriod, applied });
      } catch (error) {
        if (failureTypeOf(error) === FailureType.InsufficientFunds) {
          log.info('container period unpaid: the balance cannot pay', { containerId: input.id, segment: s.segment, period: s.periodsCharged + 1 });
          return false;
        }
        throw error;
      }
    }
    s.periodsCharged += 1;
    return true;
  }

  /**
   * Whether the record ended before this run's first step: the API released it, as it could not
   * confirm this run's start (the run landed late). Told by the first charge; with nothing to
   * charge, asked. A run that took the patch only; older histories replay without the question.
   */
  async function releasedBeforeStart(): Promise<boolean> {
    if (input.pricePerPeriod > 0) return recordEnded && patched(PATCHES.containerLateStart.id);
    return patched(PATCHES.containerLateStart.id) && (await localDb.containerRecordEnded(input.id));
  }

  function beginSegment() {
    s.segment += 1;
    s.segmentStartedAt = Date.now();
    s.periodsCharged = 0;
  }

  async function release(status: 'removed' | 'failed', reason: string | null, reasonCode: ContainerReasonCode | null) {
    s.status = status;
    s.reason = reason;
    s.reasonCode = reasonCode;
    log.info('container released', { containerId: input.id, hostId: input.hostId, status, reason, reasonCode, charged: s.charged });
    await db().releaseContainer(input.id, status, reason, reasonCode);
  }

  /**
   * After this container's removal from Docker: the user's network on the host goes once
   * no container of theirs is left on it. A command workflows started before it did not
   * emit, hence the patch.
   */
  async function removeNetworkIfUnused() {
    if (!patched(PATCHES.removeUserNetwork.id)) return;
    try {
      await hostNetworks.removeUserNetworkIfUnused(input.spec.userId);
    } catch {
      // The network stays until the user's next removal there or the nightly release.
    }
  }

  /** Docker no longer has the container: its record is released, and the user's network may go with it. */
  async function releaseRemovedOutside() {
    await removeNetworkIfUnused();
    await release('removed', 'removed outside Berth', 'removed_outside');
  }

  function applyObserved(observed: ObservedContainer) {
    s.dockerId = observed.dockerId;
  }

  async function create() {
    beginSegment();
    if (!(await chargePeriod())) {
      await release('failed', 'insufficient balance for the first billing period', 'insufficient_funds');
      return;
    }
    if (await releasedBeforeStart()) {
      // The record is released already (its port and slot handed back): nothing to create, charge or record.
      s.status = 'failed';
      s.reason = 'its workflow could not be confirmed started: the API released the record';
      s.reasonCode = 'start_failed';
      s.periodsCharged = 0;
      log.info('container released before its workflow started: nothing created', { containerId: input.id, hostId: input.hostId });
      return;
    }
    try {
      const observed = await host.createAndStartContainer(input.spec);
      applyObserved(observed);
      if (observed.running) await setStatus('running', null, null, { startedAt: Date.now(), exitCode: null });
      else await setStatus('exited', `container exited at start (code ${observed.exitCode})`, 'exited', { exitCode: observed.exitCode });
    } catch (error) {
      if (patched(PATCHES.containerCreateCleanupBestEffort.id)) {
        try {
          await host.removeContainer(input.id);
        } catch {
          // An unreachable host cannot remove what it may have made: the nightly release's orphan sweep does.
        }
      } else {
        await host.removeContainer(input.id);
      }
      await removeNetworkIfUnused();
      // It never ran: the first period is given back.
      if (s.charged > 0) {
        const { applied } = await db().refundContainerCharge({
          containerId: input.id,
          userId: input.userId,
          amount: s.charged,
          idempotencyKey: billingKeys.containerCreateRefund(input.id),
          reason: `container ${input.spec.image} on ${input.hostId} could not be created`,
        });
        if (applied) s.charged = 0;
      }
      const cause = rootCause(error);
      await release('failed', cause.message, creationFailureCode(cause));
    }
  }

  async function start(): Promise<ContainerView> {
    if (s.status === 'running' || isEnded(s.status)) return view();
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
    await setStatus('running', null, null, { startedAt: Date.now(), exitCode: null });
    return view();
  }

  async function stop(status: 'stopped' | 'suspended' = 'stopped', reason: string | null = null, reasonCode: ContainerReasonCode | null = null): Promise<ContainerView> {
    if (isEnded(s.status)) return view();
    if (s.status === 'stopped' || (s.status === 'suspended' && status === 'stopped')) return view();
    const observed = await host.stopContainer(input.id);
    if (!observed) {
      await releaseRemovedOutside();
      return view();
    }
    await setStatus(status, reason, reasonCode, { exitCode: observed.exitCode });
    return view();
  }

  /** An unpaid period: the container stops until its user tops up and starts it. */
  const suspend = () => stop('suspended', 'insufficient balance for the next billing period', 'insufficient_funds');

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
    await release('removed', null, null);
    return view();
  }

  /** Billing follows the real state: Docker is asked, and the record is corrected. */
  async function reconcile() {
    if (isEnded(s.status) || s.status === 'creating') return;
    const observed = await host.inspectContainer(input.id);
    if (!observed) {
      await releaseRemovedOutside();
      return;
    }
    applyObserved(observed);
    if (!observed.running && s.status === 'running') {
      if (observed.oomKilled) await setStatus('exited', 'killed: out of memory', 'oom_killed', { exitCode: observed.exitCode });
      else await setStatus('exited', `exited with code ${observed.exitCode}`, 'exited', { exitCode: observed.exitCode });
    } else if (observed.running && s.status !== 'running') {
      // Started outside Berth: it runs, so it is billed.
      beginSegment();
      if (await chargePeriod()) await setStatus('running', 'started outside Berth', 'started_outside', { startedAt: Date.now() });
      else await suspend();
    }
  }

  // A function, so that TypeScript does not narrow the status across awaits.
  const ended = () => isEnded(s.status);
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
  // The nightly release released the record and removes the container from Docker itself: after
  // whatever operation is in flight, the workflow ends (no activity: its record is written already).
  // A worker of older code left the signal unhandled: its histories replay without the patch.
  setHandler(releasedSignal, ({ releaseId }) => {
    if (!patched(PATCHES.containerReleasedSignal.id)) return;
    void exclusive(async () => {
      if (ended()) return;
      s.status = 'removed';
      s.reason = null;
      s.reasonCode = null;
      log.info('container released by the nightly release', { containerId: input.id, hostId: input.hostId, releaseId, charged: s.charged });
    });
  });

  /** Continues as new, carrying the state, once the history is long and nothing is in flight. */
  async function continueAsNewIfLong() {
    const info = workflowInfo();
    if (!info.continueAsNewSuggested && info.historyLength <= (input.historyLimit ?? HISTORY_LIMIT)) return;
    await condition(allHandlersFinished);
    // A removed container ends in this run.
    if (ended()) return;
    // A Docker event this run has not looked at yet is looked at by the next.
    log.info('container continues as new', { containerId: input.id, historyLength: info.historyLength, status: s.status });
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
      const due = nextChargeDue(s, input.billingPeriodMs);
      if (due <= Date.now()) {
        await exclusive(async () => {
          if (s.status !== 'running' || nextChargeDue(s, input.billingPeriodMs) > Date.now()) return;
          if (!(await chargePeriod())) await suspend();
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
