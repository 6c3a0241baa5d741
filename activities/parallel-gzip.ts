/**
 * gzip on every core: the input is cut into blocks, each block is compressed as an
 * independent gzip member on libuv's thread pool, and the members are written in input
 * order. Concatenated members are one valid gzip file (RFC 1952 §2.2): `gunzip`,
 * `docker load` and Node's own gunzip read them whole. One gzip stream uses one core;
 * this uses as many as there are, at the cost of a little ratio (each member starts
 * with an empty dictionary).
 *
 * A block that deflate cannot shrink (random bytes, files that are compressed already:
 * .gz, .jar, .png, ...) is stored instead (level 0): deflate at level 6 spends as much
 * CPU on such a block as on text, only to emit it a little larger than it came. A few
 * small samples of each block are tried at level 1 first; only a block all of whose
 * samples are incompressible is stored, so a block with any compressible part is
 * compressed as usual.
 */
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { promisify } from 'node:util';
import { deflateRawSync, gzip, gzipSync } from 'node:zlib';

const gzipBlock = promisify(gzip);

export interface ParallelGzipOptions {
  /** zlib level, 1–9; 6 is gzip's default. */
  level?: number;
  /** Bytes of input per gzip member. */
  blockBytes?: number;
  /** Blocks compressing at once; the default keeps every core busy plus one block ready. */
  concurrency?: number;
}

export const DEFAULT_BLOCK_BYTES = 1 << 20;

/** Samples tried per block, their size, and the ratio at or above which a sample counts as incompressible. */
const SAMPLES = 4;
const SAMPLE_BYTES = 8 * 1024;
const INCOMPRESSIBLE_RATIO = 0.97;

/**
 * True when deflate would not shrink the block: every one of a few samples, spread across
 * it, stays at 97% or more of its size at level 1. Blocks too small to sample are compressed.
 */
export function looksIncompressible(block: Buffer): boolean {
  if (block.length < SAMPLES * SAMPLE_BYTES) return false;
  const stride = Math.floor(block.length / SAMPLES);
  for (let i = 0; i < SAMPLES; i++) {
    const sample = block.subarray(i * stride, i * stride + SAMPLE_BYTES);
    if (deflateRawSync(sample, { level: 1 }).length < sample.length * INCOMPRESSIBLE_RATIO) return false;
  }
  return true;
}

export function createParallelGzip(options: ParallelGzipOptions = {}): Transform {
  const level = options.level ?? 6;
  const blockBytes = options.blockBytes ?? DEFAULT_BLOCK_BYTES;
  const concurrency = options.concurrency ?? availableParallelism() + 1;
  if (!Number.isInteger(blockBytes) || blockBytes < 1) throw new RangeError(`blockBytes must be a positive integer, got ${blockBytes}`);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);

  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let members = 0;
  /** Members being compressed, in input order. */
  const inFlight: Array<Promise<Buffer>> = [];

  function takeBlock(size: number): Buffer {
    const block = Buffer.concat(pending, pendingBytes);
    pending = size < block.length ? [block.subarray(size)] : [];
    pendingBytes = block.length - size;
    return block.subarray(0, size);
  }

  function submit(block: Buffer): void {
    // One output chunk per member: zlib's bound for the block, instead of 16 KiB pieces joined afterwards.
    const member = gzipBlock(block, { level: looksIncompressible(block) ? 0 : level, chunkSize: block.length + (block.length >> 9) + 1024 });
    member.catch(() => undefined); // awaited in order below; this only keeps a later failure from being "unhandled" meanwhile
    inFlight.push(member);
    members++;
  }

  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      pending.push(chunk);
      pendingBytes += chunk.length;
      void (async () => {
        while (pendingBytes >= blockBytes) {
          submit(takeBlock(blockBytes));
          while (inFlight.length >= concurrency) this.push(await inFlight.shift()!);
        }
      })().then(() => callback(), callback);
    },
    flush(callback: TransformCallback) {
      void (async () => {
        if (pendingBytes > 0) submit(takeBlock(pendingBytes));
        while (inFlight.length > 0) this.push(await inFlight.shift()!);
        // No input at all is still a valid, empty gzip file.
        if (members === 0) this.push(gzipSync(Buffer.alloc(0), { level }));
      })().then(() => callback(), callback);
    },
  });
}
