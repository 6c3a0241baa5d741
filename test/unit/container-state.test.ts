import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  nextChargeAfter,
  CONTAINER_REASON_CODES,
  CONTAINER_STATES,
  ENDED_STATES,
  IllegalContainerTransitionError,
  allowedNext,
  assertTransition,
  canTransition,
  creationFailureCode,
  isContainerReasonCode,
  isContainerStatus,
  isEnded,
  nextChargeDue,
  type ContainerStatus,
} from '../../core/container-state.js';
import { containers } from '../../db/schema.js';
import { ActivityFailure, ApplicationFailure, RetryState, TimeoutFailure, TimeoutType } from '@temporalio/common';
import { FailureType, rootCause } from '../../core/failures.js';

/**
 * The changes of state workflows/container.ts makes, each with where (so that a change of the
 * table is checked against the workflow, and no running workflow is refused).
 */
const LEGAL: Array<[ContainerStatus, ContainerStatus, string]> = [
  ['creating', 'running', 'create: created and started'],
  ['creating', 'exited', 'create: exited at start'],
  ['creating', 'failed', 'create: first period unpaid, Docker refused, host unreachable; the API releasing a record whose workflow did not start'],
  ['running', 'stopped', 'stop'],
  ['running', 'suspended', 'billing loop: a period unpaid'],
  ['running', 'exited', 'reconcile: Docker says it ended (exit code, OOM)'],
  ['running', 'removed', 'remove; stop/restart/reconcile finding it gone'],
  ['stopped', 'running', 'start; reconcile: started outside Berth'],
  ['stopped', 'removed', 'remove; start/reconcile finding it gone'],
  ['suspended', 'running', 'start after a top-up; reconcile: started outside Berth'],
  ['suspended', 'removed', 'remove; start/reconcile finding it gone'],
  ['exited', 'running', 'start; reconcile: started outside Berth'],
  ['exited', 'stopped', 'stop of an exited container'],
  ['exited', 'suspended', 'reconcile: started outside Berth, the period unpaid'],
  ['exited', 'removed', 'remove; start/stop/reconcile finding it gone'],
  ['failed', 'removed', 'a remove update accepted as the creation failed'],
];

test('over every pair of states: the workflow’s transitions and repeats are legal, nothing else', () => {
  let legalCount = 0;
  for (const from of CONTAINER_STATES) {
    for (const to of CONTAINER_STATES) {
      const legal = from === to || LEGAL.some(([f, t]) => f === from && t === to);
      if (legal) legalCount++;
      assert.equal(canTransition(from, to), legal, `${from} → ${to}`);
      if (legal) assert.doesNotThrow(() => assertTransition(from, to), `${from} → ${to}`);
      else assert.throws(() => assertTransition(from, to), IllegalContainerTransitionError, `${from} → ${to}`);
    }
  }
  assert.equal(legalCount, LEGAL.length + CONTAINER_STATES.length);
  for (const from of CONTAINER_STATES) {
    assert.deepEqual([...allowedNext(from)].sort(), LEGAL.filter(([f]) => f === from).map(([, t]) => t).sort(), from);
  }
});

test('the ended states are left for nothing but a removal of a failed one; nothing goes back to creating', () => {
  assert.deepEqual(allowedNext('removed'), []);
  assert.deepEqual(allowedNext('failed'), ['removed']);
  for (const from of CONTAINER_STATES) if (from !== 'creating') assert.equal(canTransition(from, 'creating'), false, `${from} → creating`);
  for (const to of CONTAINER_STATES) if (to !== 'removed') assert.equal(canTransition('removed', to), false, `removed → ${to}`);
  assert.equal(canTransition('stopped', 'suspended'), false, 'a stopped container is not suspended');
  assert.equal(canTransition('creating', 'removed'), false);
  assert.deepEqual([...ENDED_STATES].sort(), ['failed', 'removed']);
  assert.ok(isEnded('removed') && isEnded('failed'));
  for (const s of CONTAINER_STATES) if (s !== 'removed' && s !== 'failed') assert.equal(isEnded(s), false, s);
  assert.match(new IllegalContainerTransitionError('removed', 'running').message, /removed → running/);
});

test('unknown states are never legal; "removing" is gone', () => {
  assert.equal(isContainerStatus('removing'), false);
  assert.equal(isContainerStatus('running'), true);
  assert.equal(canTransition('removing' as ContainerStatus, 'removed'), false);
  assert.equal(canTransition('running', 'removing' as ContainerStatus), false);
  assert.equal(canTransition('removing' as ContainerStatus, 'removing' as ContainerStatus), false);
});

test('the schema stores exactly these states and reason codes', () => {
  assert.deepEqual(containers.state.enumValues, [...CONTAINER_STATES]);
  assert.deepEqual(containers.stateReasonCode.enumValues, [...CONTAINER_REASON_CODES]);
  assert.ok(isContainerReasonCode('insufficient_funds') && isContainerReasonCode('host_unreachable'));
  assert.equal(isContainerReasonCode('insufficient balance'), false);
  assert.equal(new Set(CONTAINER_REASON_CODES).size, CONTAINER_REASON_CODES.length);
});

test('the next period is due one period after the last one charged in the run', () => {
  const start = Date.UTC(2026, 11, 2, 12);
  const hour = 3_600_000;
  assert.equal(nextChargeDue({ segmentStartedAt: start, periodsCharged: 0 }, hour), start, 'the first period at once');
  assert.equal(nextChargeDue({ segmentStartedAt: start, periodsCharged: 1 }, hour), start + hour);
  assert.equal(nextChargeDue({ segmentStartedAt: start, periodsCharged: 3 }, 2000), start + 6000);
});

test('a failed creation is host_unreachable when the host never took the work (a timeout), docker_error when Docker failed it', () => {
  const activity = (cause: Error) => new ActivityFailure('Activity task failed', 'createAndStartContainer', '3', RetryState.NON_RETRYABLE_FAILURE, 'worker', cause);
  const timedOut = rootCause(activity(new TimeoutFailure('activity ScheduleToStart timeout', undefined, TimeoutType.SCHEDULE_TO_START)));
  assert.equal(creationFailureCode(timedOut), 'host_unreachable');
  assert.equal(timedOut.message, 'activity ScheduleToStart timeout');
  const stuck = rootCause(activity(new TimeoutFailure('activity StartToClose timeout', undefined, TimeoutType.START_TO_CLOSE)));
  assert.equal(creationFailureCode(stuck), 'host_unreachable');
  const refused = rootCause(activity(ApplicationFailure.nonRetryable('cannot create the container: No such image: x', FailureType.ContainerInvalid)));
  assert.equal(creationFailureCode(refused), 'docker_error');
  assert.equal(refused.message, 'cannot create the container: No such image: x');
  const failing = rootCause(activity(ApplicationFailure.retryable('cannot start the container: oops', FailureType.DockerError)));
  assert.equal(creationFailureCode(failing), 'docker_error');
  // An activity's plain Error arrives as an ApplicationFailure typed by the error's name.
  assert.equal(creationFailureCode(rootCause(activity(ApplicationFailure.create({ message: 'socket hang up', type: 'Error' })))), 'docker_error');
});

test('nextChargeAfter: the first period boundary after now, counted from the run\'s start', () => {
  const start = 1_000_000;
  const hour = 3_600_000;
  assert.equal(nextChargeAfter(start, start, hour), start + hour, 'at the start: the first period is paid, the second is next');
  assert.equal(nextChargeAfter(start, start + hour - 1, hour), start + hour);
  assert.equal(nextChargeAfter(start, start + hour, hour), start + 2 * hour, 'at a boundary: that period is charged, the next one is due');
  assert.equal(nextChargeAfter(start, start + 5.5 * hour, hour), start + 6 * hour);
  assert.equal(nextChargeAfter(start, start - 10_000, hour), start + hour, 'a clock a little behind the start');
});
