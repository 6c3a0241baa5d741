/**
 * The API's cache of authenticated credentials (services/credential-cache.ts): a credential is
 * served from memory, yet whatever ends it or changes what it may do is refused at once by the
 * process that made the change, and by every other API process as soon as PostgreSQL delivers
 * the change's notification. Two apps built here are two API replicas on the same database.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { and, eq, isNull, sql } from 'drizzle-orm';
import { tokens } from '../../db/schema.js';
import { notifyCredentialsChanged } from '../../repositories/credential-changes.js';
import { adminToken, bearer, buildTestApp, createUser, login, testDb } from '../support/app.js';
import { sleep } from '../support/wait.js';
import type { App } from '../../api/app.js';

const TTL = { authCacheTtlMs: 60_000 };
const get = (app: App, url: string, token: string) => app.inject({ method: 'GET', url, headers: bearer(token) });
const status = async (app: App, url: string, token: string) => (await get(app, url, token)).statusCode;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Revokes a session in SQL, behind Berth's back: no notification. */
const revokeInSql = (token: string) =>
  testDb().db.update(tokens).set({ revokedAt: sql`now()` }).where(and(eq(tokens.tokenHash, sha256(token)), isNull(tokens.revokedAt)));

/**
 * Waits until `app` serves credentials from its cache (its LISTEN connection is up), shown by a
 * session revoked behind Berth's back that still works; at most 5 s.
 */
async function cacheServing(app: App, user: { username: string; password: string }) {
  for (let i = 0; i < 50; i++) {
    const probe = await login(app, user.username, user.password);
    assert.equal(await status(app, '/api/v1/images', probe), 200);
    await revokeInSql(probe);
    if ((await status(app, '/api/v1/images', probe)) === 200) return;
    await sleep(100);
  }
  assert.fail('the credential cache never served an entry');
}

/** Polls until `url` answers `expected` with `token`; how long it took, in ms (fails after 2 s). */
async function until(app: App, url: string, token: string, expected: number): Promise<number> {
  const start = performance.now();
  while (performance.now() - start < 2000) {
    if ((await status(app, url, token)) === expected) return performance.now() - start;
    await sleep(5);
  }
  return assert.fail(`${url} never answered ${expected}`);
}

test('a cached session is served from memory; a change behind Berth’s back is seen once notified', async (t) => {
  const app = await buildTestApp(t, TTL);
  const user = await createUser(app);
  await cacheServing(app, user);
  const token = await login(app, user.username, user.password);
  assert.equal(await status(app, '/api/v1/images', token), 200);
  await revokeInSql(token);
  assert.equal(await status(app, '/api/v1/images', token), 200, 'within the TTL, a revocation nobody was told of is not seen');
  await notifyCredentialsChanged(testDb().db, user.id);
  await until(app, '/api/v1/images', token, 401);
});

test('the process that revokes refuses the credential at once: logout, a revoked key, a password change, a disabled user, a demoted admin', async (t) => {
  const app = await buildTestApp(t, TTL);
  const admin = await adminToken(app);
  const user = await createUser(app, { balance: 100 });
  await cacheServing(app, user);

  // Logout: the same session's next request is a 401.
  const session = await login(app, user.username, user.password);
  assert.equal(await status(app, '/api/v1/images', session), 200);
  assert.equal((await app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: bearer(session) })).statusCode, 204);
  assert.equal(await status(app, '/api/v1/images', session), 401, 'logged out');

  // A revoked API key.
  const created = await app.inject({ method: 'POST', url: '/api/v1/users/me/api-keys', headers: bearer(user.token), payload: { name: 'k', scopes: ['images:read'] } });
  assert.equal(created.statusCode, 201);
  const { id: keyId, key } = created.json<{ id: string; key: string }>();
  assert.equal(await status(app, '/api/v1/images', key), 200);
  assert.equal((await app.inject({ method: 'DELETE', url: `/api/v1/users/me/api-keys/${keyId}`, headers: bearer(user.token) })).statusCode, 204);
  assert.equal(await status(app, '/api/v1/images', key), 401, 'the key was revoked');

  // A password change ends the other sessions.
  const other = await login(app, user.username, user.password);
  assert.equal(await status(app, '/api/v1/images', other), 200);
  const changed = await app.inject({
    method: 'POST',
    url: '/api/v1/users/me/password',
    headers: bearer(user.token),
    payload: { currentPassword: user.password, newPassword: `${user.password}-new` },
  });
  assert.equal(changed.statusCode, 200, changed.body);
  assert.equal(await status(app, '/api/v1/images', other), 401, 'the other session ended with the password change');
  assert.equal(await status(app, '/api/v1/images', user.token), 200, 'the session that changed it goes on');

  // A disabled user: their session and keys stop at once; enabled again, they work again.
  const key2 = (await app.inject({ method: 'POST', url: '/api/v1/users/me/api-keys', headers: bearer(user.token), payload: { name: 'k2', scopes: ['images:read'] } })).json<{ key: string }>().key;
  assert.equal(await status(app, '/api/v1/images', key2), 200);
  assert.equal((await app.inject({ method: 'PATCH', url: `/api/v1/users/${user.id}`, headers: bearer(admin), payload: { disabled: true } })).statusCode, 200);
  assert.equal(await status(app, '/api/v1/images', user.token), 401, 'disabled: the session is refused');
  assert.equal(await status(app, '/api/v1/images', key2), 401, 'disabled: the key is refused');
  assert.equal((await app.inject({ method: 'PATCH', url: `/api/v1/users/${user.id}`, headers: bearer(admin), payload: { disabled: false } })).statusCode, 200);
  assert.equal(await status(app, '/api/v1/images', key2), 200, 'enabled again');

  // A demoted admin loses admin routes at once.
  const second = await createUser(app, { role: 'admin' });
  assert.equal(await status(app, '/api/v1/hosts', second.token), 200);
  assert.equal((await app.inject({ method: 'PATCH', url: `/api/v1/users/${second.id}`, headers: bearer(admin), payload: { role: 'user' } })).statusCode, 200);
  assert.equal(await status(app, '/api/v1/hosts', second.token), 403, 'demoted');
});

test('another API process refuses a credential revoked elsewhere as soon as the notification arrives', async (t) => {
  const [a, b] = [await buildTestApp(t, TTL), await buildTestApp(t, TTL)];
  const user = await createUser(a);
  await cacheServing(b, user);
  const session = await login(a, user.username, user.password);
  assert.equal(await status(b, '/api/v1/images', session), 200, 'cached on b');
  assert.equal((await a.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: bearer(session) })).statusCode, 204);
  assert.equal(await status(a, '/api/v1/images', session), 401, 'at once where it was revoked');
  const took = await until(b, '/api/v1/images', session, 401);
  assert.ok(took < 1000, `b refused it ${took.toFixed(0)} ms after the logout (the TTL is 60 s)`);
});

test('GET /users/me answers the balance as it is now, not as the cached credential had it', async (t) => {
  const app = await buildTestApp(t, TTL);
  const admin = await adminToken(app);
  const user = await createUser(app, { balance: 100 });
  await cacheServing(app, user);
  assert.equal((await get(app, '/api/v1/users/me', user.token)).json<{ balance: number }>().balance, 100);
  const credit = await app.inject({ method: 'POST', url: `/api/v1/users/${user.id}/credit`, headers: bearer(admin), payload: { amount: 50, reason: 'cache test' } });
  assert.equal(credit.statusCode, 200, credit.body);
  assert.equal((await get(app, '/api/v1/users/me', user.token)).json<{ balance: number }>().balance, 150);
});
