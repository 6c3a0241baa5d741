import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eq } from 'drizzle-orm';
import { tokens, users } from '../../db/schema.js';
import { baseConfig, bearer, buildTestApp, createUser, testDb } from '../support/app.js';
import { sleep } from '../support/wait.js';

test('the admin from BERTH_ADMIN_USERNAME exists with a hashed password', async () => {
  const [admin] = await testDb().db.select().from(users).where(eq(users.username, baseConfig.admin.username));
  assert.ok(admin, 'admin row exists');
  assert.equal(admin.role, 'admin');
  assert.match(admin.passwordHash, /^\$argon2id\$/);
  assert.ok(!admin.passwordHash.includes(baseConfig.admin.password!));
});

test('login gives a token that authenticates; only its hash is stored', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 250 });
  const res = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: user.username, password: user.password } });
  assert.equal(res.statusCode, 200);
  const body = res.json();
  assert.equal(body.user.username, user.username);
  assert.equal(body.user.balance, 250);
  assert.ok(new Date(body.expiresAt).getTime() > Date.now());

  const rows = await testDb().db.select().from(tokens).where(eq(tokens.userId, user.id));
  assert.ok(rows.length >= 1);
  assert.ok(rows.every((row) => row.tokenHash !== body.token && /^[0-9a-f]{64}$/.test(row.tokenHash)));

  const me = await app.inject({ method: 'GET', url: '/api/v1/users/me', headers: bearer(body.token) });
  assert.equal(me.statusCode, 200);
  assert.deepEqual(Object.keys(me.json()).sort(), ['balance', 'createdAt', 'id', 'role', 'username']);
  assert.equal(me.json().id, user.id);
});

test('a wrong password and an unknown user get the same 401', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app);
  const wrongPassword = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: user.username, password: 'nope-nope' }, remoteAddress: '127.0.5.1' });
  const unknownUser = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: `${user.username}-x`, password: user.password }, remoteAddress: '127.0.5.1' });
  for (const res of [wrongPassword, unknownUser]) {
    assert.equal(res.statusCode, 401);
    assert.match(res.headers['content-type'] as string, /^application\/problem\+json/);
  }
  assert.equal(wrongPassword.json().detail, unknownUser.json().detail);
  assert.equal(wrongPassword.json().detail, 'Invalid username or password.');
});

test('routes need a bearer token; a bad or expired token is refused', async (t) => {
  const app = await buildTestApp(t, { tokenTtlMs: 1000 });
  const user = await createUser(app);
  const none = await app.inject({ method: 'GET', url: '/api/v1/users/me' });
  assert.equal(none.statusCode, 401);
  assert.equal(none.json().status, 401);
  const garbage = await app.inject({ method: 'GET', url: '/api/v1/users/me', headers: bearer('not-a-token') });
  assert.equal(garbage.statusCode, 401);

  const loggedIn = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: user.username, password: user.password } });
  assert.equal(loggedIn.statusCode, 200, loggedIn.body);
  const { token: shortLived, expiresAt } = loggedIn.json<{ token: string; expiresAt: string }>();
  const expiry = new Date(expiresAt).getTime();
  assert.ok(expiry - Date.now() <= 1000, `the token expires within its 1 s lifetime (${expiresAt})`);
  assert.equal((await app.inject({ method: 'GET', url: '/api/v1/users/me', headers: bearer(shortLived) })).statusCode, 200);
  // Once the expiry the login answered has passed:
  while (Date.now() <= expiry) await sleep(expiry - Date.now() + 1);
  const expired = await app.inject({ method: 'GET', url: '/api/v1/users/me', headers: bearer(shortLived) });
  assert.equal(expired.statusCode, 401);
  assert.match(expired.json().detail, /expired/);
});

test('login validates its body', async (t) => {
  const app = await buildTestApp(t);
  const res = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'x' } });
  assert.equal(res.statusCode, 400);
  assert.match(res.json().detail, /password/);
});
