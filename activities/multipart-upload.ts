/**
 * The DCU's multipart uploads to MinIO, from a file on the host's disk: a file complete
 * already (the archive a failed upload kept), or one still being written (the archive while
 * `docker save | gzip` writes it, its parts sent as they are produced). A few parts at once,
 * from a pool of part buffers: memory stays at PARTS_IN_FLIGHT parts whatever the archive's size.
 */
import { open } from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/activity';
import { FailureType } from '../core/failures.js';
import type { BucketItemStat, Client } from 'minio';

/** Parts uploading at once: MinIO hashes each part on its own, so a few at once use more than one core. */
export const PARTS_IN_FLIGHT = 3;

/** Metadata key (x-amz-meta-sha256) holding the archive's sha256. */
export const SHA256_METADATA = 'sha256';
/** Object tag holding the sha256 of an archive uploaded while it was written (tagArchiveSha256). */
export const SHA256_TAG = 'sha256';
/** Metadata key (x-amz-meta-image) holding the reference that was saved (the tar's RepoTags). */
export const IMAGE_METADATA = 'image';

export interface MultipartTarget {
  minio: Client;
  bucket: string;
  partSizeBytes: number;
}

/** What a DCU object carries besides its bytes. */
export interface ArchiveMetadata {
  taskId: string;
  username: string;
  reference: string;
}

/** Object names the DCU writes: "<user>/<file>.tar.gz", safe characters only. */
export const OBJECT_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}\/[A-Za-z0-9_-][A-Za-z0-9._-]{0,250}\.tar\.gz$/;

export function checkObjectName(objectName: string): void {
  if (!OBJECT_NAME.test(objectName) || objectName.includes('..')) {
    throw ApplicationFailure.nonRetryable(`invalid object name "${objectName.slice(0, 80)}"`, FailureType.InvalidObjectName);
  }
}

export const isNoSuchKey = (error: unknown) => ['NoSuchKey', 'NotFound'].includes((error as { code?: string }).code ?? '');

/** The x-amz-meta-* user metadata of a DCU object (without the prefix); sha256 once it is known. */
export function archiveUserMetadata(meta: ArchiveMetadata, sha256?: string): Record<string, string> {
  return { ...(sha256 ? { [SHA256_METADATA]: sha256 } : {}), 'task-id': meta.taskId, username: meta.username, [IMAGE_METADATA]: meta.reference };
}

export function bucketOperations({ minio, bucket }: Pick<MultipartTarget, 'minio' | 'bucket'>) {
  const ensureBucket = async (): Promise<void> => {
    if (await minio.bucketExists(bucket)) return;
    try {
      await minio.makeBucket(bucket);
    } catch (error) {
      // Another host made it meanwhile.
      const code = (error as { code?: string }).code;
      if (code !== 'BucketAlreadyOwnedByYou' && code !== 'BucketAlreadyExists') throw error;
    }
  };

  /** Aborts every unfinished multipart upload of `objectName`; returns how many. */
  const abortUploads = async (objectName: string): Promise<number> => {
    let aborted = 0;
    for (let uploadId = await minio.findUploadId(bucket, objectName); uploadId; uploadId = await minio.findUploadId(bucket, objectName)) {
      await minio.abortMultipartUpload(bucket, objectName, uploadId);
      aborted += 1;
      if (aborted > 100) break; // never loop forever on a server that keeps answering
    }
    return aborted;
  };

  const statOrNull = async (objectName: string): Promise<BucketItemStat | null> => {
    try {
      return await minio.statObject(bucket, objectName);
    } catch (error) {
      if (isNoSuchKey(error)) return null;
      throw error;
    }
  };

  /**
   * The sha256 an object was stored with: its x-amz-meta-sha256, or else its `sha256` tag (an
   * archive uploaded while it was written); '' when it has neither.
   */
  const recordedSha256 = async (objectName: string, info: BucketItemStat): Promise<string> => {
    const meta = String(info.metaData?.[SHA256_METADATA] ?? '');
    if (meta) return meta;
    try {
      const tags = (await minio.getObjectTagging(bucket, objectName)) as Array<{ Key: string; Value: string }>;
      return tags.find((t) => t.Key === SHA256_TAG)?.Value ?? '';
    } catch (error) {
      if (isNoSuchKey(error)) return '';
      throw error;
    }
  };

  /** The object's recorded sha256 ('' when it has none), or null when there is no such object. */
  const objectSha256 = async (objectName: string): Promise<string | null> => {
    const info = await statOrNull(objectName);
    return info ? recordedSha256(objectName, info) : null;
  };

  return { ensureBucket, abortUploads, statOrNull, recordedSha256, objectSha256 };
}

/**
 * A file's length as it grows: `grow` as bytes reach the disk, `end` once it is complete. The
 * uploader waits on it for each part.
 */
export class GrowingFile {
  private bytes = 0;
  private complete = false;
  private wake: (() => void) | null = null;

  constructor(readonly path: string) {}

  /** A file complete already, of `bytes` bytes. */
  static complete(path: string, bytes: number): GrowingFile {
    const file = new GrowingFile(path);
    file.end(bytes);
    return file;
  }

  grow(bytes: number): void {
    if (bytes <= this.bytes) return;
    this.bytes = bytes;
    this.wake?.();
  }

  end(bytes: number): void {
    this.bytes = bytes;
    this.complete = true;
    this.wake?.();
  }

  /** Resolves once `bytes` bytes are in the file or it is complete (or `signal` aborts): what is there. */
  async waitFor(bytes: number, signal: AbortSignal): Promise<{ bytes: number; complete: boolean }> {
    while (this.bytes < bytes && !this.complete && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.wake = null;
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.wake = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
    return { bytes: this.bytes, complete: this.complete };
  }
}

export interface PartUpload {
  objectName: string;
  uploadId: string;
  file: GrowingFile;
  signal: AbortSignal;
  /** Bytes of each part once MinIO has it. */
  onPart?: (bytes: number) => void;
  /** Each part's bytes as read from disk, in order (to hash them). */
  onRead?: (bytes: Buffer) => void;
}

/**
 * Sends `file` as the parts of an initiated multipart upload, in parts of `partSizeBytes` (the
 * last one shorter), PARTS_IN_FLIGHT at once, each part read from disk once the file holds it.
 * Returns the parts' ETags in order. On failure or abort it waits for the parts on the wire (no
 * part lands after the caller aborts the upload) and rethrows.
 */
export async function uploadParts(target: MultipartTarget, upload: PartUpload): Promise<{ etags: Array<{ part: number; etag: string }>; bytes: number }> {
  const { minio, bucket, partSizeBytes } = target;
  const { file, signal } = upload;
  const free: Buffer[] = [];
  const etags: Array<{ part: number; etag: string }> = [];
  /** Parts on the wire, in part order. */
  const sending: Array<Promise<void>> = [];
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  let offset = 0;
  try {
    for (let part = 1; ; part++) {
      const { bytes, complete } = await file.waitFor(offset + partSizeBytes, signal);
      signal.throwIfAborted();
      const size = Math.min(partSizeBytes, bytes - offset);
      if (size <= 0 && part > 1) break; // complete, and every byte sent
      handle ??= await open(file.path, 'r');
      const buffer = free.pop() ?? Buffer.allocUnsafe(partSizeBytes);
      for (let filled = 0; filled < size; ) {
        const { bytesRead } = await handle.read(buffer, filled, size - filled, offset + filled);
        if (bytesRead === 0) throw new Error(`the archive ${file.path} is shorter than ${offset + size} bytes`);
        filled += bytesRead;
      }
      upload.onRead?.(buffer.subarray(0, size));
      const sent = minio
        .uploadPart({ bucketName: bucket, objectName: upload.objectName, uploadID: upload.uploadId, partNumber: part, headers: {} }, buffer.subarray(0, size))
        .then(({ etag }) => {
          etags.push({ part, etag });
          upload.onPart?.(size);
        })
        .finally(() => free.push(buffer));
      sent.catch(() => undefined); // awaited below, in order
      sending.push(sent);
      offset += size;
      if (sending.length >= PARTS_IN_FLIGHT) await sending.shift();
      if (size < partSizeBytes && complete) break;
    }
    while (sending.length > 0) await sending.shift();
    signal.throwIfAborted();
    return { etags: etags.sort((a, b) => a.part - b.part), bytes: offset };
  } catch (error) {
    await Promise.allSettled(sending);
    throw error;
  } finally {
    await handle?.close();
  }
}

/**
 * Records the sha256 of an object uploaded while its archive was written, as the object tag
 * `sha256`: S3 metadata is fixed when a multipart upload starts, before the sha256 is known, and
 * replacing it is a copy, which MinIO does by rewriting every byte (1.2 s for 300 MB, measured),
 * where a tag is set in milliseconds and leaves the object (and its ETag) as it is.
 */
export async function tagArchiveSha256(target: Pick<MultipartTarget, 'minio' | 'bucket'>, objectName: string, sha256: string): Promise<void> {
  await target.minio.setObjectTagging(target.bucket, objectName, { [SHA256_TAG]: sha256 });
}

/** The headers a DCU object's multipart upload starts with (its sha256 once it is known). */
export function archiveHeaders(meta: ArchiveMetadata, sha256?: string): Record<string, string> {
  const headers: Record<string, string> = { 'Content-Type': 'application/gzip' };
  for (const [key, value] of Object.entries(archiveUserMetadata(meta, sha256))) headers[`x-amz-meta-${key}`] = value;
  return headers;
}

/** A multipart upload fed while its file is written: see startGrowingUpload. */
export interface GrowingUpload {
  /** Tell it how much of the file is on disk. */
  file: GrowingFile;
  /** The file is complete, with this sha256: send the rest, complete the upload, label the object. */
  finish(bytes: number, sha256: string): Promise<{ etag: string; parts: number }>;
  /** The file will not be complete (its writer failed or was cancelled): stop and abort the upload. */
  abandon(): Promise<void>;
}

/**
 * Starts the multipart upload of an archive still being written at `path` (earlier attempts'
 * unfinished uploads of the object aborted first): parts go to MinIO as the file grows. The
 * sha256 is known only at the end, so the object is tagged with it once complete
 * (tagArchiveSha256). Any failure aborts the upload; `signal` (the activity's cancellation)
 * stops it too.
 */
export async function startGrowingUpload(
  target: MultipartTarget,
  options: { objectName: string; meta: ArchiveMetadata; path: string; signal: AbortSignal; onPart?: (bytes: number) => void },
): Promise<GrowingUpload> {
  const { minio, bucket } = target;
  const { objectName } = options;
  checkObjectName(objectName);
  const ops = bucketOperations(target);
  await ops.ensureBucket();
  await ops.abortUploads(objectName);
  const uploadId = await minio.initiateNewMultipartUpload(bucket, objectName, archiveHeaders(options.meta));
  const abortUpload = () => minio.abortMultipartUpload(bucket, objectName, uploadId).catch(() => undefined);
  const file = new GrowingFile(options.path);
  const stop = new AbortController();
  const signal = AbortSignal.any([options.signal, stop.signal]);
  const parts = uploadParts(target, { objectName, uploadId, file, signal, onPart: options.onPart }).catch(async (error: unknown) => {
    await abortUpload();
    throw error;
  });
  parts.catch(() => undefined); // awaited by finish or abandon
  return {
    file,
    async finish(bytes, sha256) {
      file.end(bytes);
      const { etags } = await parts;
      try {
        const done = await minio.completeMultipartUpload(bucket, objectName, uploadId, etags);
        await tagArchiveSha256(target, objectName, sha256);
        return { etag: done.etag, parts: etags.length };
      } catch (error) {
        await abortUpload();
        throw error;
      }
    },
    async abandon() {
      stop.abort();
      await parts.catch(() => undefined);
    },
  };
}
