/**
 * No secret in a URL or a log (issue 13, item 5): requests that carry every kind of secret go to
 * the stack's own API process over HTTP (every operation of its document among them), and then
 * every log file of the stack is read: no token, API key, password or ticket may appear in any.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import WebSocket from 'ws';
import { baseConfig } from '../support/app.js';
import { HTTPD } from '../support/containers.js';
import { stateDir } from '../support/stack.js';
import { eventually } from '../support/wait.js';

const API = `http://127.0.0.1:${process.env.BERTH_API_PORT ?? 8080}`;
const LOGS = join(stateDir, 'logs');

async function call(method: string, path: string, token?: string, body?: unknown) {
  const res = await fetch(`${API}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: () => JSON.parse(text) as Record<string, unknown> };
}

test('secrets sent to the running API (tokens, keys, passwords, tickets, in headers, bodies and URLs) appear in no log file of the stack', async () => {
  const secrets: string[] = [];
  const admin = (await call('POST', '/api/v1/auth/login', undefined, { username: baseConfig.admin.username, password: baseConfig.admin.password })).json().token as string;
  secrets.push(admin, baseConfig.admin.password!);
  const username = `logs-${randomUUID().slice(0, 8)}`;
  const password = `pw-${randomUUID()}`;
  secrets.push(password);
  assert.equal((await call('POST', '/api/v1/users', admin, { username, password, balance: 100_000 })).status, 201);
  const wrong = `wrong-${randomUUID()}`;
  secrets.push(wrong);
  assert.equal((await call('POST', '/api/v1/auth/login', undefined, { username, password: wrong })).status, 401);
  const token = (await call('POST', '/api/v1/auth/login', undefined, { username, password })).json().token as string;
  secrets.push(token);
  assert.equal((await call('GET', '/api/v1/users/me', token)).status, 200);
  // A token in a URL is not taken, and the URL as logged must not hold it.
  assert.equal((await call('GET', `/api/v1/users/me?access_token=${token}`)).status, 401);
  assert.equal((await call('GET', '/api/v1/users/me', `${token}x`)).status, 401);

  const key = (await call('POST', '/api/v1/users/me/api-keys', token, { name: 'logs', scopes: ['images:read', 'containers:write', 'containers:read'] })).json().key as string;
  secrets.push(key);
  assert.equal((await call('GET', '/api/v1/images', key)).status, 200);

  // A container, a stats ticket and a socket opened with it.
  const pulled = await call('POST', '/api/v1/images/pull?wait=true', token, { image: HTTPD, host: 'host-a' });
  assert.equal(pulled.status, 201);
  const created = await call('POST', '/api/v1/containers?wait=true', key, { imageId: pulled.json().id, memoryMb: 64 });
  assert.equal(created.status, 201);
  const id = created.json().id as string;
  try {
    const ticket = (await call('POST', `/api/v1/containers/${id}/stats/ticket`, key)).json().ticket as string;
    secrets.push(ticket);
    const ws = new WebSocket(`${API.replace('http', 'ws')}/api/v1/containers/${id}/stats?ticket=${ticket}`);
    await new Promise<void>((resolve, reject) => {
      ws.once('message', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`stats socket: ${res.statusCode}`)));
    });
    ws.close();
    // A used ticket in a URL again: refused, and logged without it.
    const again = await fetch(`${API}/api/v1/containers/${id}/stats?ticket=${ticket}`);
    assert.equal(again.status, 401);
  } finally {
    assert.equal((await call('DELETE', `/api/v1/containers/${id}`, key)).status, 200);
  }
  // Every operation of the document, with the key in its header and the token in its URL; a
  // mutating one with a field no route knows (a 400 before any handler: nothing changes).
  const doc = (await (await fetch(`${API}/docs/json`)).json()) as { paths: Record<string, Record<string, unknown>> };
  let operations = 0;
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const method of Object.keys(methods)) {
      const mutating = method !== 'get';
      const url = `${API}${path.replace(/\{[^}]+\}/g, randomUUID())}?access_token=${token}&ticket=${key}`;
      const res = await fetch(url, {
        method: method.toUpperCase(),
        headers: { authorization: `Bearer ${key}`, ...(mutating ? { 'content-type': 'application/json' } : {}) },
        body: mutating ? JSON.stringify({ zz_secret: password }) : undefined,
        redirect: 'manual',
        signal: AbortSignal.timeout(10_000),
      });
      await res.body?.cancel();
      assert.ok(res.status < 500, `${method} ${path}: ${res.status}`);
      operations++;
    }
  }
  assert.ok(operations >= 45, `${operations} operations`);

  const newPassword = `new-${randomUUID()}`;
  secrets.push(newPassword);
  assert.equal((await call('POST', '/api/v1/users/me/password', token, { currentPassword: password, newPassword })).status, 200);

  // The API logged these requests (its log has their ids): then no secret is in any log.
  const files = (await readdir(LOGS)).filter((f) => f.endsWith('.log'));
  assert.ok(files.includes('api.log'), files.join(', '));
  await eventually('the API to log the last request', async () => (await readFile(join(LOGS, 'api.log'))).includes('/api/v1/users/me/password'), 10);
  let bytes = 0;
  for (const file of files) {
    // As bytes: a log appended to across many runs can be longer than a string may be.
    const text = await readFile(join(LOGS, file));
    bytes += text.length;
    for (const secret of secrets) assert.ok(!text.includes(secret), `a secret (${secret.slice(0, 6)}…) is in ${file}`);
  }
  const api = await readFile(join(LOGS, 'api.log'));
  assert.ok(api.includes('access_token=[redacted]'), 'the URL is logged, its token redacted');
  assert.ok(api.includes('ticket=[redacted]'));
  assert.ok(bytes > 0);
});
