/**
 * The control worker's heartbeat interceptor (activities/heartbeat.ts): every step heartbeats
 * while it runs and stops when it settles, so a step on a worker that died is retried within its
 * profile's heartbeatTimeout. Run in the SDK's activity test environment (no server: pure logic).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { ActivityExecuteInput } from '@temporalio/worker';
import { HEARTBEAT_EVERY_MS, HeartbeatWhileRunning } from '../../activities/heartbeat.js';
import { database, sweepDatabase } from '../../workflows/activity-profiles.js';

const input = { args: [], headers: {} } as unknown as ActivityExecuteInput;

test('a step heartbeats from its start and every second while it runs, and not once it has settled', async () => {
  const env = new MockActivityEnvironment();
  const beats: number[] = [];
  env.on('heartbeat', () => beats.push(Date.now()));
  const started = Date.now();
  const result = await env.run(() =>
    new HeartbeatWhileRunning().execute(input, async () => {
      await sleep(HEARTBEAT_EVERY_MS * 2.5);
      return 'done';
    }),
  );
  assert.equal(result, 'done');
  assert.equal(beats.length, 3, 'one at the start and one per second of the 2.5 s step');
  assert.ok(beats[0]! - started < HEARTBEAT_EVERY_MS / 2, 'the first at once');
  const settled = beats.length;
  await sleep(HEARTBEAT_EVERY_MS * 1.5);
  assert.equal(beats.length, settled, 'no heartbeat after the step settled');
});

test('a step that fails stops heartbeating and its error goes through unchanged', async () => {
  const env = new MockActivityEnvironment();
  let beats = 0;
  env.on('heartbeat', () => beats++);
  const error = new Error('the query failed');
  await assert.rejects(
    env.run(() => new HeartbeatWhileRunning().execute(input, () => Promise.reject(error))),
    (e) => e === error,
  );
  const after = beats;
  await sleep(HEARTBEAT_EVERY_MS * 1.5);
  assert.equal(beats, after);
});

test("the control worker's database profiles time out on a missing heartbeat well before their startToClose", () => {
  for (const profile of [database, sweepDatabase]) {
    assert.equal(profile.heartbeatTimeout, '10s');
    assert.ok(HEARTBEAT_EVERY_MS * 5 <= 10_000, 'several heartbeats fit in the timeout');
  }
});
