/**
 * The one module that moves money. Every movement is a named operation (charge an image, refund
 * an image, charge a container period, refund a failed create, charge a DCU task, credit, the
 * opening balance, the nightly release's refund), applied inside the caller's transaction as a
 * ledger entry together with the balance, and keyed by billing/keys.ts so that a retried request
 * or activity moves money exactly once. The database CHECK on users.balance is the last word on
 * "never below zero"; InsufficientFundsError is the one way to say the balance cannot pay.
 */
import { eq } from 'drizzle-orm';
import type { Transaction } from '../db/client.js';
import { ledgerEntries, users } from '../db/schema.js';
import { AppError, notFound } from '../core/errors.js';
import { billingKeys } from './keys.js';
import { recordMoney } from '../core/metrics.js';

export type LedgerKind = (typeof ledgerEntries.$inferSelect)['kind'];
export type LedgerEntry = typeof ledgerEntries.$inferSelect;

/**
 * The balance cannot pay. An HTTP 409 problem (insufficient-funds) where the API raises it; in
 * an activity the worker's interceptor turns it into the InsufficientFunds failure type
 * (workers/run-worker.ts), which services/workflow-failures.ts maps back to this error.
 */
export class InsufficientFundsError extends AppError {
  constructor(detail: string) {
    super(409, 'insufficient-funds', 'Insufficient Funds', detail);
    this.name = 'InsufficientFundsError';
  }

  /** The balance cannot pay `amount` (for `what`, when given). */
  static cannotPay(balance: number, amount: number, what?: string): InsufficientFundsError {
    return new InsufficientFundsError(
      what ? `The balance (${balance}) cannot pay ${what} (${amount}).` : `The balance (${balance}) cannot pay ${amount}.`,
    );
  }
}

export interface LedgerMovement {
  userId: string;
  /** Signed, in minor units: > 0 credits the user, < 0 charges them. */
  amount: number;
  kind: LedgerKind;
  reason: string;
  idempotencyKey: string;
}

export interface LedgerResult {
  entry: LedgerEntry;
  /** false when the idempotency key had already been used: nothing moved. */
  applied: boolean;
}

/**
 * Applies a movement once, inside `tx`. A second call with the same idempotency key returns the
 * entry the first one made and changes nothing. Private: callers name the operation below.
 * An entry written is counted in the money metrics (core/metrics.ts) under `metricKind` (the
 * ledger's kind unless said); a replay is not. A transaction rolled back after the entry (a
 * later step of it failed) has been counted, and its retry counts again: rare, and the ledger,
 * not the metric, is the account.
 */
async function apply(tx: Transaction, movement: LedgerMovement, metricKind: string = movement.kind): Promise<LedgerResult> {
  if (!Number.isSafeInteger(movement.amount) || movement.amount === 0) {
    throw new Error(`ledger amount must be a non-zero integer, got ${movement.amount}`);
  }
  // The row lock serialises movements of one user, so the key check below is exact.
  const [user] = await tx.select({ balance: users.balance }).from(users).where(eq(users.id, movement.userId)).for('update');
  if (!user) throw notFound('User');
  const [existing] = await tx.select().from(ledgerEntries).where(eq(ledgerEntries.idempotencyKey, movement.idempotencyKey));
  if (existing) {
    if (existing.userId !== movement.userId || existing.amount !== movement.amount) {
      throw new AppError(409, 'idempotency-key-reused', 'Idempotency Key Reused', 'This idempotency key was already used for a different movement.');
    }
    return { entry: existing, applied: false };
  }
  const balanceAfter = user.balance + movement.amount;
  if (balanceAfter < 0) throw InsufficientFundsError.cannotPay(user.balance, -movement.amount);
  await tx.update(users).set({ balance: balanceAfter }).where(eq(users.id, movement.userId));
  const [entry] = await tx.insert(ledgerEntries).values({ ...movement, balanceAfter }).returning();
  recordMoney(metricKind, movement.amount);
  return { entry: entry!, applied: true };
}

const positive = (amount: number) => {
  if (!Number.isSafeInteger(amount) || amount <= 0) throw new Error(`an amount must be a positive integer, got ${amount}`);
  return amount;
};

/** The named movements of money. Each takes the caller's transaction, so money moves with the rows it pays for. */
export const billing = {
  /** A user's opening balance, at sign-up. */
  openingBalance: (tx: Transaction, m: { userId: string; amount: number }) =>
    apply(
      tx,
      { userId: m.userId, amount: positive(m.amount), kind: 'credit', reason: 'opening balance', idempotencyKey: billingKeys.openingBalance(m.userId) },
      'opening_balance',
    ),

  /** An admin's credit of a user; `requestKey` makes a retried request credit once. */
  credit: (tx: Transaction, m: { userId: string; adminId: string; amount: number; reason: string; requestKey: string }) =>
    apply(tx, { userId: m.userId, amount: positive(m.amount), kind: 'credit', reason: m.reason, idempotencyKey: billingKeys.credit(m.adminId, m.requestKey) }),

  /** The charge of the image a pull records. */
  chargeImage: (tx: Transaction, m: { userId: string; pullId: string; amount: number; reason: string }) =>
    apply(tx, { userId: m.userId, amount: -positive(m.amount), kind: 'image_charge', reason: m.reason, idempotencyKey: billingKeys.imageCharge(m.pullId) }),

  /** The refund of an image record on its removal (once per image, whoever removes it). */
  refundImage: (tx: Transaction, m: { userId: string; imageId: string; amount: number; reason: string }) =>
    apply(tx, { userId: m.userId, amount: positive(m.amount), kind: 'image_refund', reason: m.reason, idempotencyKey: billingKeys.imageRefund(m.imageId) }),

  /** The nightly release's refund of an image it removes: the same key as any image refund, so it is refunded once. */
  releaseRefund: (tx: Transaction, m: { userId: string; imageId: string; amount: number; reason: string }) =>
    apply(tx, { userId: m.userId, amount: positive(m.amount), kind: 'release_refund', reason: m.reason, idempotencyKey: billingKeys.imageRefund(m.imageId) }),

  /** One billing period of a running container. */
  chargeContainerPeriod: (tx: Transaction, m: { userId: string; idempotencyKey: string; amount: number; reason: string }) =>
    apply(tx, { userId: m.userId, amount: -positive(m.amount), kind: 'container_charge', reason: m.reason, idempotencyKey: m.idempotencyKey }),

  /** What a container that could not be created was charged, given back. */
  refundFailedCreate: (tx: Transaction, m: { userId: string; idempotencyKey: string; amount: number; reason: string }) =>
    apply(tx, { userId: m.userId, amount: positive(m.amount), kind: 'container_refund', reason: m.reason, idempotencyKey: m.idempotencyKey }),

  /** A DCU task's charge, once its object is in MinIO. */
  chargeDcu: (tx: Transaction, m: { userId: string; taskId: string; amount: number; reason: string }) =>
    apply(tx, { userId: m.userId, amount: -positive(m.amount), kind: 'dcu_charge', reason: m.reason, idempotencyKey: billingKeys.dcuCharge(m.taskId) }),

  /**
   * Refuses work the balance cannot pay for before it starts (the first period of a container,
   * a DCU task's archive): the charge itself is still the last word. Locks the user's row, so
   * it serialises with the user's other movements inside `tx`.
   */
  async assertCanPay(
    tx: Transaction,
    m: {
      userId: string;
      amount: number;
      what: string;
      /** The refusal's wording, where callers already read a message of their own (the DCU's, say); else cannotPay's. */
      refusal?: (balance: number, amount: number) => string;
    },
  ): Promise<number> {
    const [user] = await tx.select({ balance: users.balance }).from(users).where(eq(users.id, m.userId)).for('update');
    if (!user) throw notFound('User');
    if (user.balance < m.amount) {
      throw m.refusal ? new InsufficientFundsError(m.refusal(user.balance, m.amount)) : InsufficientFundsError.cannotPay(user.balance, m.amount, m.what);
    }
    return user.balance;
  },
} as const;

export type Billing = typeof billing;
