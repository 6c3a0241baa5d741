/**
 * Container activities on the control worker: the workflow's states, its money and its release,
 * each one transaction. A state is recorded with the record locked and only when the state
 * machine allows it (core/container-state.ts): an illegal transition is the non-retryable
 * IllegalTransition failure. Money moves through billing/ledger.ts with the key the workflow
 * built (billing/keys.ts); a balance that cannot pay is billing's InsufficientFundsError, which
 * the worker turns into the InsufficientFunds failure type.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Database } from '../db/client.js';
import { billing } from '../billing/ledger.js';
import { FailureType } from '../core/failures.js';
import { IllegalContainerTransitionError, type ContainerReasonCode } from '../core/container-state.js';
import * as containerRepo from '../repositories/containers.js';

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

export function createContainerDbActivities(deps: { db: Database }) {
  const { db } = deps;

  return {
    async recordContainerState(id: string, patch: containerRepo.ContainerStatePatch): Promise<void> {
      await legal(() => db.transaction((tx) => containerRepo.recordState(tx, id, patch)));
    },

    /** Charges one billing period, once per key; the container's running total follows. */
    async chargeContainerPeriod(input: ContainerMoney): Promise<{ applied: boolean; balanceAfter: number }> {
      return db.transaction(async (tx) => {
        const { entry, applied } = await billing.chargeContainerPeriod(tx, input);
        if (applied) await containerRepo.addCharged(tx, input.containerId, input.amount);
        return { applied, balanceAfter: entry.balanceAfter };
      });
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
      await legal(() => db.transaction((tx) => containerRepo.release(tx, id, state, reason, reasonCode ?? null)));
    },
  };
}

export type ContainerDbActivities = ReturnType<typeof createContainerDbActivities>;
