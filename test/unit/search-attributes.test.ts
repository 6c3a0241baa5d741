/**
 * Berth's search attributes (core/search-attributes.ts): what a workflow about a user, a host and
 * a resource carries, and that every place that prepares a Temporal server registers each of them
 * as Keyword (the dev server and the cluster through scripts/stack.sh's list, the compose job).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { BerthHostId, BerthResourceId, BerthUserId, SEARCH_ATTRIBUTE_NAMES, searchAttributesFor } from '../../core/search-attributes.js';

const read = (path: string) => readFile(new URL(`../../${path}`, import.meta.url), 'utf8');

test('a workflow carries the attributes of what it is about, and none for what it is not', () => {
  assert.deepEqual(searchAttributesFor({ userId: 'u1', hostId: 'host-a', resourceId: 'c1' }), [
    { key: BerthUserId, value: 'u1' },
    { key: BerthHostId, value: 'host-a' },
    { key: BerthResourceId, value: 'c1' },
  ]);
  assert.deepEqual(searchAttributesFor({ hostId: 'host-b' }), [{ key: BerthHostId, value: 'host-b' }]);
  assert.deepEqual(searchAttributesFor({ userId: null, hostId: '', resourceId: undefined }), []);
  for (const key of [BerthUserId, BerthHostId, BerthResourceId]) assert.equal(key.type, 'KEYWORD', key.name);
});

test('the stack (dev server and cluster) and the compose namespace job register every search attribute as Keyword', async () => {
  const stack = await read('scripts/stack.sh');
  const list = /^SEARCH_ATTRIBUTES=\(([^)]*)\)$/m.exec(stack)?.[1]?.split(/\s+/).filter(Boolean);
  assert.deepEqual(list, [...SEARCH_ATTRIBUTE_NAMES], 'scripts/stack.sh SEARCH_ATTRIBUTES');
  assert.match(stack, /--search-attribute "\$a=Keyword"/, 'the dev server starts with them');
  assert.match(stack, /register_search_attributes default dev_temporal_cli/, 'a dev server already running learns them');
  assert.match(await read('scripts/cluster-temporal.sh'), /ensure_temporal_namespace default\n\s*ensure_temporal_search_attributes default/, 'the cluster, once its namespace exists');
  const compose = await read('docker/temporal/create-namespace.sh');
  const composeList = /^attributes="([^"]*)"$/m.exec(compose)?.[1]?.split(/\s+/);
  assert.deepEqual(composeList, [...SEARCH_ATTRIBUTE_NAMES], 'docker/temporal/create-namespace.sh attributes');
  assert.match(compose, /search-attribute create .* --type Keyword/);
});
