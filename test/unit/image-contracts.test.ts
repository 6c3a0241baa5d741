/** The image workflows' contracts: ids, and the Docker pull registered under both its names. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { PULL_ACTIVITY, PULL_ACTIVITY_NAMES, PULL_ID, pullId, pullImageWorkflow } from '../../contracts/pull-image.js';
import { removeImageId, removeImageWorkflow } from '../../contracts/remove-image.js';
import { CONTROL_TASK_QUEUE } from '../../core/temporal-names.js';
import { createImageDockerActivities } from '../../activities/images-docker.js';

test('a pull id is "pull-<uuid>", what PULL_ID (and the route’s parameter) accepts', () => {
  const id = pullId(randomUUID());
  assert.match(id, PULL_ID);
  assert.doesNotMatch(`pull-${'-'.repeat(36)}`, PULL_ID);
  assert.doesNotMatch(`pull-${randomUUID().toUpperCase()}`, PULL_ID);
});

test('the removal id is the one entries and running workflows already use', () => {
  assert.equal(removeImageId('0b0e'), 'image-remove-0b0e');
});

test('both image workflows run on berth-control under their registered type names', () => {
  assert.deepEqual([pullImageWorkflow.type, pullImageWorkflow.taskQueue], ['pullImage', CONTROL_TASK_QUEUE]);
  assert.deepEqual([removeImageWorkflow.type, removeImageWorkflow.taskQueue], ['removeImage', CONTROL_TASK_QUEUE]);
});

test('the host worker registers ensureImage, and the Docker pull as dockerPull and, for runs before the rename and the DCU, as pullImage', () => {
  const activities: Record<string, unknown> = createImageDockerActivities({ docker: {} as never, registryCredentials: {}, pullStallTimeoutMs: 1000 });
  assert.deepEqual(PULL_ACTIVITY, { ensure: 'ensureImage', current: 'dockerPull', legacy: 'pullImage' });
  for (const name of PULL_ACTIVITY_NAMES) assert.equal(typeof activities[name], 'function', name);
  assert.equal(activities[PULL_ACTIVITY.current], activities[PULL_ACTIVITY.legacy], 'one function under two names');
});
