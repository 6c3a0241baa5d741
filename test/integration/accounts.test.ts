/**
 * Accounts (issue 13): login throttling, sessions, the password, user administration, API keys
 * and their scopes, stats tickets, and the audit log, on the real PostgreSQL and Temporal.
 * Failed logins come from addresses of the test's own (app.inject's remoteAddress: a label, no
 * traffic), so that the per-address count is this test's alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { and, eq, sql } from 'drizzle-orm';
import WebSocket from 'ws';
import { apiKeys, auditLog, loginFailures, tokens, users } from '../../db/schema.js';
import { purgeOlderThan } from '../../repositories/audit.js';
import { adminToken, baseConfig, bearer, buildTestApp, createUser, testDb, type TestUser } from '../support/app.js';
import { cleanupScope, pullHttpd, rowOf, run } from '../support/containers.js';
import { dockerFor } from '../support/stack.js';
import { LABEL_ID } from '../../core/container-labels.js';
import type { App } from '../../api/app.js';

/** A loopback address of this test's own, as the label of a client. */
const address = () => `127.${randomInt(1, 250)}.${randomInt(1, 250)}.${randomInt(1, 250)}`;

const login = (app: App, username: string, password: string, remoteAddress = '127.0.0.1', userAgent = 'berth-test') =>
  app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password }, remoteAddress, headers: { 'user-agent': userAgent } });

const get = (app: App, url: string, token: string) => app.inject({ method: 'GET', url, headers: bearer(token) });

test('login throttling: 5 failures per username, then 429 with Retry-After before any hashing, even for the right password; shared through PostgreSQL', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app);
  const from = address();
  for (let i = 0; i < 5; i++) assert.equal((await login(app, user.username, 'wrong-password', from)).statusCode, 401);
  const rows = await testDb().db.select().from(loginFailures).where(eq(loginFailures.username, user.username));
  assert.equal(rows.length, 5, 'the failures are rows in PostgreSQL');

  // The sixth: a 429 whatever the password, from any address.
  for (const password of ['wrong-password', user.password]) {
    const started = performance.now();
    const res = await login(app, user.username, password, address());
    const took = performance.now() - started;
    assert.equal(res.statusCode, 429, res.body);
    assert.match(res.headers['content-type'] as string, /application\/problem\+json/);
    const retryAfter = Number(res.headers['retry-after']);
    assert.ok(retryAfter > 0 && retryAfter <= 15 * 60, `Retry-After ${res.headers['retry-after']}`);
    t.diagnostic(`a throttled login answered in ${took.toFixed(1)} ms`);
  }
  // Another API replica (another app on the same database) throttles the same username.
  const replica = await buildTestApp(t);
  assert.equal((await login(replica, user.username, user.password, address())).statusCode, 429);
  // A throttled login takes far less than a password check.
  const checkStarted = performance.now();
  assert.equal((await login(app, `${user.username}-nobody`, 'x-wrong-password', address())).statusCode, 401);
  t.diagnostic(`a wrong password (argon2id) answered in ${(performance.now() - checkStarted).toFixed(1)} ms`);

  // Once the window has passed for its failures, the user logs in (the window is the setting: age the rows).
  await testDb().db.update(loginFailures).set({ at: sql`now() - interval '16 minutes'` }).where(eq(loginFailures.username, user.username));
  assert.equal((await login(app, user.username, user.password, from)).statusCode, 200);
  assert.equal((await testDb().db.select().from(loginFailures).where(eq(loginFailures.username, user.username))).length, 0, 'a login forgets the failures');
});

test('login throttling per address; an unknown username counts and answers like a wrong password', async (t) => {
  // The user is made through an app without the limit: the admin logs in from 127.0.0.1, which
  // other tests' failures count against.
  const user = await createUser(await buildTestApp(t));
  const app = await buildTestApp(t, { login: { ...baseConfig.login, maxFailuresPerAddress: 4 } });
  const from = address();
  const answers = [];
  for (let i = 0; i < 4; i++) answers.push(await login(app, `nobody-${i}-${user.username}`, 'whatever-password', from));
  assert.deepEqual(answers.map((r) => r.statusCode), [401, 401, 401, 401]);
  assert.deepEqual(new Set(answers.map((r) => r.json().detail)).size, 1);
  // The fifth from that address: 429, for a real user with the right password too.
  const blocked = await login(app, user.username, user.password, from);
  assert.equal(blocked.statusCode, 429);
  assert.ok(Number(blocked.headers['retry-after']) > 0);
  // From another address the user logs in.
  assert.equal((await login(app, user.username, user.password, address())).statusCode, 200);
});

test('sessions: listed without secrets, revoked one by one, by logout, and by a password change', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app);
  const first = (await login(app, user.username, user.password, '127.0.0.1', 'browser-one')).json().token as string;
  const second = (await login(app, user.username, user.password, '127.0.0.1', 'cli-two')).json().token as string;

  const listed = await get(app, '/api/v1/users/me/sessions', first);
  assert.equal(listed.statusCode, 200, listed.body);
  const items = listed.json().items as Array<{ id: string; current: boolean; userAgent: string | null; clientIp: string | null }>;
  assert.ok(items.length >= 3, 'the createUser login and these two');
  assert.ok(!listed.body.includes(first) && !listed.body.includes(second), 'no token in the list');
  assert.deepEqual(Object.keys(items[0]!).sort(), ['clientIp', 'createdAt', 'current', 'expiresAt', 'id', 'lastUsedAt', 'userAgent']);
  assert.equal(items.filter((s) => s.current).length, 1);
  const other = items.find((s) => s.userAgent === 'cli-two')!;
  assert.equal(other.clientIp, '127.0.0.1');

  // Revoke the second from the first: its next request is a 401.
  assert.equal((await app.inject({ method: 'DELETE', url: `/api/v1/users/me/sessions/${other.id}`, headers: bearer(first) })).statusCode, 204);
  assert.equal((await get(app, '/api/v1/users/me', second)).statusCode, 401);
  assert.equal((await app.inject({ method: 'DELETE', url: `/api/v1/users/me/sessions/${other.id}`, headers: bearer(first) })).statusCode, 404);
  // Someone else's session is not found.
  const stranger = await createUser(app);
  assert.equal((await app.inject({ method: 'DELETE', url: `/api/v1/users/me/sessions/${items.find((s) => s.current)!.id}`, headers: bearer(stranger.token) })).statusCode, 404);

  // A password change: the wrong current password is refused; then every other session ends.
  const wrong = await app.inject({ method: 'POST', url: '/api/v1/users/me/password', headers: bearer(first), payload: { currentPassword: 'not-it-at-all', newPassword: 'a-new-password-1' }, remoteAddress: address() });
  assert.equal(wrong.statusCode, 403, wrong.body);
  const changed = await app.inject({ method: 'POST', url: '/api/v1/users/me/password', headers: bearer(first), payload: { currentPassword: user.password, newPassword: 'a-new-password-1' } });
  assert.equal(changed.statusCode, 200, changed.body);
  assert.ok(changed.json().revokedSessions >= 1);
  assert.equal((await get(app, '/api/v1/users/me', user.token)).statusCode, 401, 'the other sessions ended');
  assert.equal((await get(app, '/api/v1/users/me', first)).statusCode, 200, 'this one stays');
  assert.equal((await login(app, user.username, user.password, address())).statusCode, 401, 'the old password is gone');
  assert.equal((await login(app, user.username, 'a-new-password-1')).statusCode, 200);

  // Logout revokes the presented token.
  assert.equal((await app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: bearer(first) })).statusCode, 204);
  assert.equal((await get(app, '/api/v1/users/me', first)).statusCode, 401);
  const [row] = await testDb().db.select().from(tokens).where(and(eq(tokens.userId, user.id), eq(tokens.userAgent, 'browser-one')));
  assert.ok(row?.revokedAt, 'the session row says when it was revoked');
});

test('user administration: list and filter; a disabled user is a 401 at once, their running container stopped (not removed), their balance kept', async (t) => {
  const scope = cleanupScope(t);
  const app = await buildTestApp(scope);
  const admin = await adminToken(app);
  const user = await createUser(app, { balance: 10_000 });
  const image = await pullHttpd(app, user);
  const c = await run(app, user, { imageId: image.id });
  scope.after(() => app.inject({ method: 'DELETE', url: `/api/v1/containers/${c.id}`, headers: bearer(admin) }));
  const keyRes = await app.inject({ method: 'POST', url: '/api/v1/users/me/api-keys', headers: bearer(user.token), payload: { name: 'ci', scopes: ['containers:read'] } });
  assert.equal(keyRes.statusCode, 201, keyRes.body);
  const key = keyRes.json().key as string;
  const balanceBefore = (await testDb().db.select().from(users).where(eq(users.id, user.id)))[0]!.balance;

  const listed = await get(app, `/api/v1/users?q=${user.username.slice(2, 10)}&role=user&disabled=false`, admin);
  assert.equal(listed.statusCode, 200, listed.body);
  assert.ok(listed.json().items.some((u: { id: string }) => u.id === user.id));
  assert.equal((await get(app, '/api/v1/users', user.token)).statusCode, 403);

  const disabled = await app.inject({ method: 'PATCH', url: `/api/v1/users/${user.id}`, headers: bearer(admin), payload: { disabled: true } });
  assert.equal(disabled.statusCode, 200, disabled.body);
  assert.equal(disabled.json().user.disabled, true);
  assert.deepEqual(disabled.json().stoppedContainers, [c.id]);
  assert.equal((await get(app, '/api/v1/users/me', user.token)).statusCode, 401, 'their session stops at once');
  assert.equal((await get(app, '/api/v1/containers', key)).statusCode, 401, 'their API key too');
  assert.equal((await login(app, user.username, user.password)).statusCode, 403, 'and they cannot log in');
  const row = await rowOf(c.id);
  assert.equal(row.state, 'stopped');
  assert.equal(row.removedAt, null);
  const [inDocker] = await dockerFor(row.hostId).listContainers({ all: true, filters: { label: [`${LABEL_ID}=${c.id}`] } });
  assert.equal(inDocker?.State, 'exited', 'stopped in Docker, not removed');
  assert.equal((await testDb().db.select().from(users).where(eq(users.id, user.id)))[0]!.balance, balanceBefore, 'the balance stays');
  const filtered = await get(app, `/api/v1/users?disabled=true&q=${user.username}`, admin);
  assert.deepEqual(filtered.json().items.map((u: { id: string }) => u.id), [user.id]);

  // Enabled again: the same session and key work.
  assert.equal((await app.inject({ method: 'PATCH', url: `/api/v1/users/${user.id}`, headers: bearer(admin), payload: { disabled: false } })).statusCode, 200);
  assert.equal((await get(app, '/api/v1/users/me', user.token)).statusCode, 200);
  // A role change and a password reset (every session ends).
  const promoted = await app.inject({ method: 'PATCH', url: `/api/v1/users/${user.id}`, headers: bearer(admin), payload: { role: 'admin' } });
  assert.equal(promoted.json().user.role, 'admin');
  const reset = await app.inject({ method: 'POST', url: `/api/v1/users/${user.id}/password`, headers: bearer(admin), payload: { newPassword: 'reset-by-admin-1' } });
  assert.equal(reset.statusCode, 200, reset.body);
  assert.equal((await get(app, '/api/v1/users/me', user.token)).statusCode, 401);
  assert.equal((await login(app, user.username, 'reset-by-admin-1')).statusCode, 200);
  // Bad input, unknown users, and an admin disabling themselves.
  const me = (await get(app, '/api/v1/users/me', admin)).json().id as string;
  assert.equal((await app.inject({ method: 'PATCH', url: `/api/v1/users/${me}`, headers: bearer(admin), payload: { disabled: true } })).statusCode, 400);
  assert.equal((await app.inject({ method: 'PATCH', url: `/api/v1/users/${user.id}`, headers: bearer(admin), payload: {} })).statusCode, 400);
  assert.equal((await app.inject({ method: 'PATCH', url: '/api/v1/users/00000000-0000-4000-8000-000000000000', headers: bearer(admin), payload: { disabled: true } })).statusCode, 404);
  await app.inject({ method: 'PATCH', url: `/api/v1/users/${user.id}`, headers: bearer(admin), payload: { role: 'user' } });
});

test('API keys: shown once, stored hashed, limited to their scopes, revocable, expiring; the DCU routes take them', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 1000 });
  const create = (body: Record<string, unknown>, token = user.token) => app.inject({ method: 'POST', url: '/api/v1/users/me/api-keys', headers: bearer(token), payload: body });
  const made = await create({ name: 'reader', scopes: ['images:read', 'dcu'] });
  assert.equal(made.statusCode, 201, made.body);
  const { key, id, prefix } = made.json<{ key: string; id: string; prefix: string }>();
  assert.match(key, /^berth_[A-Za-z0-9_-]{40,}$/);
  assert.ok(key.startsWith(prefix));
  const [stored] = await testDb().db.select().from(apiKeys).where(eq(apiKeys.id, id));
  assert.ok(stored && stored.keyHash !== key && /^[0-9a-f]{64}$/.test(stored.keyHash), 'only a hash is stored');
  const listed = await get(app, '/api/v1/users/me/api-keys', user.token);
  assert.equal(listed.statusCode, 200);
  assert.ok(!listed.body.includes(key), 'never shown again');
  assert.deepEqual(listed.json().items.map((k: { id: string }) => k.id), [id]);

  // In scope, out of scope, account routes, admin routes.
  assert.equal((await get(app, '/api/v1/images', key)).statusCode, 200);
  assert.equal((await get(app, '/api/v1/users/me', key)).statusCode, 200, 'who am I: any key');
  const pull = await app.inject({ method: 'POST', url: '/api/v1/images/pull', headers: bearer(key), payload: { image: '127.0.0.1:5000/library/busybox:1.35' } });
  assert.equal(pull.statusCode, 403);
  assert.match(pull.json().detail, /images:write/);
  assert.equal((await get(app, '/api/v1/containers', key)).statusCode, 403);
  assert.equal((await get(app, '/api/v1/users/me/ledger', key)).statusCode, 403);
  assert.equal((await get(app, '/api/v1/users/me/api-keys', key)).statusCode, 403, 'a key cannot manage keys');
  assert.equal((await create({ name: 'escalate', scopes: ['admin'] }, key)).statusCode, 403);
  assert.equal((await get(app, '/api/v1/hosts', key)).statusCode, 403);
  const dcu = await app.inject({ method: 'GET', url: '/api/dcu/tasks', headers: bearer(key) });
  assert.ok(dcu.statusCode < 400 || dcu.statusCode === 404, `the DCU routes take a dcu key: ${dcu.statusCode} ${dcu.body}`);
  assert.notEqual(dcu.statusCode, 401);
  assert.notEqual(dcu.statusCode, 403);

  // Bad input.
  assert.equal((await create({ name: 'x', scopes: ['root'] })).statusCode, 400);
  assert.equal((await create({ name: 'x', scopes: [] })).statusCode, 400);
  assert.equal((await create({ name: 'x', scopes: ['admin'] })).statusCode, 403, 'admin only on an admin\'s key');
  assert.equal((await create({ name: 'x', scopes: ['dcu'], expiresAt: '2001-01-01T00:00:00Z' })).statusCode, 400);

  // An admin's admin key reaches admin routes.
  const admin = await adminToken(app);
  const adminKey = (await create({ name: 'ops', scopes: ['admin'] }, admin)).json().key as string;
  assert.equal((await get(app, '/api/v1/hosts', adminKey)).statusCode, 200);
  await app.inject({ method: 'DELETE', url: `/api/v1/users/me/api-keys/${(await get(app, '/api/v1/users/me/api-keys', admin)).json().items[0].id}`, headers: bearer(admin) });

  // Expired and revoked keys are a 401.
  // A key that expires in 2 s works until then and not a moment after, though authentication
  // cached it (the cache never keeps a credential past its expiry).
  const expiresAt = Date.now() + 2000;
  const expiring = (await create({ name: 'soon', scopes: ['images:read'], expiresAt: new Date(expiresAt).toISOString() })).json();
  assert.equal((await get(app, '/api/v1/images', expiring.key)).statusCode, 200);
  await new Promise((resolve) => setTimeout(resolve, expiresAt - Date.now() + 10));
  assert.equal((await get(app, '/api/v1/images', expiring.key)).statusCode, 401);
  assert.equal((await app.inject({ method: 'DELETE', url: `/api/v1/users/me/api-keys/${id}`, headers: bearer(user.token) })).statusCode, 204);
  assert.equal((await get(app, '/api/v1/images', key)).statusCode, 401);
  assert.equal((await app.inject({ method: 'DELETE', url: `/api/v1/users/me/api-keys/${id}`, headers: bearer(user.token) })).statusCode, 404);
  const [used] = await testDb().db.select().from(apiKeys).where(eq(apiKeys.id, id));
  assert.ok(used?.lastUsedAt && used.revokedAt, 'last use and revocation are recorded');
});

async function openStats(addressOf: string, id: string, query: string, headers: Record<string, string> = {}) {
  const ws = new WebSocket(`${addressOf.replace('http', 'ws')}/api/v1/containers/${id}/stats${query}`, { headers });
  return new Promise<{ status: number; message?: string }>((resolve) => {
    ws.on('unexpected-response', (_req, res) => resolve({ status: res.statusCode ?? 0 }));
    ws.on('message', (data) => {
      resolve({ status: 101, message: (data as Buffer).toString() });
      ws.close();
    });
    ws.on('error', () => resolve({ status: -1 }));
  });
}

test('the stats WebSocket opens with a single-use ticket, never a token in the URL', async (t) => {
  const scope = cleanupScope(t);
  const app = await buildTestApp(scope);
  const user: TestUser = await createUser(app, { balance: 10_000 });
  const image = await pullHttpd(app, user);
  const c = await run(app, user, { imageId: image.id, memoryMb: 64 });
  scope.after(() => app.inject({ method: 'DELETE', url: `/api/v1/containers/${c.id}`, headers: bearer(user.token) }));
  const listen = await app.listen({ host: '127.0.0.1', port: 0 });

  const issued = await app.inject({ method: 'POST', url: `/api/v1/containers/${c.id}/stats/ticket`, headers: bearer(user.token) });
  assert.equal(issued.statusCode, 201, issued.body);
  const { ticket } = issued.json<{ ticket: string }>();
  const opened = await openStats(listen, c.id, `?ticket=${ticket}`);
  assert.equal(opened.status, 101);
  assert.match(opened.message ?? '', /memoryUsage/);
  assert.equal((await openStats(listen, c.id, `?ticket=${ticket}`)).status, 401, 'single use');
  assert.equal((await openStats(listen, c.id, `?access_token=${user.token}`)).status, 401, 'a token in the URL is not taken');
  // A ticket for one container does not open another; someone else's container gives no ticket.
  const other = await createUser(app);
  assert.equal((await app.inject({ method: 'POST', url: `/api/v1/containers/${c.id}/stats/ticket`, headers: bearer(other.token) })).statusCode, 404);
  const second = (await app.inject({ method: 'POST', url: `/api/v1/containers/${c.id}/stats/ticket`, headers: bearer(user.token) })).json().ticket as string;
  assert.equal((await openStats(listen, '00000000-0000-4000-8000-000000000000', `?ticket=${second}`)).status, 401);
  // The header still works.
  assert.equal((await openStats(listen, c.id, '', bearer(user.token))).status, 101);
  assert.equal((await rowOf(c.id)).state, 'running');
});

test('the audit log: mutating requests and failed logins are recorded; admins and users read it; the table refuses UPDATE and DELETE but the retention', async (t) => {
  const app = await buildTestApp(t);
  const admin = await adminToken(app);
  const user = await createUser(app, { balance: 100 });
  const from = address();
  assert.equal((await login(app, user.username, 'wrong-password', from)).statusCode, 401);
  const credited = await app.inject({ method: 'POST', url: `/api/v1/users/${user.id}/credit`, headers: bearer(admin), payload: { amount: 5, reason: 'audit test' } });
  assert.equal(credited.statusCode, 200);
  const keyed = await app.inject({ method: 'POST', url: '/api/v1/users/me/api-keys', headers: bearer(user.token), payload: { name: 'a', scopes: ['dcu'] } });
  assert.equal(keyed.statusCode, 201);
  // The hook writes after the answer: wait for the rows.
  const rowsFor = async (predicate: (r: typeof auditLog.$inferSelect) => boolean, n: number) => {
    for (let i = 0; i < 50; i++) {
      const rows = (await testDb().db.select().from(auditLog).where(sql`${auditLog.at} > now() - interval '5 minutes'`)).filter(predicate);
      if (rows.length >= n) return rows;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('audit rows did not appear');
  };
  const [failedLogin] = await rowsFor((r) => r.action === 'login' && r.targetId === user.username && r.clientIp === from, 1);
  assert.equal(failedLogin!.outcome, 'failure');
  assert.equal(failedLogin!.status, 401);
  assert.equal(failedLogin!.actorType, 'anonymous');
  const [credit] = await rowsFor((r) => r.targetId === user.id && r.action.toLowerCase().includes('credit'), 1);
  assert.equal(credit!.actorType, 'user');
  assert.equal(credit!.subjectUserId, user.id);
  assert.equal(credit!.requestId, credited.headers['x-request-id']);

  const adminView = await get(app, `/api/v1/admin/audit?target=${user.id}`, admin);
  assert.equal(adminView.statusCode, 200, adminView.body);
  assert.ok(adminView.json().items.some((e: { id: number }) => e.id === credit!.id));
  assert.equal((await get(app, '/api/v1/admin/audit', user.token)).statusCode, 403);
  const mine = await get(app, '/api/v1/users/me/audit?outcome=success', user.token);
  assert.equal(mine.statusCode, 200, mine.body);
  const actions = mine.json().items.map((e: { action: string }) => e.action);
  assert.ok(actions.includes('createApiKey'), actions.join(', '));
  assert.ok(mine.json().items.some((e: { id: number }) => e.id === credit!.id), 'what an admin did to their things');
  assert.equal((await get(app, '/api/v1/users/me/audit?from=yesterday', user.token)).statusCode, 400);

  // Append-only in the database.
  const refused = (error: Error & { cause?: Error }) => /append-only/.test(error.cause?.message ?? error.message);
  await assert.rejects(testDb().db.update(auditLog).set({ action: 'tampered' }).where(eq(auditLog.id, credit!.id)), refused);
  await assert.rejects(testDb().db.delete(auditLog).where(eq(auditLog.id, credit!.id)), refused);
  // The retention's purge deletes only rows older than its days.
  const [old] = await testDb().db
    .insert(auditLog)
    .values({ actorType: 'system', action: 'test.old', outcome: 'success', at: new Date(Date.now() - 400 * 86_400_000) })
    .returning();
  assert.ok((await purgeOlderThan(testDb().db, 365)) >= 1);
  assert.equal((await testDb().db.select().from(auditLog).where(eq(auditLog.id, old!.id))).length, 0, 'the old row went');
  assert.equal((await testDb().db.select().from(auditLog).where(eq(auditLog.id, credit!.id))).length, 1, 'a recent row stays');
});
