/**
 * Every patched() id, with what it guards and when it can go. A workflow that runs for months
 * replays its history on today's code: each change of the commands a workflow emits is taken
 * under `patched(PATCHES.<name>.id)`, and a history recorded before the change replays in
 * test/unit/replay.test.ts. An entry goes only when no workflow started before `since` can still
 * be running (containers live for months: check `temporal workflow list` for older runs first),
 * and then in two steps (deprecatePatch, then removal), as Temporal's versioning guide says.
 *
 * No imports: workflows use it.
 */
export interface PatchEntry {
  /** The id recorded in histories: never change it. */
  id: string;
  /** The date the change was made (workflows started before it run without it). */
  since: string;
  /** Which workflow takes it. */
  workflow: 'pullImage' | 'container' | 'dcu' | 'nightlyRelease' | 'removeImage' | 'pingHost' | 'dcuGzipCleanup' | 'dcuObjectCleanup';
  /** What the patched branch does that the old one did not. */
  guards: string;
  /** When the old branch may be removed. */
  removable: string;
}

const entry = (e: PatchEntry) => e;

/** A DCU task lives hours at most; a cleanup or release runs minutes; a pull minutes. */
const SHORT = 'once no run started before this date is open (DCU tasks, pulls and sweeps end within hours)';
/** A container workflow lives as long as its container. */
const LONG = 'once no container workflow started before this date is open (continue-as-new carries the old run on: check `temporal workflow list --query "WorkflowType=\'container\' AND ExecutionStatus=\'Running\'"`)';

export const PATCHES = {
  dcuKeepArchiveOnUploadFailure: entry({
    id: 'dcu-keep-archive-on-upload-failure',
    since: '2026-11-23',
    workflow: 'dcu',
    guards: 'a failed upload keeps its local archive for a new start of the same image by the same user',
    removable: SHORT,
  }),
  dcuReuseKeptArchive: entry({
    id: 'dcu-reuse-kept-archive',
    since: '2026-11-23',
    workflow: 'dcu',
    guards: 'a new task adopts an archive an earlier failed upload kept (dcuKeptArchive, dcuAdoptArchive) instead of compressing',
    removable: SHORT,
  }),
  pullRemoveOnlyWhatItPulled: entry({
    id: 'pull-remove-only-what-it-pulled',
    since: '2026-12-01',
    workflow: 'pullImage',
    guards: 'a pull short of money removes only an image it pulled itself, and keeps the funds reason',
    removable: SHORT,
  }),
  removeUserNetwork: entry({
    id: 'remove-user-network',
    since: '2026-12-02',
    workflow: 'container',
    guards: "a removal also removes the user's network on the host once no container of theirs is left (removeUserNetworkIfUnused)",
    removable: LONG,
  }),
  containerCreateCleanupBestEffort: entry({
    id: 'container-create-cleanup-best-effort',
    since: '2026-12-02',
    workflow: 'container',
    guards:
      "a creation that failed goes on to its refund and release (failed, with its reason code) when the host cannot remove what it may have made (an unreachable host: the release's orphan sweep removes it later), instead of failing the workflow with the record left creating",
    removable: LONG,
  }),
  releaseUserNetworks: entry({
    id: 'release-user-networks',
    since: '2026-12-02',
    workflow: 'nightlyRelease',
    guards: "the release sweeps users' networks left empty on each host (removeUnusedUserNetworks)",
    removable: SHORT,
  }),
  dcuReuseObject: entry({
    id: 'dcu-reuse-object',
    since: '2026-12-02',
    workflow: 'dcu',
    guards: 'an image already packaged (same image id and reference) is copied server-side in MinIO (dcuReusableObjects, dcuCopyObject)',
    removable: SHORT,
  }),
  dcuCharge: entry({
    id: 'dcu-charge',
    since: '2026-12-02',
    workflow: 'dcu',
    guards: 'a task is charged and completed in one step once its object is in MinIO (dcuChargeAndComplete)',
    removable: SHORT,
  }),
  dcuBalanceBeforeWork: entry({
    id: 'dcu-balance-before-work',
    since: '2026-12-02',
    workflow: 'dcu',
    guards: 'a balance that cannot pay fails the task before compress and upload (dcuCheckBalance)',
    removable: SHORT,
  }),
  pullDockerPullActivity: entry({
    id: 'pull-docker-pull-activity',
    since: '2026-12-02',
    workflow: 'pullImage',
    guards: "the Docker pull is scheduled as the host activity dockerPull, no longer under the workflow's own name pullImage (kept registered as an alias on host workers)",
    removable: `${SHORT}; the host workers' pullImage alias goes with it once the DCU workflow calls dockerPull too`,
  }),
  releaseListHostIds: entry({
    id: 'release-list-host-ids',
    since: '2026-12-02',
    workflow: 'nightlyRelease',
    guards: 'the release lists the hosts it sweeps for orphans with listHostIds, no longer with the DCU-named dcuListHosts (kept registered as an alias on berth-control)',
    removable: `${SHORT}; the control worker's dcuListHosts alias (activities/hosts-db.ts) goes with it once the DCU cleanups' patch goes too`,
  }),
  dcuDockerPullActivity: entry({
    id: 'dcu-docker-pull-activity',
    since: '2026-12-02',
    workflow: 'dcu',
    guards: 'the download schedules the host activity dockerPull, no longer pullImage (kept registered as an alias on host workers)',
    removable: `${SHORT}; the host workers' pullImage alias goes once this and pullDockerPullActivity are gone`,
  }),
  dcuGzipCleanupListHostIds: entry({
    id: 'dcu-gzip-cleanup-list-host-ids',
    since: '2026-12-02',
    workflow: 'dcuGzipCleanup',
    guards: 'the gzip cleanup lists the hosts it sweeps with listHostIds, no longer with dcuListHosts (kept registered as an alias on berth-control)',
    removable: `${SHORT}; the dcuListHosts alias goes once this, dcuObjectCleanupListHostIds and releaseListHostIds are gone`,
  }),
  dcuObjectCleanupListHostIds: entry({
    id: 'dcu-object-cleanup-list-host-ids',
    since: '2026-12-02',
    workflow: 'dcuObjectCleanup',
    guards: 'the object cleanup lists the hosts it may sweep the bucket from with listHostIds, no longer with dcuListHosts (kept registered as an alias on berth-control)',
    removable: `${SHORT}; the dcuListHosts alias goes once this, dcuGzipCleanupListHostIds and releaseListHostIds are gone`,
  }),
  dcuGzipCleanupAudit: entry({
    id: 'dcu-gzip-cleanup-audit',
    since: '2026-12-02',
    workflow: 'dcuGzipCleanup',
    guards:
      "the gzip cleanup audits the archives it removed (dcuAuditGzipCleanup: dcu.cleanupArchive, actor system): the removal happens on a host, which has no database, so the audit is a step of its own on berth-control",
    removable: SHORT,
  }),
  releaseRemovalSearchAttributes: entry({
    id: 'release-removal-search-attributes',
    since: '2026-12-07',
    workflow: 'nightlyRelease',
    guards: "the release starts each image's removeImage child with its search attributes (BerthUserId, BerthHostId, BerthResourceId: core/search-attributes.ts)",
    removable: SHORT,
  }),
  dcuOverlappedUpload: entry({
    id: 'dcu-overlapped-upload',
    since: '2026-12-07',
    workflow: 'dcu',
    guards:
      'dcuCompress is given the object (input.upload) and uploads the archive while it writes it; dcuUpload runs only when that upload failed (from the archive on disk, not compressing again)',
    removable: SHORT,
  }),
  containerLocalDatabaseSteps: entry({
    id: 'container-local-database-steps',
    since: '2026-12-07',
    workflow: 'container',
    guards:
      'the database steps (recordContainerState, chargeContainerPeriod, refundContainerCharge, releaseContainer) run as local activities on the workflow\'s worker (profile localDatabase) instead of activity tasks on berth-control: a container runs to its first answer two server round trips sooner',
    removable: LONG,
  }),
  removeImageMarksRecord: entry({
    id: 'remove-image-marks-record',
    since: '2026-12-07',
    workflow: 'removeImage',
    guards:
      'the removal marks the record as being removed before it touches the host and counts the other records in the same step (beginImageRemoval, in place of countImageRecords), and unmarks it when it fails (abandonImageRemoval): a pull answers no record being removed as owned',
    removable: SHORT,
  }),
  pullFewerRoundTrips: entry({
    id: 'pull-fewer-round-trips',
    since: '2026-12-07',
    workflow: 'pullImage',
    guards:
      "the database steps run as local activities (findOwnedImage, chargeAndRecordImage, countImageRecords: profile localDatabase), and the host's inspect, pull when missing and inspect are one host activity (ensureImage) in place of inspectImage, dockerPull, inspectImage",
    removable: SHORT,
  }),
  containerReleasedSignal: entry({
    id: 'container-released-signal',
    since: '2026-12-07',
    workflow: 'container',
    guards:
      "the `released` signal (the nightly release's batches released the record) ends the workflow after the operation in flight; a worker of older code, without the handler, left the signal unhandled and the workflow running",
    removable: LONG,
  }),
  releaseBatches: entry({
    id: 'release-batches',
    since: '2026-12-07',
    workflow: 'nightlyRelease',
    guards:
      "the release removes in batches: a batch's container records released in one transaction and their workflows told (releaseContainerRecords, the container workflow's `released` signal), then the containers removed from Docker by one activity per host (removeContainersBatch, also for orphans); images listed with what Docker keeps (listReleasableImageBatch), their references removed by one activity per host (removeImageReferencesBatch), then refunded and deleted in one transaction per host (refundAndDeleteImagesForRelease), no longer one removeContainerForRelease update and one removeImage child each",
    removable: `${SHORT}; removeContainerForRelease stays for containers still being created`,
  }),
  containerLateStart: entry({
    id: 'container-late-start',
    since: '2026-12-07',
    workflow: 'container',
    guards:
      "a run whose record has ended before its first step (the API released it: it could not confirm the start, and this run landed late) ends at once, without creating a Docker container: told by the first charge's answer (`ended`), or, with nothing to charge, by the local activity containerRecordEnded",
    removable: LONG,
  }),
} as const satisfies Record<string, PatchEntry>;

export type PatchName = keyof typeof PATCHES;
