/**
 * MinIO activities on a host worker: the DCU archive's multipart upload, the server-side
 * copy of an archive another task made already, the removal of a task's object (and of
 * any unfinished upload of it), and the retention sweep of the bucket. Built from a real
 * `minio` Client.
 */
import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { activityLog } from './activity-log.js';
import { CopyDestinationOptions, CopySourceOptions, type BucketItem, type BucketItemStat, type Client } from 'minio';
import { cancellation } from './cancellation.js';
import { HEARTBEAT_EVERY_MS } from './heartbeat.js';
import { checkArchiveName, type DcuPhaseProgress } from './dcu-host.js';
import { FailureType } from '../core/failures.js';
import { recordDcuPhase } from '../core/metrics.js';
import type { DcuReusable } from '../repositories/dcu-tasks.js';

export interface DcuUploadInput {
  taskId: string;
  fileName: string;
  objectName: string;
  /** The archive's sha256, from compression: checked while uploading, stored as metadata. */
  sha256: string;
  username: string;
  reference: string;
}

export interface DcuUploaded {
  bucket: string;
  objectName: string;
  etag: string;
  sizeBytes: number;
  parts: number;
}

/** Metadata key (x-amz-meta-sha256) holding the archive's sha256. */
export const SHA256_METADATA = 'sha256';
/** Metadata key (x-amz-meta-image) holding the reference that was saved (the tar's RepoTags). */
export const IMAGE_METADATA = 'image';

export interface DcuCopyInput {
  taskId: string;
  /** This task's object. */
  objectName: string;
  username: string;
  /** The normalized reference: a candidate must have been saved from the same one. */
  reference: string;
  /** From dcuReusableObjects, in order of preference. */
  candidates: DcuReusable[];
}

export interface DcuCopied {
  sourceObjectName: string;
  sizeBytes: number;
  compressedBytes: number;
  sha256: string;
  /** False when nothing had to be copied (the object is the candidate itself, or a retry found the copy done). */
  copied: boolean;
}

/** Parts uploading at once: MinIO hashes each part on its own, so a few at once use more than one core. */
const PARTS_IN_FLIGHT = 3;

/** Object names the DCU writes: "<user>/<file>.tar.gz", safe characters only. */
const OBJECT_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}\/[A-Za-z0-9_-][A-Za-z0-9._-]{0,250}\.tar\.gz$/;

function checkObjectName(objectName: string): void {
  if (!OBJECT_NAME.test(objectName) || objectName.includes('..')) {
    throw ApplicationFailure.nonRetryable(`invalid object name "${objectName.slice(0, 80)}"`, FailureType.InvalidObjectName);
  }
}

const isNoSuchKey = (error: unknown) => ['NoSuchKey', 'NotFound'].includes((error as { code?: string }).code ?? '');

export function createStorageActivities(deps: { minio: Client; bucket: string; partSizeBytes: number; gzipDir: string }) {
  const { minio, bucket, partSizeBytes, gzipDir } = deps;

  async function ensureBucket(): Promise<void> {
    if (await minio.bucketExists(bucket)) return;
    try {
      await minio.makeBucket(bucket);
    } catch (error) {
      // Another host made it meanwhile.
      const code = (error as { code?: string }).code;
      if (code !== 'BucketAlreadyOwnedByYou' && code !== 'BucketAlreadyExists') throw error;
    }
  }

  /** Aborts every unfinished multipart upload of `objectName`; returns how many. */
  async function abortUploads(objectName: string): Promise<number> {
    let aborted = 0;
    for (let uploadId = await minio.findUploadId(bucket, objectName); uploadId; uploadId = await minio.findUploadId(bucket, objectName)) {
      await minio.abortMultipartUpload(bucket, objectName, uploadId);
      aborted += 1;
      if (aborted > 100) break; // never loop forever on a server that keeps answering
    }
    return aborted;
  }

  async function statOrNull(objectName: string): Promise<BucketItemStat | null> {
    try {
      return await minio.statObject(bucket, objectName);
    } catch (error) {
      if (isNoSuchKey(error)) return null;
      throw error;
    }
  }

  async function objectSha256(objectName: string): Promise<string | null> {
    try {
      const info = await minio.statObject(bucket, objectName);
      return String(info.metaData?.[SHA256_METADATA] ?? '');
    } catch (error) {
      if (isNoSuchKey(error)) return null;
      throw error;
    }
  }

  return {
    /**
     * Uploads the archive as a multipart upload in parts of BERTH_DCU_PART_SIZE_MB, a few
     * parts at once, heartbeating bytes sent. The sha256 is checked against the bytes read and stored
     * as object metadata. On cancellation (or any failure) the multipart upload is
     * aborted, so no partial object stays behind. A retry that finds the object with
     * the same sha256 uploads nothing.
     */
    async dcuUpload(input: DcuUploadInput): Promise<DcuUploaded> {
      const ctx = Context.current();
      const startedAt = Date.now();
      checkArchiveName(input.fileName);
      checkObjectName(input.objectName);
      const path = join(gzipDir, input.fileName);
      const info = await stat(path).catch(() => null);
      if (!info?.isFile()) {
        throw ApplicationFailure.nonRetryable(`the archive ${input.fileName} is not on this host any more`, FailureType.ArchiveMissing);
      }
      const bytesTotal = info.size;
      await ensureBucket();
      if ((await objectSha256(input.objectName)) === input.sha256) {
        activityLog.info('archive in MinIO already: nothing uploaded', { objectName: input.objectName, sizeBytes: bytesTotal });
        return { bucket, objectName: input.objectName, etag: '', sizeBytes: bytesTotal, parts: 0 };
      }
      await abortUploads(input.objectName); // an earlier attempt's leftovers

      let bytesDone = 0;
      const progress = (): DcuPhaseProgress => ({ phase: 'uploading', bytesDone, bytesTotal });
      ctx.heartbeat(progress());
      const beat = setInterval(() => ctx.heartbeat(progress()), HEARTBEAT_EVERY_MS);
      const uploadId = await minio.initiateNewMultipartUpload(bucket, input.objectName, {
        'Content-Type': 'application/gzip',
        [`x-amz-meta-${SHA256_METADATA}`]: input.sha256,
        'x-amz-meta-task-id': input.taskId,
        'x-amz-meta-username': input.username,
        'x-amz-meta-image': input.reference,
      });
      const file = await open(path, 'r');
      const hash = createHash('sha256');
      const etags: Array<{ part: number; etag: string }> = [];
      /** Parts on the wire, in part order; the file is read (and hashed) in order. */
      const sending: Array<Promise<void>> = [];
      try {
        for (let part = 1; ; part++) {
          if (ctx.cancellationSignal.aborted) throw cancellation(ctx);
          const chunk = Buffer.allocUnsafe(partSizeBytes);
          let filled = 0;
          while (filled < partSizeBytes) {
            const { bytesRead } = await file.read(chunk, filled, partSizeBytes - filled, null);
            if (bytesRead === 0) break;
            filled += bytesRead;
          }
          if (filled === 0 && part > 1) break;
          const body = chunk.subarray(0, filled);
          hash.update(body);
          const sent = minio
            .uploadPart({ bucketName: bucket, objectName: input.objectName, uploadID: uploadId, partNumber: part, headers: {} }, body)
            .then(({ etag }) => {
              etags.push({ part, etag });
              bytesDone += filled;
              ctx.heartbeat(progress());
            });
          sent.catch(() => undefined); // awaited below, in order
          sending.push(sent);
          if (sending.length >= PARTS_IN_FLIGHT) await sending.shift();
          if (filled < partSizeBytes) break;
        }
        while (sending.length > 0) await sending.shift();
        etags.sort((a, b) => a.part - b.part);
        if (ctx.cancellationSignal.aborted) throw cancellation(ctx);
        const actual = hash.digest('hex');
        if (actual !== input.sha256) {
          throw ApplicationFailure.nonRetryable(
            `the archive ${input.fileName} changed since compression: sha256 ${actual}, expected ${input.sha256}`,
            FailureType.ChecksumMismatch,
          );
        }
        const done = await minio.completeMultipartUpload(bucket, input.objectName, uploadId, etags);
        activityLog.info('archive uploaded', { objectName: input.objectName, sizeBytes: bytesDone, parts: etags.length });
        recordDcuPhase('upload', startedAt, bytesDone);
        return { bucket, objectName: input.objectName, etag: done.etag, sizeBytes: bytesDone, parts: etags.length };
      } catch (error) {
        await Promise.allSettled(sending); // no part may land after the abort
        await minio.abortMultipartUpload(bucket, input.objectName, uploadId).catch(() => undefined);
        throw error;
      } finally {
        clearInterval(beat);
        await file.close();
      }
    },

    /**
     * Makes this task's object from the first candidate that is still in MinIO with the sha256,
     * size and image its task recorded, by a server-side copy (the bytes never leave MinIO; the
     * copy is conditional on the ETag that was checked). The metadata is this task's, with the
     * same sha256. Null when no candidate holds: the task compresses the image itself.
     */
    async dcuCopyObject(input: DcuCopyInput): Promise<DcuCopied | null> {
      const ctx = Context.current();
      checkObjectName(input.objectName);
      if (!(await minio.bucketExists(bucket))) return null;
      const beat = setInterval(() => ctx.heartbeat({ phase: 'compressing', bytesDone: 0, bytesTotal: 0 } satisfies DcuPhaseProgress), HEARTBEAT_EVERY_MS);
      try {
        for (const candidate of input.candidates) {
          if (!OBJECT_NAME.test(candidate.objectName) || candidate.objectName.includes('..')) continue;
          const source = await statOrNull(candidate.objectName);
          if (
            !source ||
            String(source.metaData?.[SHA256_METADATA] ?? '') !== candidate.sha256 ||
            String(source.metaData?.[IMAGE_METADATA] ?? '') !== input.reference ||
            source.size !== candidate.compressedBytes
          ) {
            continue;
          }
          const result = {
            sourceObjectName: candidate.objectName,
            sizeBytes: candidate.sizeBytes,
            compressedBytes: candidate.compressedBytes,
            sha256: candidate.sha256,
          };
          if (candidate.objectName === input.objectName) return { ...result, copied: false };
          // A retry after the copy finds it done.
          const existing = await statOrNull(input.objectName);
          if (existing && String(existing.metaData?.[SHA256_METADATA] ?? '') === candidate.sha256 && existing.size === candidate.compressedBytes) {
            return { ...result, copied: false };
          }
          if (ctx.cancellationSignal.aborted) throw cancellation(ctx);
          try {
            await minio.copyObject(
              new CopySourceOptions({ Bucket: bucket, Object: candidate.objectName, MatchETag: source.etag }),
              new CopyDestinationOptions({
                Bucket: bucket,
                Object: input.objectName,
                MetadataDirective: 'REPLACE',
                UserMetadata: {
                  [SHA256_METADATA]: candidate.sha256,
                  'task-id': input.taskId,
                  username: input.username,
                  // Nothing of the source: it may be another user's, and a download shows metadata.
                  [IMAGE_METADATA]: input.reference,
                },
                Headers: { 'Content-Type': 'application/gzip' },
              }),
            );
          } catch (error) {
            // Removed or replaced since the stat: try the next one.
            const code = (error as { code?: string }).code ?? '';
            if (isNoSuchKey(error) || code === 'PreconditionFailed') continue;
            throw error;
          }
          if (ctx.cancellationSignal.aborted) throw cancellation(ctx);
          return { ...result, copied: true };
        }
        return null;
      } finally {
        clearInterval(beat);
      }
    },

    /** Removes a task's object and aborts any unfinished upload of it (a cancelled or failed task). */
    async dcuRemoveObject(objectName: string): Promise<{ removed: boolean; abortedUploads: number }> {
      checkObjectName(objectName);
      if (!(await minio.bucketExists(bucket))) return { removed: false, abortedUploads: 0 };
      const abortedUploads = await abortUploads(objectName);
      const existed = (await objectSha256(objectName)) !== null;
      if (existed) await minio.removeObject(bucket, objectName);
      return { removed: existed, abortedUploads };
    },

    /**
     * The retention sweep: removes the objects named (tasks that ended before the
     * cutoff) and every object last modified before `cutoffMs`; returns what it removed.
     */
    async dcuSweepObjects(input: { cutoffMs: number; objectNames: string[] }): Promise<{ deleted: string[] }> {
      const ctx = Context.current();
      if (!(await minio.bucketExists(bucket))) return { deleted: [] };
      const old: string[] = [];
      const stream = minio.listObjectsV2(bucket, '', true);
      for await (const item of stream as AsyncIterable<BucketItem>) {
        if (item.name && item.lastModified && item.lastModified.getTime() < input.cutoffMs) old.push(item.name);
      }
      const named: string[] = [];
      for (const name of input.objectNames) {
        if (OBJECT_NAME.test(name) && (await objectSha256(name)) !== null) named.push(name);
      }
      const deleted = [...new Set([...old, ...named])];
      for (let i = 0; i < deleted.length; i += 500) {
        await minio.removeObjects(bucket, deleted.slice(i, i + 500));
        ctx.heartbeat({ deleted: Math.min(i + 500, deleted.length) });
      }
      return { deleted };
    },
  };
}

export type StorageActivities = ReturnType<typeof createStorageActivities>;
