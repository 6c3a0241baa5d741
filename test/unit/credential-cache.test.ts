/** The credential cache's rules (services/credential-cache.ts), without its LISTEN connection. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCredentialStore } from '../../services/credential-cache.js';
import type { Principal } from '../../services/auth.js';

const user = (id: string) => ({ id, username: id, role: 'user' as const, balance: 0, createdAt: new Date(0) });
const session = (userId: string, sessionId = `s-${userId}`): Principal => ({ kind: 'session', user: user(userId), sessionId });
const NOW = 1_000_000;

function activeStore(ttlMs = 10_000, maxEntries?: number) {
  const store = createCredentialStore({ ttlMs, ...(maxEntries ? { maxEntries } : {}) });
  store.setActive(true);
  return store;
}

test('an entry is served until its TTL, and never past the credential’s expiry', () => {
  const store = activeStore(10_000);
  store.set('a', { principal: session('u1'), expiresAt: null, touchedAt: null }, store.generation(), NOW);
  store.set('b', { principal: session('u2'), expiresAt: new Date(NOW + 3000), touchedAt: null }, store.generation(), NOW);
  assert.equal(store.get('a', NOW + 9_999)?.principal.user.id, 'u1');
  assert.equal(store.get('a', NOW + 10_000), undefined, 'the TTL has passed');
  assert.equal(store.get('b', NOW + 2_999)?.principal.user.id, 'u2');
  assert.equal(store.get('b', NOW + 3_000), undefined, 'the credential expired before the TTL');
});

test('evicting a user drops all of their entries and no one else’s', () => {
  const store = activeStore();
  const g = store.generation();
  store.set('s1', { principal: session('u1', 's1'), expiresAt: null, touchedAt: null }, g, NOW);
  store.set('k1', { principal: { kind: 'api_key', user: user('u1'), keyId: 'k1', scopes: [] }, expiresAt: null, touchedAt: null }, g, NOW);
  store.set('s2', { principal: session('u2', 's2'), expiresAt: null, touchedAt: null }, g, NOW);
  store.evictUser('u1');
  assert.equal(store.get('s1', NOW), undefined);
  assert.equal(store.get('k1', NOW), undefined);
  assert.equal(store.get('s2', NOW)?.principal.user.id, 'u2');
});

test('a lookup that began before an eviction is not cached (it may have read the credential before its revocation)', () => {
  const store = activeStore();
  const before = store.generation();
  store.evictUser('u1'); // a revocation committed while the lookup was in flight
  store.set('s1', { principal: session('u1'), expiresAt: null, touchedAt: null }, before, NOW);
  assert.equal(store.get('s1', NOW), undefined);
  store.set('s1', { principal: session('u1'), expiresAt: null, touchedAt: null }, store.generation(), NOW);
  assert.ok(store.get('s1', NOW), 'a lookup begun after it is cached');
});

test('while not listening nothing is cached or served, and going down drops everything', () => {
  const store = createCredentialStore({ ttlMs: 10_000 });
  store.set('s1', { principal: session('u1'), expiresAt: null, touchedAt: null }, store.generation(), NOW);
  store.setActive(true);
  assert.equal(store.get('s1', NOW), undefined, 'set before listening was ignored');
  const g = store.generation();
  store.set('s1', { principal: session('u1'), expiresAt: null, touchedAt: null }, g, NOW);
  assert.ok(store.get('s1', NOW));
  store.setActive(false);
  assert.equal(store.get('s1', NOW), undefined);
  store.setActive(true);
  assert.equal(store.get('s1', NOW), undefined, 'what was cached before the connection went down is gone');
  store.set('s2', { principal: session('u2'), expiresAt: null, touchedAt: null }, g, NOW);
  assert.equal(store.get('s2', NOW), undefined, 'a lookup begun before the connection went down is not cached');
});

test('the cache holds at most maxEntries, dropping the oldest', () => {
  const store = activeStore(10_000, 2);
  for (const id of ['a', 'b', 'c']) store.set(id, { principal: session(id), expiresAt: null, touchedAt: null }, store.generation(), NOW);
  assert.equal(store.size, 2);
  assert.equal(store.get('a', NOW), undefined);
  assert.ok(store.get('b', NOW) && store.get('c', NOW));
});
