/** Image activities on a host worker: pull (streamed to its end), inspect, remove. */
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type Docker from 'dockerode';
import type { RegistryCredential } from '../core/config.js';
import { FailureType } from '../core/failures.js';
import { parseImageReference, registryHost } from '../core/image-ref.js';
import { PullProgress, PullStreamError, type PullMessage, type PullSnapshot } from '../core/pull-progress.js';
import { dockerMessage, isConflict, isNotFound, pullFailure } from './docker-errors.js';

export interface InspectedImage {
  /** sha256:... */
  imageId: string;
  sizeBytes: number;
  /** Exposed ports as Docker writes them: "80/tcp". */
  ports: string[];
  repoDigests: string[];
}

export function createImageDockerActivities(deps: {
  docker: Docker;
  registryCredentials: Readonly<Record<string, RegistryCredential>>;
}) {
  const { docker, registryCredentials } = deps;

  return {
    /**
     * Pulls a normalized reference, reading the progress stream to its end and
     * failing on any error message inside it. Heartbeats per-layer progress.
     */
    async pullImage(reference: string): Promise<PullSnapshot> {
      const ctx = Context.current();
      const ref = parseImageReference(reference);
      const credential = registryCredentials[registryHost(ref)];
      const authconfig = credential
        ? { username: credential.username, password: credential.password, serveraddress: registryHost(ref) }
        : undefined;
      const progress = new PullProgress();
      let stream: Readable;
      try {
        stream = (await docker.createImage(authconfig as Docker.AuthConfig, {
          fromImage: ref.repository,
          tag: ref.digest ?? ref.tag ?? 'latest',
          abortSignal: ctx.cancellationSignal,
        })) as unknown as Readable;
      } catch (error) {
        throw pullFailure(error, reference);
      }
      const abort = () => stream.destroy(new Error('pull cancelled'));
      ctx.cancellationSignal.addEventListener('abort', abort, { once: true });
      try {
        for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
          if (!line.trim()) continue;
          let message: PullMessage;
          try {
            message = JSON.parse(line) as PullMessage;
          } catch {
            continue; // not a progress message
          }
          progress.apply(message);
          ctx.heartbeat(progress.snapshot());
        }
      } catch (error) {
        if (error instanceof PullStreamError) throw pullFailure(error, reference);
        throw error;
      } finally {
        ctx.cancellationSignal.removeEventListener('abort', abort);
      }
      const done = progress.complete();
      ctx.heartbeat(done);
      return done;
    },

    /** The image as the daemon knows it, or null when it is not on this host. */
    async inspectImage(reference: string): Promise<InspectedImage | null> {
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
    },

    /** Removes a reference (a tag) from the host; absent already counts as removed. */
    async removeImageReference(reference: string): Promise<'removed' | 'absent'> {
      try {
        await docker.getImage(reference).remove({ noprune: false });
        return 'removed';
      } catch (error) {
        if (isNotFound(error)) return 'absent';
        if (isConflict(error)) {
          throw ApplicationFailure.nonRetryable(
            `image ${reference} is in use on this host: ${dockerMessage(error)}`,
            FailureType.ImageInUse,
          );
        }
        throw error;
      }
    },
  };
}

export type ImageDockerActivities = ReturnType<typeof createImageDockerActivities>;
