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

/** What a phase activity heartbeats: bytes of its own phase. */
export interface DcuPhaseProgress {
  phase: 'compressing' | 'uploading';
  bytesDone: number;
  bytesTotal: number;
}

export interface DcuCompressInput {
  taskId: string;
  /** The normalized reference that was pulled. */
  reference: string;
  /** The archive's file name in the archive directory (one path component). */
  fileName: string;
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

export function createDcuHostActivities(deps: { docker: Docker; hostId: string; gzipDir: string; minFreeMb?: number }) {
  const { docker, hostId, gzipDir } = deps;
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
     */
    async dcuCompress(input: DcuCompressInput): Promise<DcuArchive> {
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
      const progress = (): DcuPhaseProgress => ({ phase: 'compressing', bytesDone: sizeBytes, bytesTotal: Math.max(bytesTotal, sizeBytes) });
      ctx.heartbeat(progress());
      const beat = setInterval(() => ctx.heartbeat(progress()), HEARTBEAT_EVERY_MS);
      let archive: SaveGzipResult;
      try {
        archive = await saveGzip(
          { docker: dockerConnection(docker), reference: input.reference, path: partial, level: GZIP_LEVEL, progressEveryMs: HEARTBEAT_EVERY_MS / 2 },
          { signal: ctx.cancellationSignal, onProgress: (p) => (sizeBytes = p.sizeBytes) },
        );
        await rename(partial, target);
      } catch (error) {
        await rm(partial, { force: true });
        if (ctx.cancellationSignal.aborted) throw cancellation(ctx);
        // The task's error_message is the user's: without the host's paths (the archive directory's, say).
        throw ApplicationFailure.retryable(`docker save | gzip of ${input.reference} failed: ${publicDockerMessage(error)}`, FailureType.CompressFailed);
      } finally {
        clearInterval(beat);
      }
      sizeBytes = archive.sizeBytes;
      activityLog.info('image compressed', { reference: input.reference, fileName: input.fileName, imageBytes: bytesTotal, compressedBytes: archive.sizeBytes });
      ctx.heartbeat({ phase: 'compressing', bytesDone: sizeBytes, bytesTotal: sizeBytes } satisfies DcuPhaseProgress);
      recordDcuPhase('compress', startedAt, archive.compressedBytes);
      return { fileName: input.fileName, ...archive };
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
