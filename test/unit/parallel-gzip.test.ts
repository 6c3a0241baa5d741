import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { createParallelGzip, looksIncompressible, type ParallelGzipOptions } from '../../activities/parallel-gzip.js';

async function compress(input: Buffer, options: ParallelGzipOptions, chunkBytes = 7_777): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (let at = 0; at < input.length; at += chunkBytes) chunks.push(input.subarray(at, at + chunkBytes));
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    createParallelGzip(options),
    new Writable({ write(chunk: Buffer, _e, cb) { out.push(chunk); cb(); } }),
  );
  return Buffer.concat(out);
}

/** Text-like input that compresses, with incompressible stretches, of `bytes` bytes. */
function sample(bytes: number): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const part = i % 5 === 4 ? randomBytes(3000) : Buffer.from(`line ${i}: the quick brown fox jumps over the lazy dog\n`.repeat(40));
    parts.push(part);
    size += part.length;
  }
  return Buffer.concat(parts).subarray(0, bytes);
}

test('parallel gzip: independent members in input order, read back whole', async () => {
  const input = sample(700_000);
  const gz = await compress(input, { blockBytes: 64 * 1024, concurrency: 3 });
  assert.deepEqual(gunzipSync(gz), input);
  assert.ok(gz.length < input.length, 'it compresses');
  // The system gunzip (as `docker load` and users will) reads the concatenation too.
  assert.deepEqual(execFileSync('gzip', ['-dc'], { input: gz, maxBuffer: 10 * input.length }), input);
});

test('parallel gzip: block edges, one member, empty input, bad options', async () => {
  for (const size of [1, 1023, 1024, 1025, 4096]) {
    const input = sample(size);
    assert.deepEqual(gunzipSync(await compress(input, { blockBytes: 1024, concurrency: 2 }, 100)), input, `size ${size}`);
  }
  const one = sample(5000);
  const single = await compress(one, { blockBytes: 1 << 20 });
  assert.deepEqual(gunzipSync(single), one);
  assert.equal(single[0], 0x1f);
  assert.equal(single[1], 0x8b);
  const empty = await compress(Buffer.alloc(0), {});
  assert.equal(gunzipSync(empty).length, 0, 'empty input is an empty gzip file, not zero bytes');
  assert.ok(empty.length > 0);
  assert.throws(() => createParallelGzip({ blockBytes: 0 }), /blockBytes/);
  assert.throws(() => createParallelGzip({ concurrency: 0 }), /concurrency/);
});

test('parallel gzip: a failing upstream fails the pipeline', async () => {
  const failing = new Readable({
    read() {
      this.push(sample(10_000));
      this.destroy(new Error('daemon went away'));
    },
  });
  await assert.rejects(
    pipeline(failing, createParallelGzip({ blockBytes: 1024 }), new Writable({ write(_c, _e, cb) { cb(); } })),
    /daemon went away/,
  );
});

test('incompressible blocks are stored, compressible ones compressed, and both read back whole', async () => {
  const random = randomBytes(1 << 20);
  const text = Buffer.from('line: the quick brown fox jumps over the lazy dog\n'.repeat(25_000)).subarray(0, 1 << 20);
  assert.equal(looksIncompressible(random), true);
  assert.equal(looksIncompressible(text), false);
  // Text where one sample falls: the block is compressed.
  const mixed = Buffer.from(random);
  text.copy(mixed, (1 << 20) / 2, 0, 16 * 1024);
  assert.equal(looksIncompressible(mixed), false);
  assert.equal(looksIncompressible(randomBytes(16 * 1024)), false, 'too small to sample: compressed');

  const input = Buffer.concat([random, text, random]);
  const gz = await compress(input, { blockBytes: 1 << 20, concurrency: 2 }, 64 * 1024);
  assert.deepEqual(gunzipSync(gz), input);
  assert.deepEqual(execFileSync('gzip', ['-dc'], { input: gz, maxBuffer: 2 * input.length }), input);
  // A stored 1 MiB member is 173 bytes over its input; deflate at level 6 makes it 343 over.
  const textAlone = (await compress(text, { blockBytes: 1 << 20 })).length;
  assert.ok(textAlone < text.length / 10, `text compresses: ${textAlone}`);
  assert.ok(gz.length <= textAlone + 2 * (random.length + 250), `random blocks stored: ${gz.length}`);
});
