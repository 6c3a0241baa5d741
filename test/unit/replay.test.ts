/**
 * Workflows that were running before a change keep running after it: every history under
 * test/replay/ — recorded on the real stack from an earlier commit's workflow code by
 * test/support/record-history.ts, as `temporal workflow show --output json` prints it — replays
 * on today's workflows/ without a determinism error. A change of the commands a workflow emits
 * without patched() fails here, in the unit tier (no stack needed).
 *
 * BERTH_REPLAY_WORKFLOWS=<path of a workflows/index.ts> replays on other workflow code (the
 * recording commit's own, to check the fixtures; a broken copy, to see this test fail).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { historySummary, loadHistory } from '../support/history.js';
import { withWorkflowInterceptors } from '../../workers/workflow-code.js';
import { withTracing } from '../../workers/worker-tracing.js';
import { metricsRegistry } from '../../core/metrics.js';

Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });

const FIXTURES = fileURLToPath(new URL('../replay/', import.meta.url));
const WORKFLOWS = process.env.BERTH_REPLAY_WORKFLOWS
  ? resolve(process.env.BERTH_REPLAY_WORKFLOWS)
  : fileURLToPath(new URL('../../workflows/index.ts', import.meta.url));

type End = 'completed' | 'failed' | 'continuedAsNew';

/**
 * What each fixture shows its recording code did, so that none can silently be replaced by a
 * history of newer code: the workflow type, the commit, the recording worker's build id (the
 * SDK's version and a checksum of the workflow bundle, recorded in every workflow task: another
 * commit's code gives another), activities it ran and ones it did not, the patches it went
 * through, and how the run ended (a whole run, or one that continued as new).
 */
interface Recorded {
  workflowType: string;
  commit: string;
  buildId: string;
  has: string[];
  lacks: string[];
  patches: string[];
  ends: End;
}

const SDK = '@temporalio/worker@1.24.0';
/**
 * Commit 71430c0 (before issue 12's refactor), recorded by test/support/record-history.ts
 * --commit 71430c0. Its fixed extraction directory makes the bundle, so the build id, the same at
 * every recording; nightly-release.json was recorded before the directory was fixed.
 */
const AT_71430C0 = `${SDK}+9cdba2204bef02fe7858f7dc87c259fd10e3611aab7540780af35d5b736c1aef`;
const AT_71430C0_RELEASE = `${SDK}+19fe01dcd4ff488bb315ffdc27b0bb2274cc8b7c232c1d378f275f75f0135c40`;
/** The code before b86ab01 (DCU reuse and charge, containers' user networks); recorded as protobufjs objects, converted to the CLI's JSON. */
const BEFORE_B86AB01 = {
  dcu: `${SDK}+b583afb3b978e8a7283e162ab79aea2bc0c2d9fcd2c9b29ff0e12311497df38d`,
  container: `${SDK}+90f54a2a1ad311ed628b5e210394f7187cb563b1bde2dd6ae580c4fcedf1e1a4`,
};

/**
 * Commit 4af9995 (issue 17's pull in fewer round trips), recorded on a private stack of that commit
 * (namespace berth-pull) with `temporal workflow show --output json --no-json-shorthand-payloads`:
 * record-history.ts loads module paths that issue 12 moved, so it cannot record this code yet.
 */
const AT_4AF9995 = `${SDK}+920ef887f2ea69fdd5aeafb07a8836f507ff3aba8db7c602f478a6d0ffd64872`;

/** Commit c6a3b8e (the nightly release in batches), recorded from the private release stack (bench/release.ts 4 on two daemons of its own). */
const AT_C6A3B8E = `${SDK}+829ea1a9d0a7fc53902666814da0ee0cd547f040142bff1f76a3eb70c44742fa`;

const RECORDED: Record<string, Recorded> = {
  // A fresh image pulled in fewer round trips: the database steps local (markers), one host step (ensureImage: inspect, pull, inspect).
  'pull-fewer-round-trips.json': {
    workflowType: 'pullImage',
    commit: '4af9995',
    buildId: AT_4AF9995,
    has: ['ensureImage'],
    lacks: ['findOwnedImage', 'inspectImage', 'dockerPull', 'chargeAndRecordImage'],
    patches: ['pull-fewer-round-trips'],
    ends: 'completed',
  },
  // The same path for a user who cannot pay: the image it pulled leaves the host.
  'pull-fewer-round-trips-insufficient-funds.json': {
    workflowType: 'pullImage',
    commit: '4af9995',
    buildId: AT_4AF9995,
    has: ['ensureImage', 'removeImageReference'],
    lacks: ['countImageRecords', 'chargeAndRecordImage'],
    patches: ['pull-fewer-round-trips', 'pull-remove-only-what-it-pulled'],
    ends: 'failed',
  },
  // pull-fewer-round-trips.json's image removed: the record marked first (beginImageRemoval), off the host, refunded, deleted.
  'remove-image-marks-record.json': {
    workflowType: 'removeImage',
    commit: '4af9995',
    buildId: AT_4AF9995,
    has: ['beginImageRemoval', 'removeImageReference', 'refundAndDeleteImage'],
    lacks: ['countImageRecords', 'abandonImageRemoval'],
    patches: ['remove-image-marks-record'],
    ends: 'completed',
  },
  // A release in batches: records released per host and batch, Docker removals by one activity per
  // host, images refunded and deleted per host batch; no update per container, no child per image.
  'nightly-release-batches.json': {
    workflowType: 'nightlyRelease',
    commit: 'c6a3b8e',
    buildId: AT_C6A3B8E,
    has: ['releaseContainerRecords', 'removeContainersBatch', 'listReleasableImageBatch', 'removeImageReferencesBatch', 'refundAndDeleteImagesForRelease', 'recordReleaseEnd'],
    lacks: ['removeContainerForRelease', 'listReleasableImages'],
    patches: ['release-batches', 'release-list-host-ids', 'release-user-networks'],
    ends: 'completed',
  },
  // A container the release in batches released: its workflow ended on the released signal, with no activity of its own.
  'container-released.json': {
    workflowType: 'container',
    commit: 'c6a3b8e',
    buildId: AT_C6A3B8E,
    has: ['createAndStartContainer', 'recordContainerState'],
    lacks: ['removeContainer', 'releaseContainer'],
    patches: ['container-released-signal'],
    ends: 'completed',
  },
  'dcu-before-reuse-and-charge.json': {
    workflowType: 'dcu',
    commit: 'before b86ab01',
    buildId: BEFORE_B86AB01.dcu,
    has: ['dcuCompress', 'dcuUpload'],
    lacks: ['dcuReusableObjects', 'dcuChargeAndComplete'],
    patches: ['dcu-reuse-kept-archive'],
    ends: 'completed',
  },
  'container-before-user-networks.json': {
    workflowType: 'container',
    commit: 'before b86ab01',
    buildId: BEFORE_B86AB01.container,
    has: ['createAndStartContainer', 'removeContainer'],
    lacks: ['removeUserNetworkIfUnused'],
    patches: [],
    ends: 'completed',
  },
  // A nightly release of a running container (through its workflow's remove update) and its image
  // (a removeImage child on berth-control), the orphan and network sweeps of both hosts.
  'nightly-release.json': {
    workflowType: 'nightlyRelease',
    commit: '71430c0',
    buildId: AT_71430C0_RELEASE,
    has: ['recordReleaseStart', 'removeContainerForRelease', 'listBerthContainers', 'removeUnusedUserNetworks', 'listReleasableImages', 'recordReleaseEnd'],
    lacks: ['removeDockerContainer'],
    patches: ['release-user-networks'],
    ends: 'completed',
  },
  // A unique image pulled from the local registry and charged.
  'pull.json': {
    workflowType: 'pullImage',
    commit: '71430c0',
    buildId: AT_71430C0,
    has: ['findOwnedImage', 'pullImage', 'chargeAndRecordImage'],
    lacks: ['removeImageReference'],
    patches: [],
    ends: 'completed',
  },
  // A pull by a user whose balance (0) cannot pay: pulled, the charge fails InsufficientFunds, the image leaves the host.
  'pull-insufficient-funds.json': {
    workflowType: 'pullImage',
    commit: '71430c0',
    buildId: AT_71430C0,
    has: ['pullImage', 'chargeAndRecordImage', 'countImageRecords', 'removeImageReference'],
    lacks: [],
    patches: ['pull-remove-only-what-it-pulled'],
    ends: 'failed',
  },
  // The removal of pull.json's image: off the host, refunded, its record deleted.
  'remove-image.json': {
    workflowType: 'removeImage',
    commit: '71430c0',
    buildId: AT_71430C0,
    has: ['countImageRecords', 'removeImageReference', 'refundAndDeleteImage'],
    lacks: [],
    patches: [],
    ends: 'completed',
  },
  'ping-host.json': {
    workflowType: 'pingHost',
    commit: '71430c0',
    buildId: AT_71430C0,
    has: ['engineInfo'],
    lacks: [],
    patches: [],
    ends: 'completed',
  },
  // Created, stopped, started, restarted, suspended when a period found no money, started after a
  // top-up, then continued as new (a small historyLimit), carrying its state.
  'container-lifecycle-continued-as-new.json': {
    workflowType: 'container',
    commit: '71430c0',
    buildId: AT_71430C0,
    has: ['chargeContainerPeriod', 'createAndStartContainer', 'stopContainer', 'startContainer', 'restartContainer', 'inspectContainer', 'recordContainerState'],
    lacks: ['removeContainer', 'releaseContainer'],
    patches: [],
    ends: 'continuedAsNew',
  },
  // The run it continued as: a period charged, then removed (with the user's network).
  'container-lifecycle-final.json': {
    workflowType: 'container',
    commit: '71430c0',
    buildId: AT_71430C0,
    has: ['chargeContainerPeriod', 'removeContainer', 'removeUserNetworkIfUnused', 'releaseContainer'],
    lacks: ['createAndStartContainer'],
    patches: ['remove-user-network'],
    ends: 'completed',
  },
  // MinIO unreachable: the upload used up its retries, the task failed and kept its archive.
  'dcu-upload-failed.json': {
    workflowType: 'dcu',
    commit: '71430c0',
    buildId: AT_71430C0,
    has: ['dcuCheckBalance', 'dcuReusableObjects', 'dcuKeptArchive', 'dcuCompress', 'dcuUpload', 'dcuRemoveObject'],
    lacks: ['dcuRemoveLocalFiles', 'dcuChargeAndComplete'],
    patches: ['dcu-balance-before-work', 'dcu-reuse-object', 'dcu-reuse-kept-archive', 'dcu-keep-archive-on-upload-failure'],
    ends: 'failed',
  },
  // The same image started again by the same user: the kept archive adopted (no compress), uploaded, charged.
  'dcu-restarted.json': {
    workflowType: 'dcu',
    commit: '71430c0',
    buildId: AT_71430C0,
    has: ['dcuKeptArchive', 'dcuAdoptArchive', 'dcuUpload', 'dcuChargeAndComplete'],
    lacks: ['dcuCompress'],
    patches: ['dcu-balance-before-work', 'dcu-reuse-object', 'dcu-reuse-kept-archive', 'dcu-charge'],
    ends: 'completed',
  },
  'dcu-gzip-cleanup.json': {
    workflowType: 'dcuGzipCleanup',
    commit: '71430c0',
    buildId: AT_71430C0,
    has: ['dcuListHosts', 'dcuSweepGzipDir'],
    lacks: [],
    patches: [],
    ends: 'completed',
  },
  'dcu-object-cleanup.json': {
    workflowType: 'dcuObjectCleanup',
    commit: '71430c0',
    buildId: AT_71430C0,
    has: ['dcuTasksEndedBefore', 'dcuListHosts', 'dcuSweepObjects', 'dcuMarkArtifactsExpired'],
    lacks: [],
    patches: [],
    ends: 'completed',
  },
};

const files = (await readdir(FIXTURES)).filter((f) => f.endsWith('.json')).sort();
const histories = await Promise.all(files.map(async (file) => ({ file, history: loadHistory(JSON.parse(await readFile(join(FIXTURES, file), 'utf8'))) })));

test('every recorded history says what its code did, and shows it', () => {
  assert.deepEqual(files, Object.keys(RECORDED).sort(), 'each fixture in test/replay has an entry in RECORDED, and each entry a fixture');
  for (const { file, history } of histories) {
    const expected = RECORDED[file]!;
    const summary = historySummary(history);
    assert.equal(summary.workflowType, expected.workflowType, `${file}: workflow type`);
    assert.deepEqual(summary.buildIds, [expected.buildId], `${file}: recorded by the worker of ${expected.commit}`);
    for (const name of expected.has) assert.ok(summary.activities.includes(name), `${file} ran ${name}`);
    for (const name of expected.lacks) assert.ok(!summary.activities.includes(name), `${file} did not run ${name}`);
    assert.deepEqual([...summary.patches].sort(), [...expected.patches].sort(), `${file}: the patches its code went through`);
    assert.equal(summary.end, expected.ends, `${file} ${expected.ends === 'continuedAsNew' ? 'ends in continue-as-new' : `is a whole run (${expected.ends})`}`);
  }
});

/** The samples of the metrics a workflow's end records (workflows/metrics-interceptor.ts). */
const endMetrics = async () =>
  (await metricsRegistry.getMetricsAsJSON())
    .filter((m) => ['berth_pulls_total', 'berth_dcu_tasks_total', 'berth_release_runs_total'].includes(m.name))
    .map((m) => JSON.stringify(m.values));

test('histories recorded from earlier workflow code replay on today’s code', { timeout: 300_000 }, async () => {
  const before = await endMetrics();
  const results = Worker.runReplayHistories(
    // With the interceptors every worker bundles (tracing's, with its sink off; the metrics' with the
    // control worker's sinks): they must not change a command, and replay counts no workflow end.
    withTracing(withWorkflowInterceptors({ workflowsPath: WORKFLOWS, replayName: 'berth-replay' }), null),
    histories.map(({ file, history }) => ({ workflowId: file, history })),
  );
  const failures: string[] = [];
  let replayed = 0;
  for await (const result of results) {
    replayed++;
    if (result.error) failures.push(`${result.workflowId}: ${result.error.name}: ${result.error.message}`);
  }
  assert.equal(replayed, files.length);
  assert.deepEqual(failures, [], `replayed on ${WORKFLOWS}`);
  // Pulls, DCU tasks and a release ended in these histories: a replay counts none of them again.
  assert.deepEqual(await endMetrics(), before);
});
