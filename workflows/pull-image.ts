import { ApplicationFailure, patched, proxyActivities } from '@temporalio/workflow';
import type { HostActivities } from '../activities/host-activities.js';
import type { ImageView, PullRequest } from '../services/images.js';
import type { PullSnapshot } from '../core/pull-progress.js';
import { FailureType } from '../core/failures.js';
import { asWorkflowFailure, failureType } from './failures.js';
import { controlDb, onHost } from './activity-options.js';

export type PullImageInput = PullRequest;

export interface PullImageResult {
  image: ImageView;
  /** The user owned this reference on this host already: nothing was pulled or charged. */
  deduped: boolean;
  /** A Docker pull ran (false when the image was already on the host). */
  pulled: boolean;
  /** The pull's final progress, when one ran. */
  progress: PullSnapshot | null;
}

const db = controlDb();

/** patched() id: a pull that finds no money removes only an image it pulled itself, and keeps the funds reason. */
const REMOVE_ONLY_WHAT_IT_PULLED = 'pull-remove-only-what-it-pulled';

function hostActivities(hostId: string) {
  const common = onHost(hostId);
  return {
    quick: proxyActivities<HostActivities>({ ...common, startToCloseTimeout: '1m' }),
    pull: proxyActivities<HostActivities>({ ...common, startToCloseTimeout: '30m', heartbeatTimeout: '30s' }),
  };
}

/**
 * Pull-and-bill: dedup, pull on the host (stream read to its end), inspect,
 * charge by size through the ledger and record the private image.
 */
export async function pullImage(input: PullImageInput): Promise<PullImageResult> {
  const owned = await db.findOwnedImage(input.userId, input.hostId, input.reference);
  if (owned) return { image: owned, deduped: true, pulled: false, progress: null };

  const host = hostActivities(input.hostId);
  let progress: PullSnapshot | null = null;
  try {
    let inspected = await host.quick.inspectImage(input.reference);
    if (!inspected) {
      progress = await host.pull.pullImage(input.reference, { skipIfPresent: true });
      inspected = await host.quick.inspectImage(input.reference);
      if (!inspected) throw ApplicationFailure.nonRetryable(`${input.reference} is not on ${input.hostId} after its pull`, FailureType.ImageNotFound);
    }
    try {
      const { image, deduped } = await db.chargeAndRecordImage({ ...input, image: inspected });
      return { image, deduped, pulled: progress !== null, progress };
    } catch (error) {
      if (failureType(error) !== FailureType.InsufficientFunds) throw error;
      if (!patched(REMOVE_ONLY_WHAT_IT_PULLED)) {
        if ((await db.countImageRecords(input.hostId, input.reference)) === 0) await host.quick.removeImageReference(input.reference);
        throw error;
      }
      // The host stays as it was: an image this pull brought, and that nobody's record uses,
      // leaves it; one that was there before (a DCU task's, say) stays. A removal that fails
      // (a container outside Berth uses the image) does not hide the reason: no money.
      if (progress !== null && (await db.countImageRecords(input.hostId, input.reference)) === 0) {
        await host.quick.removeImageReference(input.reference).catch(() => undefined);
      }
      throw error;
    }
  } catch (error) {
    throw asWorkflowFailure(error);
  }
}
