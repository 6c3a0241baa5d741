/**
 * Workflows that were running before a change keep replaying after it: histories recorded
 * from an earlier commit's workflow code (test/fixtures/histories, made with
 * test/support/record-history.ts) replay on today's code without a determinism error.
 * A change of emitted commands without patched() fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { historyFromObject } from '../support/history.js';

Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });

const FIXTURES = fileURLToPath(new URL('../fixtures/histories/', import.meta.url));
const WORKFLOWS = fileURLToPath(new URL('../../workflows/index.ts', import.meta.url));

/** What each recorded history shows the old code did, so a fixture cannot silently be today's. */
const RECORDED_BEFORE: Record<string, { has: string[]; lacks: string[] }> = {
  'dcu-before-reuse-and-charge.json': { has: ['dcuCompress', 'dcuUpload'], lacks: ['dcuReusableObjects', 'dcuChargeAndComplete'] },
  'container-before-user-networks.json': { has: ['createAndStartContainer', 'removeContainer'], lacks: ['removeUserNetworkIfUnused'] },
};

test('histories recorded from earlier workflow code replay on today’s code', { timeout: 300_000 }, async () => {
  const files = (await readdir(FIXTURES)).filter((f) => f.endsWith('.json')).sort();
  assert.deepEqual(files, Object.keys(RECORDED_BEFORE).sort(), 'every fixture says what its code did');
  const histories = await Promise.all(
    files.map(async (file) => ({ file, history: historyFromObject(JSON.parse(await readFile(join(FIXTURES, file), 'utf8'))) })),
  );
  for (const { file, history } of histories) {
    const events = history.events ?? [];
    const activities = events.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType?.name ?? ''] : []));
    for (const name of RECORDED_BEFORE[file]!.has) assert.ok(activities.includes(name), `${file} ran ${name}`);
    for (const name of RECORDED_BEFORE[file]!.lacks) assert.ok(!activities.includes(name), `${file} predates ${name}`);
    assert.ok(events.at(-1)?.workflowExecutionCompletedEventAttributes, `${file} is a whole run`);
  }
  const results = Worker.runReplayHistories(
    { workflowsPath: WORKFLOWS, replayName: 'berth-replay' },
    histories.map(({ file, history }) => ({ workflowId: file, history })),
  );
  const failures: string[] = [];
  let replayed = 0;
  for await (const result of results) {
    replayed++;
    if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
  }
  assert.equal(replayed, files.length);
  assert.deepEqual(failures, []);
});
