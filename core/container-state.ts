/**
 * The container state machine: THE one place that says which states a container has, which
 * changes of state are legal, why a container is in the state it is in (a closed set of reason
 * codes, recorded beside the message), when its next billing period is due and the ledger keys
 * of its periods.
 *
 *   creating ──▶ running ◀──▶ stopped / suspended / exited ──▶ removed
 *      │  └────▶ exited          (every live state) ──────────────▶ removed
 *      └───────▶ failed ──▶ removed
 *
 * The transitions are those workflows/container.ts makes (its operations, the billing loop and
 * the reconciliation with what Docker reports), so that no running workflow is refused. Pure:
 * the workflow, the database activity that records a state (refusing an illegal one) and the
 * API all use it. No imports. The ledger keys of the periods are billing/keys.ts's
 * containerPeriod(containerId, segment, period), built from the position kept here.
 */

export const CONTAINER_STATES = ['creating', 'running', 'stopped', 'suspended', 'exited', 'removed', 'failed'] as const;
export type ContainerStatus = (typeof CONTAINER_STATES)[number];

/** The states a container ends in: its record is released (its port and its slot are free again). */
export const ENDED_STATES = ['removed', 'failed'] as const satisfies readonly ContainerStatus[];
export type EndedStatus = (typeof ENDED_STATES)[number];

/**
 * Why a container is in its state, as a code beside the message (the message is for people; the
 * code is what code decides on). Null when the state needs no reason (started, stopped or
 * removed by its user).
 */
export const CONTAINER_REASON_CODES = [
  /** The balance could not pay a billing period: failed at creation, or suspended. */
  'insufficient_funds',
  /** Docker refused or failed the creation. */
  'docker_error',
  /** The host did not take the work in time (its worker or daemon is down). */
  'host_unreachable',
  /** Its process ended (at start, or later). */
  'exited',
  /** Its process was killed for want of memory. */
  'oom_killed',
  /** Removed from Docker by someone other than Berth. */
  'removed_outside',
  /** Started in Docker by someone other than Berth: it runs, so it is billed. */
  'started_outside',
  /** Its workflow could not be started: the API released the record it had admitted. */
  'start_failed',
] as const;
export type ContainerReasonCode = (typeof CONTAINER_REASON_CODES)[number];

const NEXT: Readonly<Record<ContainerStatus, readonly ContainerStatus[]>> = Object.freeze({
  // Created and started; it exited at once; the first period unpaid, Docker refused, or the host never answered.
  creating: ['running', 'exited', 'failed'],
  // stop; an unpaid period (suspended); Docker reports it ended; removed (by its user, or found gone outside Berth).
  running: ['stopped', 'suspended', 'exited', 'removed'],
  // start (by its user, or seen started outside Berth); removed.
  stopped: ['running', 'removed'],
  suspended: ['running', 'removed'],
  // start or seen started outside; stop; seen started outside with nothing to pay for it (suspended); removed.
  exited: ['running', 'stopped', 'suspended', 'removed'],
  removed: [],
  // A remove update accepted as the creation failed still runs its removal.
  failed: ['removed'],
});

export class IllegalContainerTransitionError extends Error {
  constructor(
    readonly from: string,
    readonly to: string,
  ) {
    super(`illegal container transition ${from} → ${to}`);
    this.name = 'IllegalContainerTransitionError';
  }
}

export function isContainerStatus(value: unknown): value is ContainerStatus {
  return typeof value === 'string' && (CONTAINER_STATES as readonly string[]).includes(value);
}

export function isContainerReasonCode(value: unknown): value is ContainerReasonCode {
  return typeof value === 'string' && (CONTAINER_REASON_CODES as readonly string[]).includes(value);
}

/** Removed or failed: the container's record is released and its workflow ends. */
export function isEnded(status: ContainerStatus): status is EndedStatus {
  return (ENDED_STATES as readonly string[]).includes(status);
}

/** The states `status` may change to (a repeat of the same state aside). */
export function allowedNext(status: ContainerStatus): readonly ContainerStatus[] {
  return NEXT[status];
}

/**
 * Whether a container in `from` may be recorded in `to`: one of the transitions above, or a
 * repeat of the state it is in (a retried recording, or new details of the same state: a
 * suspended container suspended again after it was seen started outside Berth).
 */
export function canTransition(from: ContainerStatus, to: ContainerStatus): boolean {
  return isContainerStatus(from) && isContainerStatus(to) && (from === to || NEXT[from].includes(to));
}

/** Throws IllegalContainerTransitionError unless `from → to` may be recorded. */
export function assertTransition(from: ContainerStatus, to: ContainerStatus): void {
  if (!canTransition(from, to)) throw new IllegalContainerTransitionError(from, to);
}

/**
 * Why a creation failed, as a code, from the root cause of its failure (core/failures.ts
 * rootCause): an activity's own failure (an ApplicationFailure, which has a type) is Docker's
 * refusal or failure; a failure without one is a timeout (the host never took the work, or never
 * answered).
 */
export function creationFailureCode(cause: { type?: string }): Extract<ContainerReasonCode, 'docker_error' | 'host_unreachable'> {
  return cause.type === undefined ? 'host_unreachable' : 'docker_error';
}

/** Where a run's billing stands: a run (segment) is one uninterrupted run, its periods counted from its start. */
export interface BillingPosition {
  segment: number;
  /** Epoch ms at which the current run began. */
  segmentStartedAt: number;
  /** Periods of the current run charged so far. */
  periodsCharged: number;
}

/**
 * Epoch ms at which a running container's next period will be charged, as the API estimates it
 * from when its run started (`runStartedAt`): the first period boundary after `now`. The workflow
 * counts its periods from a moment before Docker started the container, so the charge may come
 * that much earlier (seconds).
 */
export function nextChargeAfter(runStartedAt: number, now: number, billingPeriodMs: number): number {
  const elapsed = Math.max(0, now - runStartedAt);
  return runStartedAt + (Math.floor(elapsed / billingPeriodMs) + 1) * billingPeriodMs;
}

/** Epoch ms at which the next period of the current run is due (it is charged then, in advance). */
export function nextChargeDue(position: Pick<BillingPosition, 'segmentStartedAt' | 'periodsCharged'>, billingPeriodMs: number): number {
  return position.segmentStartedAt + position.periodsCharged * billingPeriodMs;
}
