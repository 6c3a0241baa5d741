/**
 * The one module that moves money. Every movement is a ledger entry applied
 * atomically with the balance, keyed by an idempotency key so that a retried
 * request or activity moves money exactly once. The database CHECK on
 * users.balance is the last word on "never below zero".
 */
import { count, desc, eq } from 'drizzle-orm';
import type { Database, Transaction } from '../db/client.js';
import { ledgerEntries, users } from '../db/schema.js';
import { AppError, notFound } from '../core/errors.js';

export type LedgerKind = (typeof ledgerEntries.$inferSelect)['kind'];
export type LedgerEntry = typeof ledgerEntries.$inferSelect;

export interface LedgerMovement {
  userId: string;
  /** Signed, in minor units: > 0 credits the user, < 0 charges them. */
  amount: number;
  kind: LedgerKind;
  reason: string;
  idempotencyKey: string;
}

export const insufficientFunds = (balance: number, amount: number) =>
  new AppError(
    409,
    'insufficient-funds',
    'Insufficient Funds',
    `The balance (${balance}) cannot pay ${-amount}.`,
  );

export interface LedgerResult {
  entry: LedgerEntry;
  /** false when the idempotency key had already been used: nothing moved. */
  applied: boolean;
}

/**
 * Applies a movement once, inside `tx`. A second call with the same idempotency key
 * returns the entry the first one made and changes nothing.
 */
async function applyIn(tx: Transaction, movement: LedgerMovement): Promise<LedgerResult> {
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
  if (balanceAfter < 0) throw insufficientFunds(user.balance, movement.amount);
  await tx.update(users).set({ balance: balanceAfter }).where(eq(users.id, movement.userId));
  const [entry] = await tx.insert(ledgerEntries).values({ ...movement, balanceAfter }).returning();
  return { entry: entry!, applied: true };
}

export function createLedger(db: Database) {
  return {
    /**
     * Applies a movement once. A second call with the same idempotency key returns
     * the entry the first one made and changes nothing.
     */
    apply(movement: LedgerMovement): Promise<LedgerResult> {
      return db.transaction((tx) => applyIn(tx, movement));
    },

    /** The same, inside the caller's transaction (to move money atomically with other rows). */
    applyIn,

    async listForUser(userId: string, { limit, offset }: { limit: number; offset: number }) {
      const where = eq(ledgerEntries.userId, userId);
      const [items, [totals]] = await Promise.all([
        db
          .select()
          .from(ledgerEntries)
          .where(where)
          .orderBy(desc(ledgerEntries.createdAt), desc(ledgerEntries.id))
          .limit(limit)
          .offset(offset),
        db.select({ total: count() }).from(ledgerEntries).where(where),
      ]);
      return { items, total: totals?.total ?? 0 };
    },
  };
}

export type Ledger = ReturnType<typeof createLedger>;

