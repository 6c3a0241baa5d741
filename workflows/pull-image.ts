import { ApplicationFailure, log, patched, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { ImageDbActivities } from '../activities/images-db.js';
import type { ImageDockerActivities, InspectedImage } from '../activities/images-docker.js';
import type { PullSnapshot } from '../core/pull-progress.js';
import { FailureType, failureTypeOf, asWorkflowFailure } from '../core/failures.js';
import type { PullImageInput, PullImageResult } from '../contracts/pull-image.js';
import { database, localDatabase, host as hostProfiles } from './activity-profiles.js';
import { PATCHES } from './patches.js';

export type { PullImageInput, PullImageResult } from '../contracts/pull-image.js';

const db = proxyActivities<ImageDbActivities>(database);
const localDb = proxyLocalActivities<ImageDbActivities>(localDatabase);

function hostActivities(hostId: string) {
  return {
    quick: proxyActivities<ImageDockerActivities>(hostProfiles.quick(hostId)),
    pull: proxyActivities<ImageDockerActivities>(hostProfiles.pull(hostId)),
  };
}

/**
 * Pull-and-bill: dedup, pull on the host (stream read to its end), inspect,
 * charge by size (at the price the pull started with) through the ledger and record the private image.
 */
export async function pullImage(input: PullImageInput): Promise<PullImageResult> {
  if (patched(PATCHES.pullFewerRoundTrips.id)) return pullInFewerRoundTrips(input);
  const owned = await db.findOwnedImage(input.userId, input.hostId, input.reference);
  if (owned) {
    log.info('pull deduped: the user owns the image there already', { imageId: owned.id, hostId: input.hostId, reference: input.reference });
    return { image: owned, deduped: true, pulled: false, progress: null };
  }

  const host = hostActivities(input.hostId);
  let progress: PullSnapshot | null = null;
  try {
    let inspected = await host.quick.inspectImage(input.reference);
    if (!inspected) {
      // The host activity is dockerPull; runs started before it was renamed scheduled pullImage.
      progress = patched(PATCHES.pullDockerPullActivity.id)
        ? await host.pull.dockerPull(input.reference, { skipIfPresent: true })
        : await host.pull.pullImage(input.reference, { skipIfPresent: true });
      log.info('image pulled', { hostId: input.hostId, reference: input.reference });
      inspected = await host.quick.inspectImage(input.reference);
      if (!inspected) throw ApplicationFailure.nonRetryable(`${input.reference} is not on ${input.hostId} after its pull`, FailureType.ImageNotFound);
    }
    return await chargeAndRecord(input, inspected, progress, db, host);
  } catch (error) {
    throw asWorkflowFailure(error);
  }
}

/**
 * Charges and records the image; when the balance cannot pay, leaves the host as it was and fails
 * with that reason. `steps` runs the database steps (activities, or local activities).
 */
async function chargeAndRecord(
  input: PullImageInput,
  inspected: InspectedImage,
  progress: PullSnapshot | null,
  steps: Pick<ImageDbActivities, 'chargeAndRecordImage' | 'countImageRecords'>,
  host: ReturnType<typeof hostActivities>,
): Promise<PullImageResult> {
  try {
    const { image, deduped } = await steps.chargeAndRecordImage({ ...input, image: inspected });
    log.info('image charged and recorded', { imageId: image.id, hostId: input.hostId, reference: input.reference, sizeBytes: image.sizeBytes, charged: image.charged, deduped });
    return { image, deduped, pulled: progress !== null, progress };
  } catch (error) {
    if (failureTypeOf(error) !== FailureType.InsufficientFunds) throw error;
    log.info('pull refused: the balance cannot pay', { hostId: input.hostId, reference: input.reference });
    if (!patched(PATCHES.pullRemoveOnlyWhatItPulled.id)) {
      if ((await steps.countImageRecords(input.hostId, input.reference)) === 0) await host.quick.removeImageReference(input.reference);
      throw error;
    }
    // The host stays as it was: an image this pull brought, and that nobody's record uses,
    // leaves it; one that was there before (a DCU task's, say) stays. A removal that fails
    // (a container outside Berth uses the image) does not hide the reason: no money.
    if (progress !== null && (await steps.countImageRecords(input.hostId, input.reference)) === 0) {
      await host.quick.removeImageReference(input.reference).catch(() => undefined);
    }
    throw error;
  }
}

/**
 * The same steps in fewer round trips (PATCHES.pullFewerRoundTrips): the database steps are local
 * activities, run inside the workflow task on the control worker, and the host inspects and, only
 * when the image is missing, pulls and inspects again in one activity (ensureImage). An image
 * already on the host costs one host activity between two workflow tasks.
 */
async function pullInFewerRoundTrips(input: PullImageInput): Promise<PullImageResult> {
  const owned = await localDb.findOwnedImage(input.userId, input.hostId, input.reference);
  if (owned) {
    log.info('pull deduped: the user owns the image there already', { imageId: owned.id, hostId: input.hostId, reference: input.reference });
    return { image: owned, deduped: true, pulled: false, progress: null };
  }
  const host = hostActivities(input.hostId);
  try {
    const { image: inspected, progress } = await host.pull.ensureImage(input.reference);
    if (progress) log.info('image pulled', { hostId: input.hostId, reference: input.reference });
    return await chargeAndRecord(input, inspected, progress, localDb, host);
  } catch (error) {
    throw asWorkflowFailure(error);
  }
}
