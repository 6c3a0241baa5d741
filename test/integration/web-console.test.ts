/**
 * The web console served by the API at / (api/plugins/web-console.ts), from a small build made
 * here in a temporary folder (BERTH_WEB_DIR): its files and cache headers, the SPA fallback, the
 * API's paths left alone, its content security policy, no file outside the build, and a plain
 * note when there is no build.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTestApp } from '../support/app.js';

const INDEX = '<!doctype html><html><head><script type="module" src="/assets/index-abc123.js"></script></head><body><div id="root"></div></body></html>';

async function fakeBuild(t: { after: (fn: () => unknown) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-web-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'assets'));
  await writeFile(join(dir, 'index.html'), INDEX);
  await writeFile(join(dir, 'assets', 'index-abc123.js'), 'console.log("berth");\n');
  await writeFile(join(dir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  await writeFile(join(dir, '.env'), 'SECRET=1\n');
  // A file beside the build that must never be served.
  await writeFile(join(dir, '..', `${dir.split('/').pop()}-secret.txt`), 'outside\n');
  t.after(() => rm(join(dir, '..', `${dir.split('/').pop()}-secret.txt`), { force: true }));
  return dir;
}

const PAGE = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

/** A raw GET (the path as written, not normalised by a URL parser). */
function rawGet(address: string, path: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(address);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, path, headers: PAGE }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the console: index.html at / and for its routes (no-cache), hashed assets cached for a year, its own CSP', async (t) => {
  const app = await buildTestApp(t, { webDir: await fakeBuild(t) });
  const csp = (res: { headers: Record<string, unknown> }) => String(res.headers['content-security-policy']);

  for (const url of ['/', '/signin', '/containers/6f1c0a4e-0000-4000-8000-000000000000', '/admin/users', '/dcu?state=failed']) {
    const res = await app.inject({ method: 'GET', url, headers: PAGE });
    assert.equal(res.statusCode, 200, url);
    assert.equal(res.body, INDEX, url);
    assert.match(String(res.headers['content-type']), /^text\/html/, url);
    assert.equal(res.headers['cache-control'], 'no-cache', url);
    assert.match(csp(res), /script-src 'self'(;|$)/, url);
    assert.match(csp(res), /connect-src 'self'(;|$)/, url);
    assert.match(csp(res), /default-src 'self'/, url);
    assert.doesNotMatch(csp(res), /script-src[^;]*unsafe-inline/, `${url}: no inline script`);
    assert.equal(res.headers['x-frame-options'], 'DENY', `${url}: helmet's other headers stay`);
  }
  // `/` is the console whatever the client accepts (curl sends */*).
  assert.equal((await app.inject({ method: 'GET', url: '/' })).body, INDEX);
  assert.equal((await app.inject({ method: 'HEAD', url: '/containers', headers: PAGE })).statusCode, 200);

  const asset = await app.inject({ method: 'GET', url: '/assets/index-abc123.js' });
  assert.equal(asset.statusCode, 200);
  assert.match(String(asset.headers['content-type']), /javascript/);
  assert.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable');
  assert.ok(asset.headers.etag, 'an ETag to revalidate with');
  const favicon = await app.inject({ method: 'GET', url: '/favicon.svg' });
  assert.equal(favicon.statusCode, 200);
  assert.equal(favicon.headers['cache-control'], 'no-cache');

  // What is not a file and not a page: the API's 404 problem (a stale asset, a fetch of a console route).
  for (const [url, headers] of [['/assets/index-old.js', {}], ['/containers/x', { accept: 'application/json' }], ['/.env', PAGE]] as const) {
    const res = await app.inject({ method: 'GET', url, headers });
    assert.equal(res.statusCode, url === '/.env' ? 200 : 404, url);
    if (url === '/.env') assert.equal(res.body, INDEX, 'a dotfile is never served: the page instead');
    else assert.match(String(res.headers['content-type']), /^application\/problem\+json/, url);
  }
  // Only GET and HEAD.
  assert.equal((await app.inject({ method: 'POST', url: '/containers', headers: PAGE })).statusCode, 404);
});

test("the API's paths are never the console's: /api (and the DCU's envelope), /docs, /metrics, /healthz, /readyz", async (t) => {
  const app = await buildTestApp(t, { webDir: await fakeBuild(t) });
  for (const url of ['/api', '/api/v1', '/api/v1/nothing', '/docs/nothing', '/metrics/x', '/healthz/x', '/readyz/x']) {
    const res = await app.inject({ method: 'GET', url, headers: PAGE });
    assert.equal(res.statusCode, 404, url);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/, url);
    assert.match(String(res.headers['content-security-policy']), /default-src 'none'/, `${url}: the API's policy`);
  }
  const dcu = await app.inject({ method: 'GET', url: '/api/dcu/nothing', headers: PAGE });
  assert.equal(dcu.statusCode, 404);
  assert.deepEqual(Object.keys(dcu.json()).sort(), ['code', 'data', 'message', 'status'], 'the DCU envelope');
  assert.equal((await app.inject({ method: 'GET', url: '/api/v1/users/me', headers: PAGE })).statusCode, 401, 'routes as before');
  assert.equal((await app.inject({ method: 'GET', url: '/healthz', headers: PAGE })).json().status, 'ok');
  assert.match((await app.inject({ method: 'GET', url: '/metrics' })).body, /^# HELP/m);
  const docs = await app.inject({ method: 'GET', url: '/docs/', headers: PAGE });
  assert.equal(docs.statusCode, 200);
  assert.notEqual(docs.body, INDEX, 'Swagger UI, not the console');
  assert.match(String(docs.headers['content-security-policy']), /style-src 'self' 'unsafe-inline'/, "Swagger UI's own policy");
  // The console is no operation of the OpenAPI document.
  const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json<{ paths: Record<string, unknown> }>();
  assert.deepEqual(Object.keys(doc.paths).filter((p) => !/^\/(api|docs|metrics|healthz|readyz)(\/|$)/.test(p)), []);
});

test('no file outside the build, however the path is written', async (t) => {
  const dir = await fakeBuild(t);
  const app = await buildTestApp(t, { webDir: dir });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const secret = `${dir.split('/').pop()}-secret.txt`;
  for (const path of [`/../${secret}`, `/assets/../../${secret}`, `/%2e%2e/${secret}`, `/..%2f${secret}`, `/assets/..%2f..%2f${secret}`, '/%2e%2e%2f%2e%2e%2fetc%2fpasswd', '/%00']) {
    const res = await rawGet(address, path);
    assert.doesNotMatch(res.body, /outside|root:/, `${path}: ${res.status}`);
  }
});

test('without a build, / says how to make one (503, plain text); a build made later is served without a restart', async (t) => {
  const dir = join(await mkdtemp(join(tmpdir(), 'berth-web-missing-')), 'dist');
  t.after(() => rm(join(dir, '..'), { recursive: true, force: true }));
  const app = await buildTestApp(t, { webDir: dir });
  for (const url of ['/', '/containers']) {
    const res = await app.inject({ method: 'GET', url, headers: PAGE });
    assert.equal(res.statusCode, 503, url);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.match(res.body, /npm run web:build/);
    assert.match(res.body, /BERTH_WEB_DIR/);
  }
  assert.equal((await app.inject({ method: 'GET', url: '/assets/index-abc123.js' })).statusCode, 404);

  await mkdir(join(dir, 'assets'), { recursive: true });
  await writeFile(join(dir, 'index.html'), INDEX);
  const built = await app.inject({ method: 'GET', url: '/', headers: PAGE });
  assert.equal(built.statusCode, 200);
  assert.equal(built.body, INDEX);
});
