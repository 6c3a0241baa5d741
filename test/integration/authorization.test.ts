/**
 * The authorization matrix (issue 13, item 9a), generated from the OpenAPI document: every
 * operation × {no token, malformed token, revoked token, disabled user, another user, owner,
 * admin, API key without the scope} with the status each must get. A new route is in the
 * document, so it is in the matrix; core/scopes.ts says what it needs.
 *
 * Requests go over HTTP to the app listening on 127.0.0.1. A mutating request carries a body
 * field no route knows: once past authentication and authorization it is a 400 before any
 * handler runs, so the matrix changes nothing. Reads run for real, on the owner's things.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { SCOPES, requirementOf, type Requirement } from '../../core/scopes.js';
import { adminToken, bearer, buildTestApp, createUser, login } from '../support/app.js';
import { BUSYBOX, cleanupScope, idler, pull, run } from '../support/containers.js';
import { pullRequest, waitForPull } from '../support/images.js';

type Identity = 'none' | 'malformed' | 'revoked' | 'disabled' | 'other' | 'owner' | 'admin' | 'keyWithoutScope';
const IDENTITIES: Identity[] = ['none', 'malformed', 'revoked', 'disabled', 'other', 'owner', 'admin', 'keyWithoutScope'];

interface Operation {
  method: string;
  path: string;
  id: string;
  public: boolean;
}

test('authorization matrix: every operation of the document × 8 callers', async (t) => {
  const scope = cleanupScope(t);
  const app = await buildTestApp(scope);
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const admin = await adminToken(app);

  // The owner's things: an image, a finished pull, a running container, an API key, a session.
  const owner = await createUser(app, { balance: 100_000 });
  const imageId = await pull(app, owner, BUSYBOX, 'host-a');
  const started = await pullRequest(app, owner.token, { image: BUSYBOX, host: 'host-a' }, false);
  const pullId = started.json<{ pullId?: string }>().pullId ?? '';
  if (pullId) await waitForPull(app, owner.token, pullId);
  const container = await run(app, owner, idler(imageId));
  scope.after(() => app.inject({ method: 'DELETE', url: `/api/v1/containers/${container.id}`, headers: bearer(owner.token) }));
  const ownKey = (await app.inject({ method: 'POST', url: '/api/v1/users/me/api-keys', headers: bearer(owner.token), payload: { name: 'own', scopes: ['dcu'] } })).json<{ id: string }>().id;
  const sessions = (await app.inject({ method: 'GET', url: '/api/v1/users/me/sessions', headers: bearer(owner.token) })).json<{ items: Array<{ id: string }> }>();
  const sessionId = sessions.items[0]!.id;

  const other = await createUser(app);
  const revoked = await login(app, owner.username, owner.password);
  assert.equal((await app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: bearer(revoked) })).statusCode, 204);
  const disabledUser = await createUser(app);
  assert.equal((await app.inject({ method: 'PATCH', url: `/api/v1/users/${disabledUser.id}`, headers: bearer(admin), payload: { disabled: true } })).statusCode, 200);

  // One key per scope a route may need: every scope but that one (and admin), the owner's.
  const keysWithout = new Map<string, string>();
  for (const missing of SCOPES) {
    const scopes = SCOPES.filter((s) => s !== missing && s !== 'admin');
    const res = await app.inject({ method: 'POST', url: '/api/v1/users/me/api-keys', headers: bearer(owner.token), payload: { name: `without-${missing}`, scopes } });
    assert.equal(res.statusCode, 201, res.body);
    keysWithout.set(missing, res.json<{ key: string }>().key);
  }

  const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json<{ paths: Record<string, Record<string, { operationId: string; security?: unknown[] }>> }>();
  const operations: Operation[] = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({ method: method.toUpperCase(), path, id: op.operationId, public: Array.isArray(op.security) && op.security.length === 0 })),
  );
  assert.ok(operations.length >= 45, `${operations.length} operations`);

  /** A path parameter's value: the owner's thing where there is one, else an id that names nothing. */
  const fill = (path: string) =>
    path
      .replace(/^\/api\/v1\/images\/\{id\}/, `/api/v1/images/${imageId}`)
      .replace(/^\/api\/v1\/containers\/\{id\}/, `/api/v1/containers/${container.id}`)
      .replace('/api/v1/users/me/sessions/{id}', `/api/v1/users/me/sessions/${sessionId}`)
      .replace('/api/v1/users/me/api-keys/{id}', `/api/v1/users/me/api-keys/${ownKey}`)
      .replace(/^\/api\/v1\/users\/\{id\}/, `/api/v1/users/${owner.id}`)
      .replace('/api/v1/hosts/{id}', '/api/v1/hosts/host-a')
      .replace('{pullId}', pullId)
      .replace('{operation}', 'stop')
      .replace(/\{[^}]+\}/g, randomUUID());
  /** Paths whose parameter names the owner's own thing (another user must not see it). */
  const ownersThing = (path: string) => /^\/api\/v1\/(images|containers)\/\{(id|pullId)\}|^\/api\/v1\/images\/pulls\/\{pullId\}|^\/api\/v1\/users\/\{id\}$/.test(path);

  const headersFor = (who: Identity, requirement: Requirement): Record<string, string> => {
    switch (who) {
      case 'none':
        return {};
      case 'malformed':
        return { authorization: 'Bearer not a token' };
      case 'revoked':
        return bearer(revoked);
      case 'disabled':
        return bearer(disabledUser.token);
      case 'other':
        return bearer(other.token);
      case 'owner':
        return bearer(owner.token);
      case 'admin':
        return bearer(admin);
      case 'keyWithoutScope':
        return bearer(keysWithout.get('scope' in requirement ? requirement.scope : 'admin')!);
    }
  };

  /** The status each caller must get, or 'allowed' (anything but 401 and 403) or 'ok' (2xx/3xx). */
  function expected(op: Operation, who: Identity, requirement: Requirement): number | 'allowed' | 'ok' {
    const mutating = op.method !== 'GET';
    // Past authentication and authorization, a mutating request's unknown field is a 400.
    const passed = mutating ? 400 : 'allowed';
    if (op.public) return who === 'none' || who === 'malformed' ? (mutating ? 400 : 'ok') : mutating ? 400 : 'allowed';
    if (who === 'none' || who === 'malformed' || who === 'revoked' || who === 'disabled') return 401;
    const adminOnly = 'scope' in requirement && requirement.scope === 'admin';
    if (who === 'keyWithoutScope') return 'any' in requirement ? passed : 403;
    if (adminOnly && who !== 'admin') return 403;
    // The WebSocket without the upgrade is a 426 once authenticated; whose container it is is
    // checked after the upgrade (close code 4404: test/integration/streams.test.ts).
    if (op.id === 'streamContainerStats') return 426;
    if (who === 'other' && !mutating && ownersThing(op.path)) return 404;
    if ((who === 'owner' || who === 'admin') && !mutating && ownersThing(op.path)) return 'ok';
    return passed;
  }

  let cells = 0;
  const failures: string[] = [];
  for (const op of operations) {
    const fastifyPath = op.path.replace(/\{([^}]+)\}/g, ':$1');
    const requirement = requirementOf(op.method, fastifyPath);
    for (const who of IDENTITIES) {
      const want = expected(op, who, requirement);
      const mutating = op.method !== 'GET';
      const res = await fetch(`${address}${fill(op.path)}`, {
        method: op.method,
        headers: { ...headersFor(who, requirement), ...(mutating ? { 'content-type': 'application/json' } : {}) },
        body: mutating ? JSON.stringify({ zz_matrix: 1 }) : undefined,
        redirect: 'manual',
        signal: AbortSignal.timeout(10_000),
      });
      await res.body?.cancel(); // a stream (logs, events) is not read
      const got = res.status;
      const ok =
        want === 'allowed' ? got !== 401 && got !== 403 && got < 500 : want === 'ok' ? got >= 200 && got < 400 : got === want;
      if (!ok) failures.push(`${op.method} ${op.path} (${op.id}) as ${who}: ${got}, expected ${want}`);
      cells++;
    }
  }
  t.diagnostic(`${operations.length} operations × ${IDENTITIES.length} callers = ${cells} cells`);
  assert.deepEqual(failures, []);
});
