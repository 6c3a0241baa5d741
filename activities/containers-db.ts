/**
 * Container activities on the control worker: the workflow's states, its money and its release,
 * each one transaction (with the audit entry of what the system did on its own, when it did so).
 * A state is recorded with the record locked and only when the state
 * machine allows it (core/container-state.ts): an illegal transition is the non-retryable
 * IllegalTransition failure. Money moves through billing/ledger.ts with the key the workflow
 * built (billing/keys.ts); a balance that cannot pay is billing's InsufficientFundsError, which
 * the worker turns into the InsufficientFunds failure type.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Database } from '../db/client.js';
import { billing } from '../billing/ledger.js';
import { FailureType } from '../core/failures.js';
import { IllegalContainerTransitionError, type ContainerReasonCode, type ContainerStatus } from '../core/container-state.js';
import { containerWorkflowId } from '../contracts/container.js';
import * as containerRepo from '../repositories/containers.js';
import { findUser } from '../repositories/users.js';
import { appendAudit, appendAuditOnce, systemEntry, type SystemAction } from '../repositories/audit.js';
import { auditOrigin, type AuditOrigin } from './audit-db.js';

export type { ContainerStatePatch } from '../repositories/containers.js';

/** Money moved for one container: the ledger entry and the container's running total, keyed once. */
export interface ContainerMoney {
  containerId: string;
  userId: string;
  /** Minor units, positive: charged, or given back. */
  amount: number;
  /** billingKeys.containerPeriod or billingKeys.containerCreateRefund, built by the workflow. */
  idempotencyKey: string;
  reason: string;
}

/** An illegal transition as the workflow sees it: a failure that no retry can mend. */
async function legal<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof IllegalContainerTransitionError) throw ApplicationFailure.nonRetryable(error.message, FailureType.IllegalTransition);
    throw error;
  }
}

/**
 * The system's own doing among the states a container workflow records, as the audit log names
 * it; null for what its user (or an admin) asked for, which the API's request audit records:
 * - `container.suspend`: stopped because the balance could not pay a period;
 * - `container.reconcile`: Docker reported it exited (or killed for memory), started or removed
 *   outside Berth, and the record followed (an exit at creation is the creation's outcome).
 * Decided on the reason code, never on the message.
 */
export function containerAuditAction(
  from: ContainerStatus,
  to: { state: ContainerStatus; stateReasonCode?: ContainerReasonCode | null },
): 'container.suspend' | 'container.reconcile' | null {
  const code = to.stateReasonCode ?? null;
  if (to.state === 'suspended' && code === 'insufficient_funds') return 'container.suspend';
  if (to.state === 'exited' && (code === 'exited' || code === 'oom_killed') && from !== 'creating') return 'container.reconcile';
  if (to.state === 'running' && code === 'started_outside') return 'container.reconcile';
  if (to.state === 'removed' && code === 'removed_outside') return 'container.reconcile';
  return null;
}

/** The entry of a container's state change the system made. */
function containerAction(
  id: string,
  action: string,
  recorded: containerRepo.RecordedState,
  to: { state: ContainerStatus; stateReason?: string | null; stateReasonCode?: ContainerReasonCode | null; exitCode?: number | null },
  origin: AuditOrigin,
): SystemAction & { key: string | null } {
  const key = origin.execution ? `${action}:${origin.execution}` : null;
  return {
    key,
    action,
    targetType: 'container',
    targetId: id,
    subjectUserId: recorded.userId,
    // The container's workflow (its id does not change across continue-as-new).
    workflowId: origin.workflowId ?? containerWorkflowId(id),
    detail: {
      from: recorded.from,
      state: to.state,
      reason: to.stateReason ?? null,
      reasonCode: to.stateReasonCode ?? null,
      ...(to.exitCode !== undefined && to.exitCode !== null ? { exitCode: to.exitCode } : {}),
      hostId: recorded.hostId,
      image: recorded.imageReference,
      ...(key ? { key } : {}),
    },
  };
}

export function createContainerDbActivities(deps: { db: Database }) {
  const { db } = deps;

  return {
    /**
     * Records a state; a suspension or a reconciliation (containerAuditAction) is audited in the
     * same transaction, so once: a retry after the commit finds the record in that state already.
     * A suspended container suspended again (seen started outside Berth, with nothing to pay for
     * it) is a new suspension, audited once per activity by its key.
     */
    async recordContainerState(id: string, patch: containerRepo.ContainerStatePatch): Promise<void> {
      const origin = auditOrigin();
      await legal(() =>
        db.transaction(async (tx) => {
          const recorded = await containerRepo.recordState(tx, id, patch);
          const action = recorded ? containerAuditAction(recorded.from, patch) : null;
          if (!recorded || !action) return;
          const { key, ...entry } = containerAction(id, action, recorded, patch, origin);
          if (recorded.from !== patch.state) await appendAudit(tx, [systemEntry(entry)]);
          else if (action === 'container.suspend' && key) await appendAuditOnce(tx, [{ ...entry, key }], origin.since);
        }),
      );
    },

    /**
     * Charges one billing period, once per key; the container's running total follows. A record
     * that has ended is charged nothing, and the answer says so (`ended`): the nightly release
     * released it while its workflow was about to charge, or the API released it because it could
     * not confirm the workflow started, and this run is that start, landed late.
     */
    async chargeContainerPeriod(input: ContainerMoney): Promise<{ applied: boolean; balanceAfter: number; ended?: true }> {
      return db.transaction(async (tx) => {
        if (await containerRepo.hasEndedLocked(tx, input.containerId)) {
          return { applied: false, balanceAfter: (await findUser(tx, input.userId))?.balance ?? 0, ended: true as const };
        }
        const { entry, applied } = await billing.chargeContainerPeriod(tx, input);
        if (applied) await containerRepo.addCharged(tx, input.containerId, input.amount);
        return { applied, balanceAfter: entry.balanceAfter };
      });
    },

    /**
     * Whether the container's record has ended before its workflow's first step: the check a
     * container with nothing to charge makes in place of the first charge (a start the API could
     * not confirm, landed after the API released the record).
     */
    async containerRecordEnded(id: string): Promise<boolean> {
      return db.transaction((tx) => containerRepo.hasEndedLocked(tx, id));
    },

    /** Gives back a charge for a container that never ran, once per key. */
    async refundContainerCharge(input: ContainerMoney): Promise<{ applied: boolean; balanceAfter: number }> {
      return db.transaction(async (tx) => {
        const { entry, applied } = await billing.refundFailedCreate(tx, input);
        if (applied) await containerRepo.addCharged(tx, input.containerId, -input.amount);
        return { applied, balanceAfter: entry.balanceAfter };
      });
    },

    /** The container is gone: its port and name are free again. `reasonCode` is absent in calls of older runs. */
    async releaseContainer(id: string, state: 'removed' | 'failed', reason: string | null, reasonCode?: ContainerReasonCode | null): Promise<void> {
      const origin = auditOrigin();
      await legal(() =>
        db.transaction(async (tx) => {
          const released = await containerRepo.release(tx, id, state, reason, reasonCode ?? null);
          // Removed outside Berth: audited with the release, once (a retry finds it released).
          const to = { state, stateReason: reason, stateReasonCode: reasonCode ?? null };
          const action = released ? containerAuditAction(released.from, to) : null;
          if (!released || !action) return;
          const { key: _key, ...entry } = containerAction(id, action, released, to, origin);
          await appendAudit(tx, [systemEntry(entry)]);
        }),
      );
    },
  };
}

export type ContainerDbActivities = ReturnType<typeof createContainerDbActivities>;
