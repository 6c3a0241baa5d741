/**
 * Failures: one walk of a cause chain (rootCause), and every failure type a member of FailureType,
 * spelled nowhere else in shipped code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, RetryState, TimeoutFailure, TimeoutType } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import { FailureType, asWorkflowFailure, failureTypeOf, rootCause } from '../../core/failures.js';

const activityFailure = (cause: Error) => new ActivityFailure('Activity task failed', 'chargeImage', '7', RetryState.NON_RETRYABLE_FAILURE, 'worker', cause);

test('rootCause: an activity’s own failure is the reason, with its type', () => {
  const funds = ApplicationFailure.create({ message: 'insufficient balance', type: FailureType.InsufficientFunds, nonRetryable: true });
  assert.deepEqual(rootCause(activityFailure(funds)), { message: 'insufficient balance', type: 'InsufficientFunds' });
  // Through a workflow's failure as the client sees it, and through a child workflow.
  const failed = new WorkflowFailedError('Workflow execution failed', activityFailure(funds), RetryState.NON_RETRYABLE_FAILURE);
  assert.deepEqual(rootCause(failed), { message: 'insufficient balance', type: 'InsufficientFunds' });
  const child = new ChildWorkflowFailure('default', { workflowId: 'w', runId: 'r' }, 'removeImage', RetryState.NON_RETRYABLE_FAILURE, funds);
  assert.equal(failureTypeOf(child), 'InsufficientFunds');
});

test('rootCause: without an ApplicationFailure, the innermost message', () => {
  const timeout = new TimeoutFailure('activity ScheduleToStart timeout', undefined, TimeoutType.SCHEDULE_TO_START);
  assert.deepEqual(rootCause(activityFailure(timeout)), { message: 'activity ScheduleToStart timeout' });
  const driver = new Error('Failed query: select 1', { cause: new Error('connect ECONNREFUSED 127.0.0.1:5432') });
  assert.deepEqual(rootCause(driver), { message: 'connect ECONNREFUSED 127.0.0.1:5432' });
  assert.deepEqual(rootCause('plain'), { message: 'plain' });
});

test('asWorkflowFailure: an activity’s failure becomes the workflow’s own, same type and message, non-retryable', () => {
  const cause = ApplicationFailure.retryable('gone', FailureType.ImageNotFound);
  const raised = asWorkflowFailure(activityFailure(cause));
  assert.ok(raised instanceof ApplicationFailure);
  assert.equal(raised.type, 'ImageNotFound');
  assert.equal(raised.message, 'gone');
  assert.equal(raised.nonRetryable, true);
  const other = new Error('x');
  assert.equal(asWorkflowFailure(other), other);
});

test('no shipped module spells a failure type: each is a FailureType member', async () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const members = new Set(Object.values(FailureType));
  const offenders: string[] = [];
  for (const dir of ['activities', 'api', 'billing', 'contracts', 'core', 'repositories', 'services', 'workers', 'workflows']) {
    for (const file of await readdir(join(root, dir), { recursive: true })) {
      if (!file.endsWith('.ts') || `${dir}/${file}` === 'core/failures.ts') continue;
      const text = await readFile(join(root, dir, file), 'utf8');
      // A failure's type given as a literal: ApplicationFailure.x(message, 'Type') or { type: 'Type' }.
      const literal = /ApplicationFailure\.(?:create|nonRetryable|retryable)\([^;]*?,\s*'([A-Za-z]+)'|\btype:\s*'([A-Z][A-Za-z]+)'|nonRetryableErrorTypes:\s*\[[^\]]*'/g;
      for (const m of text.matchAll(literal)) offenders.push(`${dir}/${file}: ${m[0].slice(0, 80)}`);
      // A comparison with a member's value spelled out.
      for (const member of members) if (new RegExp(`===\\s*'${member}'|'${member}'\\s*===`).test(text)) offenders.push(`${dir}/${file}: '${member}'`);
    }
  }
  assert.deepEqual(offenders, []);
});
