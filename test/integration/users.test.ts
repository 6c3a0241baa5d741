import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import { ledgerEntries, users } from '../../db/schema.js';
import { billing } from '../../billing/ledger.js';
import { adminToken, bearer, buildTestApp, createUser, testDb, uniqueName } from '../support/app.js';

const balanceOf = async (id: string) =>
  (await testDb().db.select({ balance: users.balance }).from(users).where(eq(users.id, id)))[0]?.balance;

test('an admin creates users; the opening balance goes through the ledger', async (t) => {
  const app = await buildTestApp(t);
  const admin = await adminToken(app);
  const username = uniqueName();
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/users',
    headers: bearer(admin),
    payload: { username, password: 'correct horse', balance: 1000 },
  });
  assert.equal(res.statusCode, 201);
  const created = res.json();
  assert.equal(created.username, username);
  assert.equal(created.role, 'user');
  assert.equal(created.balance, 1000);
  assert.equal(await balanceOf(created.id), 1000);
  const entries = await testDb().db.select().from(ledgerEntries).where(eq(ledgerEntries.userId, created.id));
  assert.deepEqual(entries.map((e) => [e.amount, e.balanceAfter, e.kind, e.reason, e.idempotencyKey]), [
    [1000, 1000, 'credit', 'opening balance', `user-opening-balance-${created.id}`],
  ]);

  const again = await app.inject({ method: 'POST', url: '/api/v1/users', headers: bearer(admin), payload: { username, password: 'another one' } });
  assert.equal(again.statusCode, 409);
});

test('creating users: bad input is a 400, a non-admin gets 403, nothing is created', async (t) => {
  const app = await buildTestApp(t);
  const admin = await adminToken(app);
  const user = await createUser(app);
  const bad = [
    { username: 'Upper Case', password: 'long enough' },
    { username: 'ok-name', password: 'short' },
    { username: 'ok-name2', password: 'long enough', role: 'root' },
    { username: 'ok-name3', password: 'long enough', balance: -5 },
    { username: 'ok-name4', password: 'long enough', balance: 1.5 },
  ];
  for (const payload of bad) {
    const res = await app.inject({ method: 'POST', url: '/api/v1/users', headers: bearer(admin), payload });
    assert.equal(res.statusCode, 400, JSON.stringify(payload));
    assert.match(res.headers['content-type'] as string, /problem\+json/);
  }
  const forbidden = await app.inject({
    method: 'POST',
    url: '/api/v1/users',
    headers: bearer(user.token),
    payload: { username: uniqueName(), password: 'long enough' },
  });
  assert.equal(forbidden.statusCode, 403);
  const rows = await testDb().db.execute(sql`select count(*)::int as n from users where username like 'ok-name%'`);
  assert.equal((rows.rows[0] as { n: number }).n, 0);
});

test('credit moves money through the ledger once per idempotency key', async (t) => {
  const app = await buildTestApp(t);
  const admin = await adminToken(app);
  const user = await createUser(app);
  const key = randomUUID();
  const credit = () =>
    app.inject({
      method: 'POST',
      url: `/api/v1/users/${user.id}/credit`,
      headers: { ...bearer(admin), 'idempotency-key': key },
      payload: { amount: 500, reason: 'top-up' },
    });
  const first = await credit();
  assert.equal(first.statusCode, 200);
  assert.equal(first.json().balance, 500);
  const second = await credit();
  assert.equal(second.statusCode, 200);
  assert.equal(second.json().entry.id, first.json().entry.id);
  assert.equal(await balanceOf(user.id), 500);

  const other = await app.inject({
    method: 'POST',
    url: `/api/v1/users/${user.id}/credit`,
    headers: bearer(admin),
    payload: { amount: 25, reason: 'bonus' },
  });
  assert.equal(other.json().balance, 525);
  // The keys: the admin's and the request's (the Idempotency-Key header, else a fresh UUID).
  const adminId = (await app.inject({ method: 'GET', url: '/api/v1/users/me', headers: bearer(admin) })).json<{ id: string }>().id;
  const keys = (await testDb().db.select().from(ledgerEntries).where(eq(ledgerEntries.userId, user.id))).map((e) => [e.amount, e.idempotencyKey]);
  assert.deepEqual(keys.find(([amount]) => amount === 500), [500, `credit-${adminId}-${key}`]);
  assert.match(String(keys.find(([amount]) => amount === 25)?.[1]), new RegExp(`^credit-${adminId}-[0-9a-f-]{36}$`));

  for (const payload of [{ amount: 0, reason: 'x' }, { amount: -5, reason: 'x' }, { amount: 2.5, reason: 'x' }, { amount: 5 }]) {
    const res = await app.inject({ method: 'POST', url: `/api/v1/users/${user.id}/credit`, headers: bearer(admin), payload });
    assert.equal(res.statusCode, 400, JSON.stringify(payload));
  }
  const byUser = await app.inject({ method: 'POST', url: `/api/v1/users/${user.id}/credit`, headers: bearer(user.token), payload: { amount: 5, reason: 'self' } });
  assert.equal(byUser.statusCode, 403);
  const unknown = await app.inject({ method: 'POST', url: `/api/v1/users/${randomUUID()}/credit`, headers: bearer(admin), payload: { amount: 5, reason: 'x' } });
  assert.equal(unknown.statusCode, 404);
  assert.equal(await balanceOf(user.id), 525);
});

test('the ledger lists the caller’s entries newest first, paginated', async (t) => {
  const app = await buildTestApp(t);
  const admin = await adminToken(app);
  const user = await createUser(app);
  const other = await createUser(app, { balance: 9 });
  for (const amount of [1, 2, 3]) {
    await app.inject({ method: 'POST', url: `/api/v1/users/${user.id}/credit`, headers: bearer(admin), payload: { amount, reason: `credit ${amount}` } });
  }
  const page1 = await app.inject({ method: 'GET', url: '/api/v1/users/me/ledger?pageSize=2', headers: bearer(user.token) });
  assert.equal(page1.statusCode, 200);
  assert.equal(page1.json().total, 3);
  assert.deepEqual(page1.json().items.map((e: { amount: number }) => e.amount), [3, 2]);
  const page2 = await app.inject({ method: 'GET', url: '/api/v1/users/me/ledger?pageSize=2&page=2', headers: bearer(user.token) });
  assert.deepEqual(page2.json().items.map((e: { amount: number; balanceAfter: number }) => [e.amount, e.balanceAfter]), [[1, 1]]);
  const tooBig = await app.inject({ method: 'GET', url: '/api/v1/users/me/ledger?pageSize=100000', headers: bearer(user.token) });
  assert.equal(tooBig.statusCode, 400);
  const otherLedger = await app.inject({ method: 'GET', url: '/api/v1/users/me/ledger', headers: bearer(other.token) });
  assert.deepEqual(otherLedger.json().items.map((e: { amount: number }) => e.amount), [9]);
});

test("someone else's user id answers 404; an admin sees it", async (t) => {
  const app = await buildTestApp(t);
  const alice = await createUser(app);
  const bob = await createUser(app);
  const peek = await app.inject({ method: 'GET', url: `/api/v1/users/${bob.id}`, headers: bearer(alice.token) });
  assert.equal(peek.statusCode, 404);
  const own = await app.inject({ method: 'GET', url: `/api/v1/users/${alice.id}`, headers: bearer(alice.token) });
  assert.equal(own.statusCode, 200);
  const admin = await app.inject({ method: 'GET', url: `/api/v1/users/${bob.id}`, headers: bearer(await adminToken(app)) });
  assert.equal(admin.json().username, bob.username);
  const badId = await app.inject({ method: 'GET', url: '/api/v1/users/not-a-uuid', headers: bearer(alice.token) });
  assert.equal(badId.statusCode, 400);
});

test('a balance never goes below zero: the ledger refuses, and so does the database', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 100 });
  const charge = (amount: number, reason: string) =>
    testDb().db.transaction((tx) => billing.chargeImage(tx, { userId: user.id, pullId: `pull-${randomUUID()}`, amount, reason }));
  await assert.rejects(charge(101, 'too much'), /cannot pay 101/);
  assert.equal(await balanceOf(user.id), 100);
  const { entry } = await charge(100, 'all of it');
  assert.equal(entry.balanceAfter, 0);
  await assert.rejects(
    testDb().db.execute(sql`update users set balance = -1 where id = ${user.id}`),
    (error: Error & { cause?: { constraint?: string } }) => {
      const constraint = (error as { constraint?: string }).constraint ?? error.cause?.constraint;
      assert.equal(constraint, 'users_balance_non_negative');
      return true;
    },
  );
  assert.equal(await balanceOf(user.id), 0);
});

test('concurrent movements with one idempotency key apply once', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app);
  const admin = await adminToken(app);
  const adminId = (await app.inject({ method: 'GET', url: '/api/v1/users/me', headers: bearer(admin) })).json<{ id: string }>().id;
  const requestKey = randomUUID();
  const results = await Promise.all(
    Array.from({ length: 5 }, () =>
      testDb().db.transaction((tx) => billing.credit(tx, { userId: user.id, adminId, amount: 40, reason: 'race', requestKey })),
    ),
  );
  assert.equal(results.filter((r) => r.applied).length, 1);
  assert.equal(await balanceOf(user.id), 40);
});
