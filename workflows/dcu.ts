import { ActivityFailure, ApplicationFailure, CancellationScope, CancelledFailure, isCancellation, log, patched, proxyActivities, setHandler } from '@temporalio/workflow';
import type { ControlActivities } from '../activities/control-activities.js';
import type { HostActivities } from '../activities/host-activities.js';
import type { DcuTransitionPatch } from '../activities/dcu-db.js';
import { dcuCancelSignal, dcuStatusQuery, type DcuInput, type DcuWorkflowStatus } from '../contracts/dcu.js';
import { DCU_CANCELLED_MESSAGE, type DcuState } from '../core/dcu-state.js';
import { dcuGzipFileName, dcuObjectName } from '../core/dcu-names.js';
import { FailureType, rootCause, type RootCause } from '../core/failures.js';
import { parseImageReference } from '../core/image-ref.js';
import { database, host as hostProfiles, HOST_MAX_ATTEMPTS } from './activity-profiles.js';
import { PATCHES } from './patches.js';

const db = proxyActivities<ControlActivities>(database);

/** The steps on berth-control (the database profile's retry policy, not the host's). */
const DB_STEPS = new Set(['dcuTransition', 'dcuKeptArchive', 'dcuReusableObjects', 'dcuCheckBalance', 'dcuChargeAndComplete']);

function hostActivities(hostId: string) {
  return {
    quick: proxyActivities<HostActivities>(hostProfiles.quickBounded(hostId)),
    /** Compensation after a failure or a cancel: short, so a dead host cannot hold the task's end. */
    discard: proxyActivities<HostActivities>(hostProfiles.compensation(hostId)),
    /** The pull: its cancel ends the Docker request; the workflow need not wait for that. */
    download: proxyActivities<HostActivities>(hostProfiles.download(hostId)),
    /**
     * Compress and upload heartbeat every second and learn of a cancel within the
     * heartbeat throttle; the workflow waits until they have removed their
     * partial file or aborted their multipart upload.
     */
    phase: proxyActivities<HostActivities>(hostProfiles.phase(hostId)),
  };
}

/**
 * Download-Compress-Upload of one image for one task: pull on the task's host,
 * `docker save | gzip` into the host's archive directory, multipart upload to MinIO.
 * Each phase is its own activity (a retry redoes only that phase); every state change
 * is persisted through the dcuTransition activity, which enforces core/dcu-state.
 * The `cancel` signal stops the running phase, discards its partial artifacts and
 * ends the task in `failed` with "cancelled".
 *
 * An image whose archive is in MinIO already (a completed task of the same image id and
 * reference, any user's) is not compressed again: the object is made by a server-side copy
 * and the task goes on to `completed` with the same sha256 and sizes. Once the object is in
 * MinIO the task is charged (every started GB of tar); a balance that cannot pay fails the
 * task, removes its object, and charges nothing.
 */
export async function dcu(input: DcuInput): Promise<DcuWorkflowStatus> {
  const status: DcuWorkflowStatus = {
    taskId: input.taskId,
    hostId: input.hostId,
    reference: input.reference,
    state: 'idle',
    cancelRequested: false,
    gzipFileName: null,
    minioObjectName: null,
    sizeBytes: null,
    compressedBytes: null,
    sha256: null,
    errorMessage: null,
    reusedFrom: null,
    charged: null,
  };
  /** The object is also a completed task's of this user (the same name): a failure must not remove it. */
  let sharesObject = false;
  /** The charge failed: the archive is not kept for a later start. */
  let chargeFailed = false;
  let phaseScope: CancellationScope | null = null;
  setHandler(dcuCancelSignal, () => {
    status.cancelRequested = true;
    phaseScope?.cancel();
  });
  setHandler(dcuStatusQuery, () => status);

  const host = hostActivities(input.hostId);

  async function transition(to: DcuState, patch?: DcuTransitionPatch): Promise<void> {
    await db.dcuTransition({ taskId: input.taskId, to, patch });
    status.state = to;
    log.info('DCU task state', { taskId: input.taskId, hostId: input.hostId, state: to, ...(to === 'failed' ? { reason: status.errorMessage } : {}) });
  }

  /** Runs one phase in its own scope, which the cancel signal cancels. */
  async function phase<T>(run: () => Promise<T>): Promise<T> {
    if (status.cancelRequested) throw new CancelledFailure(DCU_CANCELLED_MESSAGE);
    const scope = new CancellationScope();
    phaseScope = scope;
    try {
      return await scope.run(run);
    } finally {
      phaseScope = null;
    }
  }

  try {
    await transition('downloading', { hostId: input.hostId, bytesDone: 0, bytesTotal: 0 });
    // The Docker pull, under the host activity's new name (the old one stays registered as an alias).
    if (patched(PATCHES.dcuDockerPullActivity.id)) await phase(() => host.download.dockerPull(input.reference));
    else await phase(() => host.download.pullImage(input.reference));
    const inspected = await phase(() => host.quick.inspectImage(input.reference));
    if (!inspected) {
      throw ApplicationFailure.nonRetryable(`${input.reference} is not on ${input.hostId} after its pull`, FailureType.ImageNotFound);
    }

    // A balance that cannot pay for this image fails the task before any compress or upload.
    if (input.pricePerGb !== undefined && input.pricePerGb > 0 && patched(PATCHES.dcuBalanceBeforeWork.id)) {
      await db.dcuCheckBalance({ userId: input.userId, imageBytes: inspected.sizeBytes, pricePerGb: input.pricePerGb });
    }

    const ref = parseImageReference(input.reference);
    const objectName = dcuObjectName(input.username, ref, inspected.imageId);
    const fileName = dcuGzipFileName(input.taskId, objectName);
    // The same image (and reference) packaged already, by anyone: copy its object instead.
    const reusable = patched(PATCHES.dcuReuseObject.id)
      ? await db.dcuReusableObjects({ taskId: input.taskId, imageId: inspected.imageId, objectName })
      : [];
    sharesObject = reusable.some((c) => c.objectName === objectName);
    // An earlier task of this user whose upload of the same object failed kept its archive on
    // this host: take it over (its sha256 checked) instead of compressing again.
    const kept =
      reusable.length === 0 && patched(PATCHES.dcuReuseKeptArchive.id)
        ? await db.dcuKeptArchive({ taskId: input.taskId, userId: input.userId, hostId: input.hostId, minioObjectName: objectName })
        : null;
    status.minioObjectName = objectName;
    status.gzipFileName = reusable.length > 0 ? null : fileName;
    await transition('compressing', {
      ...(status.gzipFileName ? { gzipFileName: fileName } : {}),
      minioObjectName: objectName,
      imageId: inspected.imageId,
      bytesDone: 0,
      bytesTotal: inspected.sizeBytes,
    });
    const copied =
      reusable.length > 0
        ? await phase(() =>
            host.phase.dcuCopyObject({ taskId: input.taskId, objectName, username: input.username, reference: input.reference, candidates: reusable }),
          )
        : null;
    let archive: { sizeBytes: number; compressedBytes: number; sha256: string };
    /** The archive went to MinIO while it was compressed (PATCHES.dcuOverlappedUpload). */
    let uploaded = false;
    if (copied) {
      archive = copied;
      status.reusedFrom = copied.sourceObjectName;
    } else {
      status.gzipFileName = fileName;
      const adopted = kept ? await phase(() => host.phase.dcuAdoptArchive({ ...kept, fileName })) : null;
      if (adopted) archive = adopted;
      else if (patched(PATCHES.dcuOverlappedUpload.id)) {
        // The upload overlaps the compression; when MinIO failed mid-way, dcuUpload below sends the kept archive.
        const packaged = await phase(() =>
          host.phase.dcuCompress({ taskId: input.taskId, reference: input.reference, fileName, upload: { objectName, username: input.username } }),
        );
        uploaded = 'uploaded' in packaged && packaged.uploaded;
        if (!uploaded) log.warn('DCU upload overlapped with compression failed: uploading the archive from disk', { taskId: input.taskId, reason: 'uploadError' in packaged ? packaged.uploadError : undefined });
        archive = packaged;
      } else archive = await phase(() => host.phase.dcuCompress({ taskId: input.taskId, reference: input.reference, fileName }));
    }
    status.sizeBytes = archive.sizeBytes;
    status.compressedBytes = archive.compressedBytes;
    status.sha256 = archive.sha256;

    await transition('uploading', {
      ...(copied ? {} : { gzipFileName: fileName }),
      sizeBytes: archive.sizeBytes,
      compressedBytes: archive.compressedBytes,
      sha256: archive.sha256,
      bytesDone: copied || uploaded ? archive.compressedBytes : 0,
      bytesTotal: archive.compressedBytes,
    });
    if (!copied && !uploaded) {
      await phase(() =>
        host.phase.dcuUpload({
          taskId: input.taskId,
          fileName,
          objectName,
          sha256: archive.sha256,
          username: input.username,
          reference: input.reference,
        }),
      );
    }
    if (status.cancelRequested) throw new CancelledFailure(DCU_CANCELLED_MESSAGE);
    const complete = { bytesDone: archive.compressedBytes, bytesTotal: archive.compressedBytes };
    // The object is in MinIO: charge it and complete, in one step (a task that failed before cost nothing).
    if (input.pricePerGb !== undefined && patched(PATCHES.dcuCharge.id)) {
      try {
        const charge = { taskId: input.taskId, userId: input.userId, reference: input.reference, pricePerGb: input.pricePerGb, complete };
        status.charged = (await db.dcuChargeAndComplete(charge)).amount;
        log.info('DCU task charged and completed', { taskId: input.taskId, hostId: input.hostId, compressedBytes: archive.compressedBytes, charged: status.charged });
      } catch (error) {
        chargeFailed = true;
        throw error;
      }
      status.state = 'completed';
    } else {
      await transition('completed', complete);
    }
    return status;
  } catch (error) {
    const cancelled = status.cancelRequested || isCancellation(error);
    const reason: RootCause = cancelled ? { message: DCU_CANCELLED_MESSAGE, type: FailureType.DcuCancelled } : rootCause(error);
    // A host step that used up its retry policy says so (the database steps have their own policy).
    if (!cancelled && error instanceof ActivityFailure && error.retryState === 'MAXIMUM_ATTEMPTS_REACHED' && !DB_STEPS.has(error.activityType)) {
      reason.message = `${status.state} failed after ${HOST_MAX_ATTEMPTS} attempts: ${reason.message}`;
    }
    status.errorMessage = reason.message;
    // A failed upload (not a cancel) keeps the archive: a new start of the image by the same user uploads it.
    // A failed charge does not keep it: the task is over, its object removed.
    const keepArchive = !cancelled && status.state === 'uploading' && !chargeFailed && patched(PATCHES.dcuKeepArchiveOnUploadFailure.id);
    // Runs even when the workflow itself was cancelled (temporal workflow cancel).
    await CancellationScope.nonCancellable(async () => {
      if (status.gzipFileName && !keepArchive) await host.discard.dcuRemoveLocalFiles(status.gzipFileName).catch(() => undefined);
      // An object that is also an earlier completed task's (same user, same image) stays.
      if (status.minioObjectName && !sharesObject) await host.discard.dcuRemoveObject(status.minioObjectName).catch(() => undefined);
      await transition('failed', { errorMessage: reason.message.slice(0, 4000) });
    });
    throw ApplicationFailure.create({ message: reason.message, type: reason.type ?? FailureType.DcuFailed, nonRetryable: true });
  }
}
