/**
 * The DCU archive a failed upload kept on a host: a later task of the same user and
 * object takes it over instead of compressing the image again.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { cancellation } from './cancellation.js';
import { HEARTBEAT_EVERY_MS } from './heartbeat.js';
import { checkArchiveName, type DcuArchive, type DcuPhaseProgress } from './dcu-host.js';

export interface DcuAdoptInput {
  /** The kept archive (another task's file name). */
  keptFileName: string;
  /** This task's archive name. */
  fileName: string;
  /** The kept archive's sha256 and tar size, as its task recorded them. */
  sha256: string;
  sizeBytes: number;
}

export function createDcuArchiveActivities(deps: { gzipDir: string }) {
  const { gzipDir } = deps;
  return {
    /**
     * Renames the kept archive to this task's name if its bytes still have the recorded
     * sha256; null (compress again) when it is gone or changed. Heartbeats bytes read.
     */
    async dcuAdoptArchive(input: DcuAdoptInput): Promise<DcuArchive | null> {
      const ctx = Context.current();
      checkArchiveName(input.keptFileName);
      checkArchiveName(input.fileName);
      const target = join(gzipDir, input.fileName);
      // A retry after the rename finds the archive under this task's name already.
      let path = join(gzipDir, input.keptFileName);
      let info = await stat(path).catch(() => null);
      if (!info?.isFile()) {
        path = target;
        info = await stat(path).catch(() => null);
        if (!info?.isFile()) return null;
      }
      const size = info.size;
      const hash = createHash('sha256');
      let bytesDone = 0;
      const beat = setInterval(() => ctx.heartbeat({ phase: 'compressing', bytesDone, bytesTotal: size } satisfies DcuPhaseProgress), HEARTBEAT_EVERY_MS);
      try {
        for await (const chunk of createReadStream(path, { signal: ctx.cancellationSignal }) as AsyncIterable<Buffer>) {
          hash.update(chunk);
          bytesDone += chunk.length;
        }
      } catch (error) {
        if (ctx.cancellationSignal.aborted) throw cancellation(ctx);
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw error;
      } finally {
        clearInterval(beat);
      }
      if (hash.digest('hex') !== input.sha256) return null;
      if (path !== target) await rename(path, target);
      return { fileName: input.fileName, sizeBytes: input.sizeBytes, compressedBytes: bytesDone, sha256: input.sha256 };
    },
  };
}
