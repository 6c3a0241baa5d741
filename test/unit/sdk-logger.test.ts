/**
 * The Temporal SDK's logger over the process's pino (workers/sdk-logger.ts): one JSON line per
 * call at pino's level, errors serialized, the activity task token dropped, secrets redacted as
 * on any other line (core/redact.ts), and Core's lines forwarded at the process's level.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogTimestamp } from '@temporalio/worker';
import { createLogger } from '../../core/logger.js';
import { coreLogForwarding, sdkLogger } from '../../workers/sdk-logger.js';

function capture(level: 'info' | 'warn' | 'debug' = 'info') {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger('test', { level }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

test("an activity's line becomes one pino JSON line with its attributes, its error serialized, without its task token", () => {
  const { logger, lines } = capture();
  sdkLogger(logger).warn('Activity failed', {
    sdkComponent: 'worker',
    workflowId: 'pull-1',
    workflowRunId: 'run-1',
    activityType: 'dockerPull',
    attempt: 2,
    reqId: 'req-1',
    taskToken: 'CiQwMWEy...',
    error: new Error('registry down'),
    [LogTimestamp]: 123n,
  });
  assert.equal(lines.length, 1);
  const line = lines[0]!;
  assert.equal(line.msg, 'Activity failed');
  assert.equal(line.level, 40);
  assert.equal(line.name, 'test');
  for (const [key, value] of Object.entries({ sdkComponent: 'worker', workflowId: 'pull-1', workflowRunId: 'run-1', activityType: 'dockerPull', attempt: 2, reqId: 'req-1' })) {
    assert.equal(line[key], value, key);
  }
  assert.equal(line.taskToken, undefined);
  assert.equal(line.error, undefined);
  const err = line.err as { type: string; message: string; stack: string };
  assert.equal(err.type, 'Error');
  assert.equal(err.message, 'registry down');
  assert.match(err.stack, /registry down/);
});

test("lines below pino's level are not written; every SDK level maps to pino's", () => {
  const { logger, lines } = capture('info');
  const sdk = sdkLogger(logger);
  sdk.trace('t');
  sdk.debug('d');
  sdk.info('i');
  sdk.log('WARN', 'w');
  sdk.error('e');
  assert.deepEqual(
    lines.map((l) => [l.msg, l.level]),
    [
      ['i', 30],
      ['w', 40],
      ['e', 50],
    ],
  );
  const verbose = capture('debug');
  sdkLogger(verbose.logger).debug('d', { workflowId: 'w' });
  assert.deepEqual(verbose.lines.map((l) => [l.msg, l.level, l.workflowId]), [['d', 20, 'w']]);
});

test('secrets in an SDK line are redacted like in any other line', () => {
  const { logger, lines } = capture();
  sdkLogger(logger).info('Workflow started', { authorization: 'Bearer abc.def', note: 'key berth_0123456789abcdefghij', url: 'http://x/?ticket=s3cret' });
  const text = JSON.stringify(lines);
  for (const secret of ['abc.def', 'berth_0123456789abcdefghij', 's3cret']) assert.ok(!text.includes(secret), secret);
  assert.equal(lines[0]!.authorization, '[redacted]');
});

test("Core's lines are forwarded at the process's level", () => {
  assert.deepEqual(coreLogForwarding({ level: 'info' }), { filter: 'WARN,temporalio_sdk_core=INFO,temporalio_client=INFO,temporalio_common=INFO', forward: {} });
  assert.match(coreLogForwarding({ level: 'debug' }).filter as string, /temporalio_sdk_core=DEBUG/);
  assert.match(coreLogForwarding({ level: 'silent' }).filter as string, /temporalio_sdk_core=ERROR/);
});
