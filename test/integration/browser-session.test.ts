/**
 * The console's browser session (api/plugins/browser-session.ts): the cookie a login sets, the
 * CSRF rules on cookie-authenticated requests (X-Berth-CSRF, Origin, Referer), logout, the
 * stats WebSocket opened by the cookie (and refused from another origin), bearer credentials
 * unaffected. Over real HTTP where cookies and Origin matter, as a browser sends them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { connectTemporal } from '../../core/temporal.js';
import { baseConfig, bearer, buildTestApp, createUser, type TestUser } from '../support/app.js';
import { pullHttpd, run } from '../support/containers.js';
import { eventually } from '../support/wait.js';
import type { App } from '../../api/app.js';

const CONSOLE = { 'x-berth-csrf': '1' };

/** The Set-Cookie of berth_session in a response, parsed: value and attributes (lowercase names). */
function sessionCookie(setCookie: string | string[] | undefined | null) {
  const all = Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [];
  const line = all.find((c) => c.startsWith('berth_session='));
  if (!line) return undefined;
  const [pair, ...attributes] = line.split(';').map((p) => p.trim());
  const value = pair!.slice('berth_session='.length);
  const attrs = new Map(attributes.map((a) => {
    const [k, ...v] = a.split('=');
    return [k!.toLowerCase(), v.join('=')] as const;
  }));
  return { value, attrs };
}

/** Signs `user` in as the console does; the cookie to send back (`berth_session=...`). */
async function consoleLogin(address: string, user: Pick<TestUser, 'username' | 'password'>): Promise<string> {
  const res = await fetch(`${address}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: address, ...CONSOLE },
    body: JSON.stringify({ username: user.username, password: user.password }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  const cookie = sessionCookie(res.headers.getSetCookie());
  assert.ok(cookie?.value, 'the login set the cookie');
  return `berth_session=${cookie.value}`;
}

async function listening(t: Parameters<typeof buildTestApp>[0], overrides: Parameters<typeof buildTestApp>[1] = {}): Promise<{ app: App; address: string }> {
  const app = await buildTestApp(t, overrides);
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, address };
}

test('login sets berth_session: httpOnly, SameSite=Strict, Path=/, its expiry; Secure only over HTTPS; the console gets no token in the body', async (t) => {
  const app = await buildTestApp(t, { trustProxy: ['127.0.0.1'] });
  const user = await createUser(app);
  const login = (headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/api/v1/auth/login', headers, payload: { username: user.username, password: user.password } });

  // An API client: the token in the body as before, and the cookie (which it may ignore).
  const api = await login();
  assert.equal(api.statusCode, 200, api.body);
  const body = api.json<{ token?: string; expiresAt: string; user: { username: string } }>();
  assert.equal(typeof body.token, 'string');
  const cookie = sessionCookie(api.headers['set-cookie']);
  assert.ok(cookie);
  assert.equal(cookie.value, body.token, 'the cookie carries a session token of the usual kind');
  assert.equal(cookie.attrs.get('path'), '/');
  assert.ok(cookie.attrs.has('httponly'));
  assert.equal(cookie.attrs.get('samesite'), 'Strict');
  assert.ok(!cookie.attrs.has('secure'), 'plain HTTP: not Secure');
  assert.equal(new Date(cookie.attrs.get('expires')!).getTime(), Math.floor(new Date(body.expiresAt).getTime() / 1000) * 1000);

  // The console (X-Berth-CSRF: 1): the cookie only.
  const web = await login(CONSOLE);
  assert.equal(web.statusCode, 200);
  assert.equal(web.json<{ token?: string }>().token, undefined, 'no token in the body');
  assert.equal(web.json<{ user: { username: string } }>().user.username, user.username);
  assert.ok(sessionCookie(web.headers['set-cookie'])?.value);

  // HTTPS as a trusted proxy says it: Secure. The same header from an untrusted address: not.
  const proxied = await login({ ...CONSOLE, 'x-forwarded-proto': 'https' });
  assert.ok(sessionCookie(proxied.headers['set-cookie'])!.attrs.has('secure'), 'behind a trusted HTTPS proxy: Secure');
  const untrusted = await buildTestApp(t);
  const spoofed = await untrusted.inject({
    method: 'POST',
    url: '/api/v1/auth/login',
    headers: { ...CONSOLE, 'x-forwarded-proto': 'https' },
    payload: { username: user.username, password: user.password },
  });
  assert.ok(!sessionCookie(spoofed.headers['set-cookie'])!.attrs.has('secure'), 'X-Forwarded-Proto is not believed without BERTH_TRUST_PROXY');

  // A page on another origin gets the token (to send as a bearer), never the cookie.
  const crossOrigin = await login({ ...CONSOLE, origin: 'http://elsewhere.example' });
  assert.equal(crossOrigin.statusCode, 200);
  assert.equal(sessionCookie(crossOrigin.headers['set-cookie']), undefined);
  assert.equal(typeof crossOrigin.json<{ token?: string }>().token, 'string');

  // A wrong password sets nothing.
  const wrong = await app.inject({ method: 'POST', url: '/api/v1/auth/login', headers: CONSOLE, payload: { username: user.username, password: 'wrong-password' } });
  assert.equal(wrong.statusCode, 401);
  assert.equal(sessionCookie(wrong.headers['set-cookie']), undefined);
});

test('the cookie: reads work; a mutating request needs X-Berth-CSRF: 1 and the API\'s own Origin (or Referer); bearer requests are unaffected', async (t) => {
  const { app, address } = await listening(t, { corsOrigins: ['http://console.example'] });
  const user = await createUser(app);
  const cookie = await consoleLogin(address, user);
  const quote = { memoryMb: 64, cpus: 0.5 };
  const post = (headers: Record<string, string>) =>
    fetch(`${address}/api/v1/containers/quote`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(quote) });

  const me = await fetch(`${address}/api/v1/users/me`, { headers: { cookie } });
  assert.equal(me.status, 200);
  assert.equal((await me.json()).username, user.username);

  const refused = async (headers: Record<string, string>, pattern: RegExp, what: string) => {
    const res = await post(headers);
    assert.equal(res.status, 403, what);
    assert.match(String(res.headers.get('content-type')), /^application\/problem\+json/, what);
    assert.match((await res.json()).detail, pattern, what);
  };
  await refused({ cookie }, /X-Berth-CSRF: 1/, 'no CSRF header');
  await refused({ cookie, origin: address }, /X-Berth-CSRF: 1/, 'its own Origin but no CSRF header');
  await refused({ cookie, 'x-berth-csrf': 'yes' }, /X-Berth-CSRF: 1/, 'a CSRF header of another value');
  await refused({ cookie, ...CONSOLE, origin: 'http://evil.example' }, /Origin is another site/, 'another Origin');
  await refused({ cookie, ...CONSOLE, origin: 'http://console.example' }, /Origin is another site/, 'an origin BERTH_CORS_ORIGINS lists: no cookie for it either');
  await refused({ cookie, ...CONSOLE, origin: address.replace('127.0.0.1', 'localhost') }, /Origin is another site/, 'the same port on another host name');
  await refused({ cookie, ...CONSOLE, origin: 'null' }, /Origin is another site/, 'an opaque origin');
  await refused({ cookie, ...CONSOLE, referer: 'http://evil.example/page' }, /Referer is another site/, 'no Origin, another Referer');
  const reads = await fetch(`${address}/api/v1/users/me`, { headers: { cookie, origin: 'http://evil.example' } });
  assert.equal(reads.status, 403, 'a read from another origin with the cookie is refused too');

  const sameOrigin: Array<Record<string, string>> = [{ origin: address }, { referer: `${address}/containers` }, {}];
  for (const headers of sameOrigin) {
    const ok = await post({ cookie, ...CONSOLE, ...headers });
    assert.equal(ok.status, 200, `${JSON.stringify(headers)}: ${await ok.clone().text()}`);
    assert.equal(typeof (await ok.json()).pricePerPeriod, 'number');
  }

  // The audit log names the user, as for a bearer session.
  const key = await fetch(`${address}/api/v1/users/me/api-keys`, {
    method: 'POST',
    headers: { cookie, ...CONSOLE, origin: address, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'from-the-console', scopes: ['images:read'] }),
  });
  assert.equal(key.status, 201, 'account routes need a session: the cookie is one');
  await eventually('the audit entry of the cookie-authenticated request', async () => {
    const audit = await fetch(`${address}/api/v1/users/me/audit?action=createApiKey`, { headers: { cookie } });
    const entries = (await audit.json()).items as Array<{ actorType: string; actorUserId: string; outcome: string }>;
    return entries.some((e) => e.actorType === 'user' && e.actorUserId === user.id && e.outcome === 'success');
  });

  // Bearer: no CSRF header needed, whatever the Origin (a browser never adds Authorization by itself).
  const viaBearer = await post({ ...bearer(user.token), origin: 'http://evil.example' });
  assert.equal(viaBearer.status, 200);
  // A bearer that does not work is not saved by a cookie beside it.
  assert.equal((await fetch(`${address}/api/v1/users/me`, { headers: { cookie, authorization: 'Bearer nonsense' } })).status, 401);

  // CORS as before: a listed origin gets CORS headers but never credentials; others get none.
  const preflight = await fetch(`${address}/api/v1/containers/quote`, {
    method: 'OPTIONS',
    headers: { origin: 'http://console.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-berth-csrf' },
  });
  assert.equal(preflight.headers.get('access-control-allow-origin'), 'http://console.example');
  assert.equal(preflight.headers.get('access-control-allow-credentials'), null);
  const stranger = await fetch(`${address}/api/v1/users/me`, { headers: { origin: 'http://evil.example', ...bearer(user.token) } });
  assert.equal(stranger.headers.get('access-control-allow-origin'), null);
});

test('logout revokes the session and clears the cookie: the old cookie is then a 401', async (t) => {
  const { app, address } = await listening(t);
  const user = await createUser(app);
  const cookie = await consoleLogin(address, user);
  const logout = await fetch(`${address}/api/v1/auth/logout`, { method: 'POST', headers: { cookie, ...CONSOLE, origin: address } });
  assert.equal(logout.status, 204);
  const cleared = sessionCookie(logout.headers.getSetCookie());
  assert.ok(cleared, 'the reply clears the cookie');
  assert.equal(cleared.value, '');
  assert.ok(new Date(cleared.attrs.get('expires')!).getTime() < Date.now());

  const after = await fetch(`${address}/api/v1/users/me`, { headers: { cookie } });
  assert.equal(after.status, 401);
  assert.match(String(after.headers.get('content-type')), /^application\/problem\+json/);
  assert.equal(sessionCookie(after.headers.getSetCookie())?.value, '', 'a cookie whose session ended is cleared');
  // Revoked server-side: the same token as a bearer is refused too.
  assert.equal((await fetch(`${address}/api/v1/users/me`, { headers: bearer(cookie.slice('berth_session='.length)) })).status, 401);
  // The user's other sessions live on.
  assert.equal((await fetch(`${address}/api/v1/users/me`, { headers: bearer(user.token) })).status, 200);
  // A cookie that was never a session, or that holds an API key, is a 401.
  assert.equal((await fetch(`${address}/api/v1/users/me`, { headers: { cookie: 'berth_session=made-up' } })).status, 401);
  const key = await app.inject({ method: 'POST', url: '/api/v1/users/me/api-keys', headers: bearer(user.token), payload: { name: 'k', scopes: ['images:read'] } });
  assert.equal((await fetch(`${address}/api/v1/users/me`, { headers: { cookie: `berth_session=${key.json<{ key: string }>().key}` } })).status, 401);
});

test('the stats WebSocket opens with the cookie from the console\'s origin, and is refused from another origin or without one', async (t) => {
  const temporal = await connectTemporal(baseConfig.temporal);
  t.after(() => temporal.connection.close());
  const { app, address } = await listening(t);
  const user = await createUser(app, { balance: 10_000 });
  const image = await pullHttpd(app, user);
  const c = await run(app, user, { imageId: image.id, memoryMb: 64 });
  t.after(() => temporal.workflow.getHandle(`container-${c.id}`).executeUpdate('remove').catch(() => undefined));
  const cookie = await consoleLogin(address, user);
  const url = `${address.replace('http', 'ws')}/api/v1/containers/${c.id}/stats`;

  const ws = new WebSocket(url, { headers: { cookie }, origin: address });
  const sample = await new Promise<Record<string, unknown>>((resolve, reject) => {
    ws.once('message', (data) => resolve(JSON.parse((data as Buffer).toString())));
    ws.once('error', reject);
  });
  assert.equal(typeof sample.cpuPercent, 'number');
  assert.equal(typeof sample.memoryUsage, 'number');
  ws.close();

  const refusal = (socket: WebSocket) =>
    new Promise<number>((resolve, reject) => {
      socket.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      socket.once('open', () => reject(new Error('the socket opened')));
    });
  assert.equal(await refusal(new WebSocket(url, { headers: { cookie }, origin: 'http://evil.example' })), 403, 'cross-site WebSocket hijacking');
  assert.equal(await refusal(new WebSocket(url, { headers: { cookie } })), 403, 'a cookie without an Origin');
  assert.equal(await refusal(new WebSocket(url, { origin: address })), 401, 'no cookie, no credential');
  // No token in a URL: a ?token= opens nothing.
  assert.ok([400, 401].includes(await refusal(new WebSocket(`${url}?token=${user.token}`, { origin: address }))), 'a token in the URL');
});
