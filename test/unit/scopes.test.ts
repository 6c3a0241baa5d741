import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keyAllows, requirementOf } from '../../core/scopes.js';

test('every route path maps to one requirement; what the table does not know needs admin', () => {
  const cases: Array<[string, string, unknown]> = [
    ['GET', '/api/v1/images', { scope: 'images:read' }],
    ['POST', '/api/v1/images/pull', { scope: 'images:write' }],
    ['DELETE', '/api/v1/images/:id', { scope: 'images:write' }],
    ['GET', '/api/v1/containers/:id/logs', { scope: 'containers:read' }],
    ['POST', '/api/v1/containers/:id/stats/ticket', { scope: 'containers:read' }],
    ['POST', '/api/v1/containers/:id/stop', { scope: 'containers:write' }],
    ['POST', '/api/dcu/start', { scope: 'dcu' }],
    ['GET', '/api/v1/users/me/ledger', { scope: 'ledger:read' }],
    ['GET', '/api/v1/users/me/audit', { scope: 'audit:read' }],
    ['GET', '/api/v1/users/me', { any: true }],
    ['GET', '/api/v1/users/:id', { any: true }],
    ['POST', '/api/v1/users/me/api-keys', { session: true }],
    ['DELETE', '/api/v1/users/me/sessions/:id', { session: true }],
    ['POST', '/api/v1/users/me/password', { session: true }],
    ['POST', '/api/v1/auth/logout', { session: true }],
    ['PATCH', '/api/v1/users/:id', { scope: 'admin' }],
    ['POST', '/api/v1/hosts/:id/ping', { scope: 'admin' }],
    ['GET', '/api/v1/admin/audit', { scope: 'admin' }],
    ['GET', '/api/v1/something-new', { scope: 'admin' }],
  ];
  for (const [method, url, expected] of cases) assert.deepEqual(requirementOf(method, url), expected, `${method} ${url}`);
});

test('a key meets a requirement by its scopes; admin only on an admin; never a session-only route', () => {
  assert.equal(keyAllows(['images:read'], { scope: 'images:read' }, 'user'), true);
  assert.equal(keyAllows(['images:read'], { scope: 'images:write' }, 'user'), false);
  assert.equal(keyAllows([], { any: true }, 'user'), true);
  assert.equal(keyAllows(['admin'], { session: true }, 'admin'), false);
  assert.equal(keyAllows(['admin'], { scope: 'admin' }, 'user'), false);
  assert.equal(keyAllows(['admin'], { scope: 'admin' }, 'admin'), true);
  assert.equal(keyAllows(['images:read'], { scope: 'admin' }, 'admin'), false);
});
