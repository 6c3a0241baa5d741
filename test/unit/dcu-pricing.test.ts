import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GB, MB } from '../../core/sizes.js';
import { diskRefusal, quotaRefusal } from '../../core/dcu-limits.js';
import { dcuCharge } from '../../billing/prices.js';

test('dcuCharge: every started GB (1024³ bytes) of tar at the price', () => {
  assert.equal(dcuCharge(0, 10), 0);
  assert.equal(dcuCharge(1, 10), 10);
  assert.equal(dcuCharge(166 * MB, 10), 10);
  assert.equal(dcuCharge(GB, 10), 10);
  assert.equal(dcuCharge(GB + 1, 10), 20);
  assert.equal(dcuCharge(5 * GB, 7), 35);
  assert.equal(dcuCharge(3 * GB, 0), 0, 'a price of 0: DCU is free');
  assert.throws(() => dcuCharge(-1, 10), RangeError);
  assert.throws(() => dcuCharge(1.5, 10), RangeError);
});

test('quotaRefusal: refused at or beyond the quota, with the usage and the quota', () => {
  assert.equal(quotaRefusal(0, 2048), null);
  assert.equal(quotaRefusal(2048 * MB - 1, 2048), null);
  const at = quotaRefusal(2048 * MB, 2048);
  assert.ok(at);
  assert.match(at, /2048 MB of your 2048 MB quota/);
  assert.match(quotaRefusal(Math.round(2.46 * MB), 1)!, /2\.5 MB of your 1 MB quota/);
  assert.ok(quotaRefusal(0, 0), 'a quota of 0 refuses every start');
});

test('diskRefusal: a host with less free than the minimum refuses, saying so (no path)', () => {
  assert.equal(diskRefusal('host-a', 2048 * MB, 1024), null);
  assert.equal(diskRefusal('host-a', 1024 * MB, 1024), null, 'exactly the minimum is enough');
  const refusal = diskRefusal('host-a', 512 * MB, 1024);
  assert.ok(refusal);
  assert.match(refusal, /^host host-a refuses new DCU work: its archive disk has 512 MB free, less than the 1024 MB/);
  assert.doesNotMatch(refusal, /\//, 'no path in a message users read');
  assert.equal(diskRefusal('host-a', 0, 0), null, 'a minimum of 0 turns the guard off');
});
