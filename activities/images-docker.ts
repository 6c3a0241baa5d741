/** Image activities on a host worker: pull (streamed to its end), inspect, remove. */
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import { activityLog } from './activity-log.js';
import type Docker from 'dockerode';
import type { RegistryCredential } from '../core/config.js';
import { FailureType, failureTypeOf } from '../core/failures.js';
import { parseImageReference, registryHost } from '../core/image-ref.js';
import { PullProgress, PullStreamError, type PullMessage, type PullSnapshot } from '../core/pull-progress.js';
import { dockerMessage, isConflict, isNotFound, pullFailure as classifyPullFailure } from './docker-errors.js';
import { cancellation } from './cancellation.js';
import { removeMany } from './batch-removal.js';
import type { BatchRemovals } from '../contracts/nightly-release.js';
import { HEARTBEAT_EVERY_MS } from './heartbeat.js';
import { recordDcuPhase } from '../core/metrics.js';
import { dcuWorkflow } from '../contracts/dcu.js';

export interface InspectedImage {
  /** sha256:... */
  imageId: string;
  sizeBytes: number;
  /** Exposed ports as Docker writes them: "80/tcp". */
  ports: string[];
  repoDigests: string[];
}

/** One Docker pull, shared by the activities waiting on it. */
interface SharedPull {
  result: Promise<PullSnapshot>;
  latest: PullSnapshot | null;
  listeners: Set<(snapshot: PullSnapshot) => void>;
  joined: number;
  settled: boolean;
  abort: AbortController;
}

export function createImageDockerActivities(deps: {
  docker: Docker;
  registryCredentials: Readonly<Record<string, RegistryCredential>>;
  /** A pull that hears nothing from Docker for this long is abandoned (a registry that never answers). */
  pullStallTimeoutMs: number;
}) {
  const { docker, registryCredentials, pullStallTimeoutMs } = deps;

  /** The failure in Berth's words for the user; Docker's own text for the host worker's log. */
  function pullFailure(error: unknown, reference: string): Error {
    log.warn('pull failed', { reference, dockerMessage: dockerMessage(error).slice(0, 2000) });
    return classifyPullFailure(error, reference);
  }

  /**
   * Pulls under way on this host, by reference: concurrent pull activities of one
   * reference share one Docker pull, so a duplicate is not downloaded twice.
   */
  const inFlight = new Map<string, SharedPull>();

  async function imagePresent(reference: string): Promise<boolean> {
    try {
      await docker.getImage(reference).inspect();
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  function startPull(reference: string): SharedPull {
    const ref = parseImageReference(reference);
    const credential = registryCredentials[registryHost(ref)];
    const authconfig = credential
      ? { username: credential.username, password: credential.password, serveraddress: registryHost(ref) }
      : undefined;
    const shared: SharedPull = { latest: null, listeners: new Set(), joined: 0, settled: false, abort: new AbortController(), result: undefined! };
    shared.result = (async () => {
      const progress = new PullProgress();
      const publish = (snapshot: PullSnapshot) => {
        shared.latest = snapshot;
        for (const listener of shared.listeners) listener(snapshot);
      };
      // A registry that accepts the connection and never answers would hold the daemon's pull
      // (and this activity) for its own long timeouts, attempt after attempt: silence for
      // pullStallTimeoutMs ends the pull instead, for good (retrying cannot make it answer).
      let stalled = false;
      let stallTimer: NodeJS.Timeout | undefined;
      const armStallTimer = () => {
        clearTimeout(stallTimer);
        stallTimer = setTimeout(() => {
          stalled = true;
          shared.abort.abort();
        }, pullStallTimeoutMs);
      };
      const stallFailure = () =>
        ApplicationFailure.nonRetryable(
          `pull of ${reference} failed: ${registryHost(ref)} sent nothing for ${Math.round(pullStallTimeoutMs / 1000)} s`,
          FailureType.RegistryError,
        );
      armStallTimer();
      let stream: Readable;
      try {
        stream = (await docker.createImage(authconfig as Docker.AuthConfig, {
          fromImage: ref.repository,
          tag: ref.digest ?? ref.tag ?? 'latest',
          abortSignal: shared.abort.signal,
        })) as unknown as Readable;
      } catch (error) {
        clearTimeout(stallTimer);
        if (stalled) throw stallFailure();
        throw pullFailure(error, reference);
      }
      const abort = () => stream.destroy(new Error(stalled ? 'pull stalled' : 'pull cancelled'));
      shared.abort.signal.addEventListener('abort', abort, { once: true });
      try {
        for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
          armStallTimer();
          if (!line.trim()) continue;
          let message: PullMessage;
          try {
            message = JSON.parse(line) as PullMessage;
          } catch {
            continue; // not a progress message
          }
          progress.apply(message);
          publish(progress.snapshot());
        }
      } catch (error) {
        if (stalled) throw stallFailure();
        if (error instanceof PullStreamError) throw pullFailure(error, reference);
        throw error;
      } finally {
        clearTimeout(stallTimer);
        shared.abort.signal.removeEventListener('abort', abort);
      }
      if (stalled) throw stallFailure();
      const done = progress.complete();
      publish(done);
      return done;
    })().finally(() => {
      shared.settled = true;
      inFlight.delete(reference);
    });
    shared.result.catch(() => undefined); // each joined activity handles the failure
    return shared;
  }

  /**
   * Pulls a normalized reference, reading the progress stream to its end and
   * failing on any error message inside it. Heartbeats per-layer progress. Joins a
   * pull of the same reference already under way on this host instead of starting
   * another, and (skipIfPresent) pulls nothing when the image is on the host; the Docker pull is
   * aborted when every activity waiting on it is cancelled.
   */
  async function dockerPull(reference: string, options: { skipIfPresent?: boolean } = {}): Promise<PullSnapshot> {
    const ctx = Context.current();
    const startedAt = Date.now();
    let shared = inFlight.get(reference);
    if (!shared) {
      // A concurrent pull may have landed it since the workflow looked: nothing to download.
      if (options.skipIfPresent && (await imagePresent(reference))) {
        activityLog.info('image present already: nothing pulled', { reference });
        return new PullProgress().complete();
      }
      shared = inFlight.get(reference) ?? startPull(reference);
      inFlight.set(reference, shared);
      activityLog.info('docker pull started', { reference });
    } else {
      activityLog.info('docker pull joined: one of this reference is under way', { reference });
    }
    const pull = shared;
    pull.joined++;
    const onProgress = (snapshot: PullSnapshot) => ctx.heartbeat(snapshot);
    pull.listeners.add(onProgress);
    if (pull.latest) ctx.heartbeat(pull.latest);
    // Between progress events too (a layer's extraction, a slow registry's answer): the heartbeat
    // says this worker is alive; the stall timer, not the heartbeat timeout, judges the registry.
    const beat = setInterval(() => ctx.heartbeat(pull.latest), HEARTBEAT_EVERY_MS);
    let onCancel: (() => void) | undefined;
    try {
      const pulled = await Promise.race([
        pull.result,
        new Promise<never>((_, reject) => {
          onCancel = () => reject(cancellation(ctx));
          if (ctx.cancellationSignal.aborted) onCancel();
          else ctx.cancellationSignal.addEventListener('abort', onCancel, { once: true });
        }),
      ]);
      activityLog.info('docker pull done', { reference, bytesTotal: pulled.bytesTotal, layers: Object.keys(pulled.layers).length });
      // A DCU task's download phase is this pull.
      if (ctx.info.workflowType === dcuWorkflow.type) recordDcuPhase('download', startedAt, pulled.bytesDone);
      return pulled;
    } finally {
      clearInterval(beat);
      if (onCancel) ctx.cancellationSignal.removeEventListener('abort', onCancel);
      pull.listeners.delete(onProgress);
      if (--pull.joined === 0 && !pull.settled) pull.abort.abort();
    }
  }

  async function inspectImage(reference: string): Promise<InspectedImage | null> {
    try {
      const info = await docker.getImage(reference).inspect();
      return {
        imageId: info.Id,
        sizeBytes: info.Size,
        ports: Object.keys(info.Config?.ExposedPorts ?? {}).sort(),
        repoDigests: info.RepoDigests ?? [],
      };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  /** Removes a reference (a tag) from the host; absent already counts as removed. */
  async function removeImageReference(reference: string): Promise<'removed' | 'absent'> {
    try {
      await docker.getImage(reference).remove({ noprune: false });
      return 'removed';
    } catch (error) {
      if (isNotFound(error)) return 'absent';
      if (isConflict(error)) {
        throw ApplicationFailure.nonRetryable(`image ${reference} is in use on this host: ${dockerMessage(error)}`, FailureType.ImageInUse);
      }
      throw error;
    }
  }

  return {
    /** The Docker pull (contracts/pull-image.ts PULL_ACTIVITY.current). */
    dockerPull,
    /**
     * The Docker pull under its former name (PULL_ACTIVITY.legacy): pulls started before the
     * rename schedule it, and the DCU workflow's download still does.
     */
    pullImage: dockerPull,

    /** The image as the daemon knows it, or null when it is not on this host. */
    inspectImage,

    /**
     * The image on this host, pulled only when it is missing (PULL_ACTIVITY.ensure): inspect, and
     * when absent the Docker pull (heartbeating its progress, joining one under way) and inspect
     * again, in one activity. `progress` is the pull's, null when the image was there.
     */
    async ensureImage(reference: string): Promise<{ image: InspectedImage; progress: PullSnapshot | null }> {
      const present = await inspectImage(reference);
      if (present) return { image: present, progress: null };
      const progress = await dockerPull(reference);
      const image = await inspectImage(reference);
      if (!image) throw ApplicationFailure.nonRetryable(`${reference} is not on this host after its pull`, FailureType.ImageNotFound);
      return { image, progress };
    },

    /** Removes a reference (a tag) from the host; absent already counts as removed. */
    removeImageReference,

    /** The nightly release's removals on this host: references at most `width` at a time, each outcome on its own (in use: final). */
    removeImageReferencesBatch: (references: string[], width: number): Promise<BatchRemovals> =>
      removeMany(references, width, removeImageReference, (error) => failureTypeOf(error) === FailureType.ImageInUse),
  };
}

export type ImageDockerActivities = ReturnType<typeof createImageDockerActivities>;
