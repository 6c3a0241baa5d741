/**
 * A host's removals in one activity (the nightly release's batches): many Docker removals, at most
 * `width` at a time, heartbeating how many are done, each item's outcome reported on its own. An
 * item whose removal fails is retried in place a few times unless the failure is final (in use),
 * then reported with its reason; the activity itself fails only when it cannot run at all, so a
 * retry (removal is idempotent: absent counts as removed) redoes at most what Docker had not done.
 */
import { pool } from '../core/pool.js';
import { heartbeating } from './heartbeat.js';
import type { BatchRemovals } from '../contracts/nightly-release.js';

/** Attempts per item, one second apart, for failures that may pass (the daemon busy, a timeout). */
const ATTEMPTS = 3;
const RETRY_AFTER_MS = 1000;

/** Runs `removeOne` on every ref (bounded), collecting what was done and what failed with why. */
export async function removeMany(
  refs: readonly string[],
  width: number,
  removeOne: (ref: string) => Promise<unknown>,
  isFinal: (error: unknown) => boolean,
): Promise<BatchRemovals> {
  const done: string[] = [];
  const failed: BatchRemovals['failed'] = [];
  await heartbeating(
    () =>
      pool(refs, width, async (ref) => {
        for (let attempt = 1; ; attempt++) {
          try {
            await removeOne(ref);
            done.push(ref);
            return;
          } catch (error) {
            if (attempt >= ATTEMPTS || isFinal(error)) {
              failed.push({ ref, reason: error instanceof Error ? error.message : String(error) });
              return;
            }
            await new Promise((resolve) => setTimeout(resolve, RETRY_AFTER_MS));
          }
        }
      }),
    () => ({ done: done.length, failed: failed.length, of: refs.length }),
  );
  return { done, failed };
}
