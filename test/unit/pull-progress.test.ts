import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PullProgress, PullStreamError } from '../../core/pull-progress.js';
import { sizeMb } from '../../core/sizes.js';
import { imageCharge } from '../../billing/prices.js';

test('pull progress: per-layer bytes and an overall percent', () => {
  const p = new PullProgress();
  p.apply({ status: 'Pulling from library/busybox', id: '1.35' });
  p.apply({ status: 'Pulling fs layer', id: 'aaaaaaaaaaaa', progressDetail: {} });
  p.apply({ status: 'Pulling fs layer', id: 'bbbbbbbbbbbb', progressDetail: {} });
  p.apply({ status: 'Downloading', id: 'aaaaaaaaaaaa', progressDetail: { current: 50, total: 100 } });
  let s = p.snapshot();
  assert.equal(s.bytesDone, 50);
  assert.equal(s.bytesTotal, 100);
  assert.equal(s.percent, 22); // (0.45 + 0) / 2
  assert.deepEqual(s.layers.aaaaaaaaaaaa, { status: 'Downloading', current: 50, total: 100 });
  assert.equal(s.layers['1.35'], undefined, 'summary lines are not layers');
  p.apply({ status: 'Already exists', id: 'bbbbbbbbbbbb' });
  p.apply({ status: 'Download complete', id: 'aaaaaaaaaaaa' });
  s = p.snapshot();
  assert.equal(s.bytesDone, 100);
  assert.equal(s.percent, 95);
  p.apply({ status: 'Pull complete', id: 'aaaaaaaaaaaa' });
  p.apply({ status: 'Digest: sha256:abc' });
  p.apply({ status: 'Status: Downloaded newer image for busybox:1.35' });
  assert.equal(p.snapshot().percent, 100);
  assert.equal(p.complete().percent, 100);
});

test('pull progress: an error inside the stream is a failure, not a success', () => {
  const p = new PullProgress();
  p.apply({ status: 'Pulling fs layer', id: 'aaaaaaaaaaaa' });
  assert.throws(
    () => p.apply({ errorDetail: { message: 'manifest for x:nope not found: manifest unknown' }, error: 'manifest for x:nope not found' }),
    (error: unknown) => error instanceof PullStreamError && /manifest unknown/.test(error.message),
  );
  assert.throws(() => new PullProgress().apply({ error: 'unauthorized: authentication required' }), /unauthorized/);
});

test('sizes and prices: MB to one decimal, every started MB charged', () => {
  const MB = 1024 * 1024;
  assert.equal(sizeMb(1_996_800), 1.9);
  assert.equal(sizeMb(MB), 1);
  assert.equal(sizeMb(0), 0);
  assert.equal(imageCharge(1, 5), 5);
  assert.equal(imageCharge(MB, 5), 5);
  assert.equal(imageCharge(MB + 1, 5), 10);
  assert.equal(imageCharge(146 * MB, 1), 146);
  assert.equal(imageCharge(0, 7), 0);
  assert.ok(Number.isInteger(imageCharge(123_456_789, 3)));
});
