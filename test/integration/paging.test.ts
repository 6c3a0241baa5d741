/** Every list route pages through repositories/paging.ts: one query with the count beside the rows. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adminToken, bearer, buildTestApp, createUser } from '../support/app.js';

test('a page has its rows and the count of all, on every page, past the last one and for an empty list', async (t) => {
  const app = await buildTestApp(t);
  const admin = await adminToken(app);
  const user = await createUser(app, { balance: 10 }); // the opening balance: one entry
  for (let i = 1; i <= 4; i++) {
    const res = await app.inject({ method: 'POST', url: `/api/v1/users/${user.id}/credit`, headers: bearer(admin), payload: { amount: i, reason: `paging ${i}` } });
    assert.equal(res.statusCode, 200, res.body);
  }
  const ledger = async (page: number, pageSize: number) => {
    const res = await app.inject({ method: 'GET', url: `/api/v1/users/me/ledger?page=${page}&pageSize=${pageSize}`, headers: bearer(user.token) });
    assert.equal(res.statusCode, 200, res.body);
    return res.json<{ items: Array<{ amount: number }>; total: number; page: number; pageSize: number }>();
  };
  const first = await ledger(1, 2);
  assert.equal(first.total, 5);
  assert.deepEqual(first.items.map((e) => e.amount), [4, 3], 'newest first');
  assert.deepEqual((await ledger(2, 2)).items.map((e) => e.amount), [2, 1]);
  const last = await ledger(3, 2);
  assert.equal(last.total, 5);
  assert.deepEqual(last.items.map((e) => e.amount), [10]);
  const past = await ledger(4, 2);
  assert.deepEqual(past.items, [], 'past the last page: no rows');
  assert.equal(past.total, 5, 'and still the count');
  assert.deepEqual(Object.keys(first.items[0]!).sort(), Object.keys(last.items[0]!).sort());
  assert.ok(!Object.keys(first.items[0]!).some((k) => k.includes('Total')), 'the window column is not an entry field');

  const empty = await app.inject({ method: 'GET', url: '/api/v1/containers', headers: bearer(user.token) });
  assert.equal(empty.statusCode, 200, empty.body);
  const { items, total } = empty.json<{ items: unknown[]; total: number }>();
  assert.deepEqual({ items, total }, { items: [], total: 0 }, 'an empty list: no rows, a count of 0');
});
