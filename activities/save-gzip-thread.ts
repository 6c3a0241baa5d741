/**
 * Worker-thread body of `docker save | gzip > file` (activities/save-gzip.ts starts it, and
 * sends it its job once it is ready).
 *
 * Every byte of the image passes through here: the tar from the Docker API, the 1 MiB
 * blocks and their gzip members, the sha256. In a thread of its own that churn is
 * collected in a small heap, instead of making the host worker's main heap (the Temporal
 * worker, its clients) be marked again every few dozen megabytes.
 */
import { createHash } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parentPort } from 'node:worker_threads';
import Docker from 'dockerode';
import { createParallelGzip } from './parallel-gzip.js';
import type { SaveGzipCommand, SaveGzipJob, SaveGzipMessage } from './save-gzip.js';

const port = parentPort!;
const post = (message: SaveGzipMessage) => port.postMessage(message);
const abort = new AbortController();

// Booted ahead of need (activities/save-gzip.ts keeps one spare): say so, then wait for the one job.
const job = await new Promise<SaveGzipJob>((resolve) => {
  port.on('message', (command: SaveGzipCommand) => {
    if (command.type === 'job') resolve(command.job);
    else abort.abort();
  });
  post({ type: 'ready' });
});

function meter(onChunk: (chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      onChunk(chunk);
      callback(null, chunk);
    },
  });
}

/**
 * The archive file, written chunk by chunk; with `job.reportWritten`, each write that reached the
 * file is posted ('written'), so that the caller may upload what is on disk while the rest is made.
 */
function fileSink(file: FileHandle): Writable {
  let written = 0;
  const writeAll = async (chunk: Buffer) => {
    for (let offset = 0; offset < chunk.length; ) offset += (await file.write(chunk, offset, chunk.length - offset)).bytesWritten;
  };
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      writeAll(chunk).then(() => {
        written += chunk.length;
        if (job.reportWritten) post({ type: 'written', bytes: written });
        callback();
      }, callback);
    },
  });
}

let sizeBytes = 0;
let compressedBytes = 0;
const hash = createHash('sha256');
const progress = setInterval(() => post({ type: 'progress', sizeBytes, compressedBytes }), job.progressEveryMs);
let out: FileHandle | undefined;
try {
  const docker = new Docker(job.docker);
  const tar = (await docker.getImage(job.reference).get()) as unknown as Readable;
  out = await open(job.path, 'w', 0o640);
  await pipeline(
    tar,
    meter((chunk) => {
      sizeBytes += chunk.length;
    }),
    createParallelGzip({ level: job.level }),
    meter((chunk) => {
      compressedBytes += chunk.length;
      hash.update(chunk);
    }),
    fileSink(out),
    { signal: abort.signal },
  );
  await out.close();
  post({ type: 'done', sizeBytes, compressedBytes, sha256: hash.digest('hex') });
} catch (error) {
  await out?.close().catch(() => undefined);
  await rm(job.path, { force: true });
  const e = error as { message?: string; statusCode?: number; json?: { message?: string } };
  post({
    type: 'failed',
    aborted: abort.signal.aborted,
    message: e.json?.message ?? e.message ?? String(error),
    statusCode: typeof e.statusCode === 'number' ? e.statusCode : undefined,
  });
} finally {
  clearInterval(progress);
  port.close();
}
