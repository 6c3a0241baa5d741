/**
 * MinIO activities on a host worker: the DCU archive's multipart upload, the server-side
 * copy of an archive another task made already, the removal of a task's object (and of
 * any unfinished upload of it), and the retention sweep of the bucket. Built from a real
 * `minio` Client.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { activityLog } from './activity-log.js';
import { CopyDestinationOptions, CopySourceOptions, type BucketItem, type Client } from 'minio';
import { cancellation } from './cancellation.js';
import { HEARTBEAT_EVERY_MS } from './heartbeat.js';
import { checkArchiveName, type DcuPhaseProgress } from './dcu-host.js';
import { FailureType } from '../core/failures.js';
import { recordDcuPhase } from '../core/metrics.js';
import type { DcuReusable } from '../repositories/dcu-tasks.js';
import { archiveHeaders, bucketOperations, checkObjectName, GrowingFile, IMAGE_METADATA, isNoSuchKey, OBJECT_NAME, SHA256_METADATA, uploadParts } from './multipart-upload.js';

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

export { IMAGE_METADATA, SHA256_METADATA } from './multipart-upload.js';

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

export function createStorageActivities(deps: { minio: Client; bucket: string; partSizeBytes: number; gzipDir: string }) {
  const { minio, bucket, partSizeBytes, gzipDir } = deps;

  const { ensureBucket, abortUploads, statOrNull, recordedSha256, objectSha256 } = bucketOperations({ minio, bucket });

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
      const uploadId = await minio.initiateNewMultipartUpload(bucket, input.objectName, archiveHeaders(input, input.sha256));
      const hash = createHash('sha256');
      try {
        const { etags } = await uploadParts(
          { minio, bucket, partSizeBytes },
          {
            objectName: input.objectName,
            uploadId,
            file: GrowingFile.complete(path, bytesTotal),
            signal: ctx.cancellationSignal,
            onRead: (bytes) => hash.update(bytes),
            onPart: (bytes) => {
              bytesDone += bytes;
              ctx.heartbeat(progress());
            },
          },
        );
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
        await minio.abortMultipartUpload(bucket, input.objectName, uploadId).catch(() => undefined);
        if (ctx.cancellationSignal.aborted) throw cancellation(ctx);
        throw error;
      } finally {
        clearInterval(beat);
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
            (await recordedSha256(candidate.objectName, source)) !== candidate.sha256 ||
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
          if (existing && existing.size === candidate.compressedBytes && (await recordedSha256(input.objectName, existing)) === candidate.sha256) {
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
