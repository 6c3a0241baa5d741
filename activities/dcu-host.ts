/**
 * DCU activities on a host worker that touch the host's Docker engine and its disk:
 * `docker save` streamed through gzip into the archive directory, removal of a task's
 * local files, and the retention sweep of that directory.
 */
import { mkdir, readdir, rename, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { activityLog } from './activity-log.js';
import type Docker from 'dockerode';
import { DCU_GZIP_FILE } from '../core/dcu-names.js';
import { diskRefusal } from '../core/dcu-limits.js';
import { FailureType } from '../core/failures.js';
import { cancellation } from './cancellation.js';
import { HEARTBEAT_EVERY_MS } from './heartbeat.js';
import { dockerMessage, isNotFound, publicDockerMessage } from './docker-errors.js';
import { dockerConnection, saveGzip, type SaveGzipResult } from './save-gzip.js';
import { recordDcuPhase } from '../core/metrics.js';
import { startGrowingUpload, type GrowingUpload, type MultipartTarget } from './multipart-upload.js';

/** A MinIO failure, for the task's record: its code and message, never a stack. */
function publicStorageMessage(error: unknown): string {
  const e = error as { code?: string; message?: string };
  return `${e.code ? `${e.code}: ` : ''}${e.message ?? String(error)}`.slice(0, 500);
}

/** What a phase activity heartbeats: bytes of its own phase. */
export interface DcuPhaseProgress {
  phase: 'compressing' | 'uploading';
  bytesDone: number;
  bytesTotal: number;
  /** While compressing with the upload overlapped: archive bytes in MinIO so far. */
  uploadedBytes?: number;
}

export interface DcuCompressInput {
  taskId: string;
  /** The normalized reference that was pulled. */
  reference: string;
  /** The archive's file name in the archive directory (one path component). */
  fileName: string;
  /**
   * Upload the archive to MinIO as it is written (multipart, a few parts at once): the object's
   * name and owner. Without it, the archive is only written to disk (dcuUpload sends it).
   */
  upload?: { objectName: string; username: string };
}

export interface DcuArchive {
  fileName: string;
  /** Bytes of the `docker save` tar stream. */
  sizeBytes: number;
  /** Bytes of the .tar.gz. */
  compressedBytes: number;
  /** Hex sha256 of the .tar.gz. */
  sha256: string;
}

/** What dcuCompress gives with `upload`: the archive, and whether it is in MinIO already. */
export interface DcuPackaged extends DcuArchive {
  /** The object is in MinIO with the archive's sha256: nothing left to upload. */
  uploaded: boolean;
  /** Why it is not (MinIO failed mid-way): dcuUpload sends the archive from disk, not compressing again. */
  uploadError?: string;
}

export interface GzipSweepResult {
  hostId: string;
  deleted: string[];
  kept: number;
}

const PARTIAL = /\.partial$/;
/** gzip's default level: the archive is as small as `gzip -6` would make it, give or take the member boundaries. */
const GZIP_LEVEL = 6;

/** Throws a non-retryable failure unless `fileName` is one safe archive name: no path traversal. */
export function checkArchiveName(fileName: string): void {
  if (!DCU_GZIP_FILE.test(fileName) || fileName.includes('..')) {
    throw ApplicationFailure.nonRetryable(`invalid archive name "${fileName.slice(0, 80)}"`, FailureType.InvalidArchiveName);
  }
}

/** Bytes an unprivileged writer may still use on the filesystem holding `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const info = await statfs(dir);
  return Number(info.bavail) * Number(info.bsize);
}

export function createDcuHostActivities(deps: { docker: Docker; hostId: string; gzipDir: string; minFreeMb?: number; storage?: MultipartTarget }) {
  const { docker, hostId, gzipDir, storage } = deps;
  const minFreeMb = deps.minFreeMb ?? 0;

  /** Partial files of one archive, from any attempt. */
  async function partialsOf(fileName: string): Promise<string[]> {
    const names = await readdir(gzipDir).catch(() => [] as string[]);
    return names.filter((name) => name.startsWith(`${fileName}.`) && PARTIAL.test(name));
  }

  return {
    /**
     * `docker save` of the reference, streamed through a gzip on every core into `<gzipDir>/<fileName>`:
     * no intermediate .tar on disk; tar size, compressed size and sha256 computed on the
     * way; written under a temporary name and renamed at the end, so a partial file is
     * never taken for an archive. Heartbeats bytes read; honours cancellation. A host whose
     * archive disk has less free than BERTH_DCU_MIN_FREE_MB refuses (non-retryable DcuDiskFull).
     *
     * With `input.upload`, the archive also goes to MinIO while it is written: a multipart
     * upload fed from the file as it grows (startGrowingUpload), so that the upload ends
     * moments after the compression. When MinIO fails mid-way, the upload is aborted and the
     * compression goes on: the archive is kept on disk and the answer says `uploaded: false`,
     * for dcuUpload to send it without compressing again. A cancel stops both: no partial
     * file, no open multipart upload.
     */
    async dcuCompress(input: DcuCompressInput): Promise<DcuArchive | DcuPackaged> {
      const ctx = Context.current();
      const startedAt = Date.now();
      checkArchiveName(input.fileName);
      await mkdir(gzipDir, { recursive: true, mode: 0o750 });
      const refusal = diskRefusal(hostId, await freeBytes(gzipDir), minFreeMb);
      if (refusal) throw ApplicationFailure.nonRetryable(refusal, FailureType.DcuDiskFull);
      for (const stale of await partialsOf(input.fileName)) await rm(join(gzipDir, stale), { force: true });

      const image = docker.getImage(input.reference);
      let bytesTotal = 0;
      try {
        bytesTotal = (await image.inspect()).Size ?? 0;
      } catch (error) {
        if (isNotFound(error)) {
          throw ApplicationFailure.nonRetryable(`${input.reference} is not on ${hostId}: ${dockerMessage(error)}`, FailureType.ImageNotFound);
        }
        throw error;
      }

      const target = join(gzipDir, input.fileName);
      const partial = `${target}.${ctx.info.attempt}.partial`;
      let sizeBytes = 0;
      let uploadedBytes = 0;
      const progress = (): DcuPhaseProgress => ({
        phase: 'compressing',
        bytesDone: sizeBytes,
        bytesTotal: Math.max(bytesTotal, sizeBytes),
        ...(input.upload ? { uploadedBytes } : {}),
      });
      ctx.heartbeat(progress());
      const beat = setInterval(() => ctx.heartbeat(progress()), HEARTBEAT_EVERY_MS);
      let upload: GrowingUpload | null = null;
      let uploadError: string | undefined;
      if (input.upload) {
        if (!storage) throw ApplicationFailure.nonRetryable('this host worker has no MinIO to upload to', FailureType.DcuFailed);
        try {
          upload = await startGrowingUpload(storage, {
            objectName: input.upload.objectName,
            meta: { taskId: input.taskId, username: input.upload.username, reference: input.reference },
            path: partial,
            signal: ctx.cancellationSignal,
            onPart: (bytes) => (uploadedBytes += bytes),
          });
        } catch (error) {
          if (error instanceof ApplicationFailure && error.nonRetryable) throw error; // an invalid object name
          uploadError = publicStorageMessage(error); // MinIO is down: compress all the same, upload afterwards
        }
      }
      let archive: SaveGzipResult;
      try {
        archive = await saveGzip(
          { docker: dockerConnection(docker), reference: input.reference, path: partial, level: GZIP_LEVEL, progressEveryMs: HEARTBEAT_EVERY_MS / 2, reportWritten: upload !== null },
          { signal: ctx.cancellationSignal, onProgress: (p) => (sizeBytes = p.sizeBytes), onWritten: (bytes) => upload?.file.grow(bytes) },
        );
      } catch (error) {
        await upload?.abandon();
        await rm(partial, { force: true });
        clearInterval(beat);
        if (ctx.cancellationSignal.aborted) throw cancellation(ctx);
        // The task's error_message is the user's: without the host's paths (the archive directory's, say).
        throw ApplicationFailure.retryable(`docker save | gzip of ${input.reference} failed: ${publicDockerMessage(error)}`, FailureType.CompressFailed);
      }
      let uploaded = false;
      try {
        if (upload) {
          try {
            await upload.finish(archive.compressedBytes, archive.sha256);
            uploaded = true;
          } catch (error) {
            if (ctx.cancellationSignal.aborted) throw cancellation(ctx);
            uploadError = publicStorageMessage(error);
          }
        }
        // After the upload: it reads the file under its partial name.
        await rename(partial, target);
      } catch (error) {
        await rm(partial, { force: true });
        throw error;
      } finally {
        clearInterval(beat);
      }
      sizeBytes = archive.sizeBytes;
      activityLog.info('image compressed', {
        reference: input.reference,
        fileName: input.fileName,
        imageBytes: bytesTotal,
        compressedBytes: archive.compressedBytes,
        ...(input.upload ? { uploaded, uploadError } : {}),
      });
      ctx.heartbeat({ phase: 'compressing', bytesDone: sizeBytes, bytesTotal: sizeBytes, ...(input.upload ? { uploadedBytes } : {}) } satisfies DcuPhaseProgress);
      recordDcuPhase('compress', startedAt, archive.compressedBytes);
      if (uploaded) recordDcuPhase('upload', startedAt, archive.compressedBytes);
      const result: DcuArchive = { fileName: input.fileName, ...archive };
      return input.upload ? ({ ...result, uploaded, ...(uploadError ? { uploadError } : {}) } satisfies DcuPackaged) : result;
    },

    /** Removes a task's archive and any partial file of it; absent files count as removed. */
    async dcuRemoveLocalFiles(fileName: string): Promise<string[]> {
      checkArchiveName(fileName);
      const names = [...(await partialsOf(fileName)), fileName];
      const removed: string[] = [];
      for (const name of names) {
        const path = join(gzipDir, name);
        const exists = await stat(path).then(
          () => true,
          () => false,
        );
        await rm(path, { force: true });
        if (exists) removed.push(name);
      }
      return removed;
    },

    /**
     * Deletes archives (and leftover partial files) last modified before `cutoffMs`
     * in this host's archive directory. Touches nothing but *.tar.gz and *.partial.
     */
    async dcuSweepGzipDir(cutoffMs: number): Promise<GzipSweepResult> {
      const ctx = Context.current();
      const names = await readdir(gzipDir).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return [] as string[];
        throw error;
      });
      const deleted: string[] = [];
      let kept = 0;
      for (const name of names) {
        if (!(name.endsWith('.tar.gz') || PARTIAL.test(name))) continue;
        const path = join(gzipDir, name);
        const info = await stat(path).catch(() => null);
        if (!info?.isFile()) continue;
        if (info.mtimeMs < cutoffMs) {
          await rm(path, { force: true });
          deleted.push(name);
        } else {
          kept += 1;
        }
        ctx.heartbeat({ deleted: deleted.length, kept });
      }
      return { hostId, deleted, kept };
    },
  };
}

export type DcuHostActivities = ReturnType<typeof createDcuHostActivities>;
