import { test } from 'node:test';
import assert from 'node:assert/strict';
import { baseConfig, bearer, buildTestApp, createUser } from '../support/app.js';
import { buildApp } from '../../api/app.js';
import { connectDatabase } from '../../db/client.js';
import { connectTemporal } from '../../core/temporal.js';

test('healthz and readyz answer without a token; readyz checks the database and Temporal', async (t) => {
  const app = await buildTestApp(t);
  const health = await app.inject({ method: 'GET', url: '/healthz' });
  assert.deepEqual(health.json(), { status: 'ok' });
  const ready = await app.inject({ method: 'GET', url: '/readyz' });
  assert.equal(ready.statusCode, 200);
  assert.deepEqual(ready.json(), { status: 'ready', checks: { database: { status: 'ok' }, temporal: { status: 'ok' } } });
});

test('readyz is a 503 naming the part that is down; healthz still answers', async (t) => {
  // A real PostgreSQL client pointed at a port where nothing listens.
  const database = connectDatabase('postgres://berth:berth@127.0.0.1:1/berth', { max: 1 });
  const temporal = await connectTemporal(baseConfig.temporal);
  const app = await buildApp({ config: baseConfig, db: database.db, temporal });
  t.after(async () => {
    await app.close();
    await temporal.connection.close();
    await database.close();
  });
  const ready = await app.inject({ method: 'GET', url: '/readyz' });
  assert.equal(ready.statusCode, 503, ready.body);
  const body = ready.json();
  assert.equal(body.status, 'not ready');
  assert.equal(body.checks.database.status, 'down');
  assert.match(body.checks.database.error, /ECONNREFUSED|connect/i);
  assert.deepEqual(body.checks.temporal, { status: 'ok' });
  assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
});

test('every response carries a request id, echoing the caller’s', async (t) => {
  const app = await buildTestApp(t);
  const generated = await app.inject({ method: 'GET', url: '/healthz' });
  assert.match(generated.headers['x-request-id'] as string, /^[0-9a-f-]{36}$/);
  const echoed = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'trace-123' } });
  assert.equal(echoed.headers['x-request-id'], 'trace-123');
});

test('errors are problem+json: unknown route, malformed JSON, wrong content type', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app);
  const unknown = await app.inject({ method: 'GET', url: '/api/v1/nothing-here', headers: bearer(user.token) });
  assert.equal(unknown.statusCode, 404);
  assert.match(unknown.headers['content-type'] as string, /^application\/problem\+json/);
  assert.deepEqual(Object.keys(unknown.json()).sort(), ['detail', 'instance', 'requestId', 'status', 'title', 'type']);

  const malformed = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/login',
    headers: { 'content-type': 'application/json' },
    payload: '{"username": ',
  });
  assert.equal(malformed.statusCode, 400);
  assert.equal(malformed.json().title, 'Bad Request');
  const wrongType = await app.inject({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'text/csv' }, payload: 'a,b' });
  assert.equal(wrongType.statusCode, 415);
  assert.doesNotMatch(malformed.body + wrongType.body, /at .*\.ts:\d+/, 'no stack traces');
});

test('the OpenAPI document and Swagger UI are public', async (t) => {
  const app = await buildTestApp(t);
  const doc = await app.inject({ method: 'GET', url: '/docs/json' });
  assert.equal(doc.statusCode, 200);
  const spec = doc.json();
  assert.match(spec.openapi, /^3\./);
  for (const path of ['/api/v1/auth/login', '/api/v1/users/me', '/api/v1/users/{id}/credit', '/api/v1/hosts/{id}/ping']) {
    assert.ok(spec.paths[path], `${path} is documented`);
  }
  // test/integration/openapi.test.ts checks what the document says.
  const ui = await app.inject({ method: 'GET', url: '/docs' });
  assert.ok([200, 302].includes(ui.statusCode));
});

test('security headers on every response: a strict policy for the API, Swagger UI its own under /docs', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app);
  const api = [
    await app.inject({ method: 'GET', url: '/healthz' }),
    await app.inject({ method: 'GET', url: '/api/v1/users/me', headers: bearer(user.token) }),
    await app.inject({ method: 'GET', url: '/api/v1/users/me' }), // 401 from the auth hook
    await app.inject({ method: 'GET', url: '/api/v1/containers?host=%00' }), // 400 before authentication
    await app.inject({ method: 'GET', url: '/api/v1/nothing-here' }), // 404
    await app.inject({ method: 'GET', url: '/api/dcu/health' }),
  ];
  for (const res of api) {
    assert.equal(res.headers['content-security-policy'], "default-src 'none';base-uri 'none';form-action 'none';frame-ancestors 'none'", res.body);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['x-frame-options'], 'DENY');
    assert.equal(res.headers['referrer-policy'], 'no-referrer');
    assert.ok(res.headers['strict-transport-security']);
  }
  for (const url of ['/docs/', '/docs/static/swagger-ui-bundle.js', '/docs/json']) {
    const res = await app.inject({ method: 'GET', url });
    assert.equal(res.statusCode, 200, url);
    const csp = String(res.headers['content-security-policy']);
    assert.match(csp, /script-src 'self';/, `${url}: scripts from /docs only, none inline`);
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
  }
  // Swagger UI keeps the token for the page's life only (not in localStorage).
  const initializer = await app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' });
  assert.match(initializer.body, /"persistAuthorization":false/);
});

test('CORS: no CORS headers unless BERTH_CORS_ORIGINS lists the exact origin', async (t) => {
  const closed = await buildTestApp(t);
  const preflight = { 'access-control-request-method': 'DELETE', 'access-control-request-headers': 'authorization' };
  for (const res of [
    await closed.inject({ method: 'GET', url: '/healthz', headers: { origin: 'http://127.0.0.1:3000' } }),
    await closed.inject({ method: 'OPTIONS', url: '/api/v1/containers', headers: { origin: 'http://127.0.0.1:3000', ...preflight } }),
  ]) {
    assert.deepEqual(Object.keys(res.headers).filter((h) => h.startsWith('access-control-')), [], 'no CORS headers at all');
  }

  const open = await buildTestApp(t, { corsOrigins: ['http://127.0.0.1:3000'] });
  const user = await createUser(open);
  const allowed = await open.inject({ method: 'GET', url: '/api/v1/users/me', headers: { origin: 'http://127.0.0.1:3000', ...bearer(user.token) } });
  assert.equal(allowed.statusCode, 200);
  assert.equal(allowed.headers['access-control-allow-origin'], 'http://127.0.0.1:3000');
  assert.match(String(allowed.headers['access-control-expose-headers']), /x-request-id/);
  // A preflight carries no token: it is answered before authentication.
  const ok = await open.inject({ method: 'OPTIONS', url: '/api/v1/containers/x', headers: { origin: 'http://127.0.0.1:3000', ...preflight } });
  assert.equal(ok.statusCode, 204);
  assert.equal(ok.headers['access-control-allow-origin'], 'http://127.0.0.1:3000');
  assert.match(String(ok.headers['access-control-allow-methods']), /DELETE/);
  for (const origin of ['http://127.0.0.1:3001', 'https://127.0.0.1:3000', 'http://evil.example']) {
    const other = await open.inject({ method: 'GET', url: '/api/v1/users/me', headers: { origin, ...bearer(user.token) } });
    assert.equal(other.headers['access-control-allow-origin'], undefined, origin);
    const refused = await open.inject({ method: 'OPTIONS', url: '/api/v1/containers/x', headers: { origin, ...preflight } });
    assert.equal(refused.headers['access-control-allow-origin'], undefined, origin);
  }
});

test('mutating routes are rate limited per user with Retry-After', async (t) => {
  const app = await buildTestApp(t, { rateLimit: { max: 2, windowMs: 60_000 } });
  const alice = await createUser(app);
  const bob = await createUser(app);
  // A mutating route a user may call, answered by its handler (no such container): 404 until the limit.
  const post = (token: string) =>
    app.inject({ method: 'POST', url: '/api/v1/containers/00000000-0000-4000-8000-000000000000/stop', headers: bearer(token) });
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push((await post(alice.token)).statusCode);
  assert.deepEqual(statuses, [404, 404, 429]);
  const limited = await post(alice.token);
  assert.equal(limited.statusCode, 429);
  assert.ok(Number(limited.headers['retry-after']) > 0);
  assert.match(limited.headers['content-type'] as string, /problem\+json/);
  assert.equal((await post(bob.token)).statusCode, 404, "another user's budget is separate");
  const reads = await app.inject({ method: 'GET', url: '/api/v1/users/me', headers: bearer(alice.token) });
  assert.equal(reads.statusCode, 200, 'reads are not limited');
});
