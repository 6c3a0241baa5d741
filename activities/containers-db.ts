/** Container activities on the control worker: state, billing and release, each one transaction. */
import { ApplicationFailure } from '@temporalio/activity';
import { eq, sql } from 'drizzle-orm';
import type { Database } from '../db/client.js';
import { containers } from '../db/schema.js';
import { AppError } from '../core/errors.js';
import { FailureType } from '../core/failures.js';
import type { Ledger } from '../services/ledger.js';

export type ContainerState = (typeof containers.$inferSelect)['state'];

export interface ContainerStatePatch {
  state: ContainerState;
  stateReason?: string | null;
  dockerId?: string;
  exitCode?: number | null;
  /** Epoch ms of the latest start. */
  startedAt?: number;
}

/** Money moved for one container: the ledger entry and the container's running total, keyed once. */
export interface ContainerMoney {
  containerId: string;
  userId: string;
  /** Minor units, positive: charged, or given back. */
  amount: number;
  idempotencyKey: string;
  reason: string;
}

export function createContainerDbActivities(deps: { db: Database; ledger: Ledger }) {
  const { db, ledger } = deps;

  function moveContainerMoney(input: ContainerMoney, kind: 'container_charge' | 'container_refund') {
    const signed = kind === 'container_charge' ? -input.amount : input.amount;
    return db.transaction(async (tx) => {
      const { entry, applied } = await ledger.applyIn(tx, {
        userId: input.userId,
        amount: signed,
        kind,
        reason: input.reason,
        idempotencyKey: input.idempotencyKey,
      });
      if (applied) {
        await tx
          .update(containers)
          .set({ charged: sql`${containers.charged} - ${signed}` })
          .where(eq(containers.id, input.containerId));
      }
      return { applied, balanceAfter: entry.balanceAfter };
    });
  }

  return {
    async recordContainerState(id: string, patch: ContainerStatePatch): Promise<void> {
      await db
        .update(containers)
        .set({
          state: patch.state,
          stateReason: patch.stateReason ?? null,
          ...(patch.dockerId !== undefined ? { dockerId: patch.dockerId } : {}),
          ...(patch.exitCode !== undefined ? { exitCode: patch.exitCode } : {}),
          ...(patch.startedAt !== undefined ? { startedAt: new Date(patch.startedAt) } : {}),
        })
        .where(eq(containers.id, id));
    },

    /** Charges one billing period, once per key; the container's running total follows. */
    async chargeContainerPeriod(input: ContainerMoney): Promise<{ applied: boolean; balanceAfter: number }> {
      try {
        return await moveContainerMoney(input, 'container_charge');
      } catch (error) {
        if (error instanceof AppError && error.type === 'insufficient-funds') {
          throw ApplicationFailure.nonRetryable(`insufficient balance for the next billing period: ${error.detail}`, FailureType.InsufficientFunds);
        }
        throw error;
      }
    },

    /** Gives back a charge for a container that never ran, once per key. */
    async refundContainerCharge(input: ContainerMoney): Promise<{ applied: boolean; balanceAfter: number }> {
      return moveContainerMoney(input, 'container_refund');
    },

    /** The container is gone: its port and name are free again. */
    async releaseContainer(id: string, state: 'removed' | 'failed', reason: string | null): Promise<void> {
      await db
        .update(containers)
        .set({ state, stateReason: reason, removedAt: sql`coalesce(${containers.removedAt}, now())` })
        .where(eq(containers.id, id));
    },
  };
}

export type ContainerDbActivities = ReturnType<typeof createContainerDbActivities>;
