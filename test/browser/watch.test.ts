/**
 * The browser tests' watch (test/browser/support.ts) catches what it must, so that a console
 * test that passes means a clean console: a console error, an uncaught page error and a failed
 * answer of the API are problems, an answer the test allowed is not; the role recorder sees a
 * progress bar that was on the page for no frame at all. On the API's Swagger UI, which needs no
 * console.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONSOLE, openConsole, startBrowser } from './support.js';

const browser = await startBrowser();

test('the watch: console errors, page errors and unexpected API failures are problems; allowed answers are not', { timeout: 60_000 }, async (t) => {
  const session = await openConsole(t, browser);
  const { page } = session;

  await page.goto(`data:text/html,<script>console.error('boom from the page')</script>`);
  await page.goto(`data:text/html,<script>setTimeout(() => { throw new Error('thrown by the page') })</script>`);
  await page.waitForTimeout(200);
  assert.equal(session.problems.length, 2, session.problems.join('\n'));
  assert.match(session.problems[0]!, /^console error: boom from the page/);
  assert.match(session.problems[1]!, /^page error: Error: thrown by the page/);
  assert.throws(() => session.assertClean(), /boom from the page/);
  assert.deepEqual(session.problems, [], 'assertClean forgets what it reported');

  await page.goto(`${CONSOLE}/docs`);
  await page.getByText('Berth API').first().waitFor();
  const missing = '/api/v1/no-such-route';
  await page.evaluate((url) => fetch(url).then((r) => r.status), missing);
  await page.waitForTimeout(200);
  // The response and Chromium's console line for it.
  assert.equal(session.problems.length, 2, session.problems.join('\n'));
  assert.ok(session.problems.some((p) => p === `unexpected 404 for GET ${missing}`));
  assert.ok(session.problems.some((p) => /^console error: Failed to load resource: the server responded with a status of 404/.test(p)));
  session.problems.length = 0;

  const stop = session.allow(404, /^\/api\/v1\/no-such-route$/, 'GET');
  await page.evaluate((url) => fetch(url).then((r) => r.status), missing);
  await page.waitForTimeout(200);
  assert.deepEqual(session.problems, []);
  assert.deepEqual(session.allowed, [{ status: 404, method: 'GET', path: missing }]);
  stop();
  await page.evaluate((url) => fetch(url).then((r) => r.status), missing);
  await page.waitForTimeout(200);
  assert.equal(session.problems.length, 2, 'the allowance is gone');
  session.problems.length = 0;
});

test('the recorder sees a progress bar that came and went between two frames, and its value', { timeout: 30_000 }, async (t) => {
  const session = await openConsole(t, browser);
  const { page } = session;
  await page.goto(`${CONSOLE}/docs`);
  await page.evaluate(() => {
    const bar = document.createElement('div');
    bar.setAttribute('role', 'progressbar');
    bar.setAttribute('aria-valuenow', '0');
    document.body.append(bar);
    bar.setAttribute('aria-valuenow', '40');
    return new Promise<void>((resolve) =>
      queueMicrotask(() => {
        bar.remove();
        resolve();
      }),
    );
  });
  const seen = await session.seen();
  assert.ok(seen.roles.includes('progressbar'));
  assert.ok(seen.progress.includes(40), `values: ${seen.progress.join(', ')}`);
});
