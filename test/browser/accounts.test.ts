/**
 * The console's accounts in a real Chromium (issue 16, item 6): signing in (a wrong password, then
 * the keyboard), the navigation of a user and of an admin, an admin crediting a user whose open
 * page then shows the new balance, the admin pages, and signing out (the old session cookie is
 * then refused by the API).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { eventually } from '../support/wait.js';
import { CONSOLE, SESSION_COOKIE, apiOk, control, createUser, formWith, go, money, nav, openConsole, rowWith, signIn, signedIn, startBrowser, views } from './support.js';

const browser = await startBrowser();
const USER_LINKS = ['Dashboard', 'Images', 'Containers', 'DCU', 'Ledger'];
const ADMIN_LINKS = ['Users', 'Hosts', 'Releases'];

test('Sign in: a wrong password is an alert on the sign-in page; the right one, typed with the keyboard, opens the dashboard with the balance and a user’s navigation', { timeout: 90_000 }, async (t) => {
  const carol = await createUser({ balance: 12_345, prefix: 'carol' });
  const session = await openConsole(t, browser);
  const { page } = session;
  session.allow(401, /^\/api\/v1\/users\/me(\?|$)/, 'GET');
  session.allow(401, /^\/api\/v1\/auth\/login$/, 'POST');
  await page.goto(`${CONSOLE}/`);
  await page.waitForURL(`${CONSOLE}/signin`);
  await views(page, 'signin');

  await page.getByLabel('Username', { exact: true }).fill(carol.username);
  await page.getByLabel('Password', { exact: true }).fill(`wrong-${randomUUID()}`);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor();
  assert.ok((await alert.innerText()).trim().length > 0, 'the alert says what went wrong');
  assert.equal(page.url(), `${CONSOLE}/signin`);
  assert.ok(session.allowed.some((a) => a.status === 401 && a.method === 'POST' && a.path === '/api/v1/auth/login'), 'the API refused the login');

  await signIn(session, carol);
  await page.getByText('Balance', { exact: true }).first().waitFor();
  await page.getByText(money(12_345)).first().waitFor();
  for (const link of USER_LINKS) await nav(page).getByRole('link', { name: link, exact: true }).waitFor();
  for (const link of ADMIN_LINKS) assert.equal(await nav(page).getByRole('link', { name: link, exact: true }).count(), 0, `a user has no "${link}"`);
  await page.getByRole('button', { name: 'Sign out', exact: true }).waitFor();

  // A reload keeps the session and the page (stable URLs).
  await go(page, 'Ledger', '/ledger');
  await page.reload();
  await nav(page).waitFor();
  assert.equal(page.url(), `${CONSOLE}/ledger`);
  await page.goBack();
  await page.waitForURL(`${CONSOLE}/`);
  await page.getByText(money(12_345)).first().waitFor();
  // For the record: a load of / with the session, until the dashboard shows the balance.
  const started = Date.now();
  await page.goto(`${CONSOLE}/`);
  await page.getByText(money(12_345)).first().waitFor();
  t.diagnostic(`navigation to a signed-in dashboard showing the balance: ${Date.now() - started} ms`);
  await views(page, 'dashboard');
});

test('An admin credits a user with a reason: the user’s open dashboard shows the new balance within seconds; the admin pages', { timeout: 120_000 }, async (t) => {
  const admin = await createUser({ role: 'admin', prefix: 'admin' });
  const dave = await createUser({ balance: 12_345, prefix: 'dave' });
  const { page: davesPage } = await signedIn(t, browser, dave);
  await davesPage.getByText(money(12_345)).first().waitFor();

  const { page } = await signedIn(t, browser, admin);
  for (const link of [...USER_LINKS, ...ADMIN_LINKS]) await nav(page).getByRole('link', { name: link, exact: true }).waitFor();
  await go(page, 'Users', '/admin/users');
  // The stack has many users (every test makes its own): the admin finds Dave by searching.
  await page.getByLabel('Search', { exact: true }).fill(dave.username);
  const row = rowWith(page, dave.username);
  await row.filter({ hasText: money(12_345) }).waitFor();
  await control(row, 'Credit').click();
  const form = formWith(page, 'Reason');
  // "5": 5.00 if the field takes major units, 0.05 if minor; the API says which it was.
  await form.getByLabel('Amount', { exact: true }).fill('5');
  const reason = `browser test ${randomUUID().slice(0, 8)}`;
  await form.getByLabel('Reason', { exact: true }).fill(reason);
  await form.getByRole('button', { name: 'Credit', exact: true }).click();

  const balance = await eventually('the credit in the API', async () => {
    const { balance } = await apiOk<{ balance: number }>(dave.token, 'GET', '/api/v1/users/me');
    return balance !== 12_345 && balance;
  }, 20);
  assert.ok([12_345 + 500, 12_345 + 5].includes(balance), `credited 5.00 or 0.05, not ${balance - 12_345}`);
  const { items } = await apiOk<{ items: Array<{ reason: string | null; amount: number }> }>(dave.token, 'GET', '/api/v1/users/me/ledger');
  assert.equal(items[0]?.reason, reason, 'the entry carries the reason');
  await row.filter({ hasText: money(balance) }).waitFor();
  await views(page, 'admin-users');

  // Dave's dashboard, left open meanwhile, follows without a reload.
  await davesPage.getByText(money(balance)).first().waitFor({ timeout: 10_000 });

  await go(page, 'Hosts', '/admin/hosts');
  for (const host of ['host-a', 'host-b']) await rowWith(page, host).first().waitFor();
  await views(page, 'admin-hosts');

  await go(page, 'Releases', '/admin/releases');
  // Shown, never pressed: a release removes every container on the stack.
  await control(page, 'Run now').waitFor();
  await views(page, 'admin-releases');
});

test('Sign out: the session cookie (httpOnly, SameSite=Strict) is gone from the browser and the API refuses it from then on', { timeout: 60_000 }, async (t) => {
  const erin = await createUser({ balance: 1_000, prefix: 'erin' });
  const session = await signedIn(t, browser, erin);
  const { page, context } = session;
  const cookie = (await context.cookies(CONSOLE)).find((c) => c.name === SESSION_COOKIE);
  assert.ok(cookie, `the console signed in with the ${SESSION_COOKIE} cookie`);
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  const withCookie = () => fetch(`${CONSOLE}/api/v1/users/me`, { headers: { cookie: `${SESSION_COOKIE}=${cookie.value}` } });
  const before = await withCookie();
  assert.equal(before.status, 200);
  assert.equal(((await before.json()) as { username: string }).username, erin.username);

  session.allow(401, /^\/api\/v1\/users\/me(\?|$)/, 'GET');
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.waitForURL(`${CONSOLE}/signin`);
  assert.equal((await context.cookies(CONSOLE)).find((c) => c.name === SESSION_COOKIE), undefined, 'the cookie is cleared');
  assert.equal((await withCookie()).status, 401, 'the old cookie is refused');

  // The dashboard's address, loaded again, asks to sign in.
  await page.goto(`${CONSOLE}/`);
  await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
  assert.equal(await nav(page).count(), 0, 'no navigation while signed out');
});
