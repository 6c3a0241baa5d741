/**
 * Browser tests' support: Debian's Chromium (/usr/bin/chromium, driven by playwright-core; no
 * browser is downloaded) against the console the stack's API serves at `/`, users and their
 * things made through that same API (over HTTP, with the admin's credentials from the stack's
 * environment), and a watch on every page that fails the test on a console error, a page error
 * or a failed request to the console's origin that the test did not declare.
 *
 * One browser per test file (startBrowser), one context per signed-in user (openConsole: locale
 * en-US, the time zone of the original platform's users), so that several users can be signed
 * in side by side.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, type TestContext } from 'node:test';
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Locator, type Page, type Request, type Response } from 'playwright-core';
import { baseConfig } from '../support/app.js';

/** The stack's API, which serves the console at `/` (same origin as `/api`). */
export const CONSOLE = `http://127.0.0.1:${baseConfig.port}`;
export const CHROMIUM = '/usr/bin/chromium';
export const LOCALE = 'en-US';
export const TIMEZONE = 'Asia/Shanghai';
export const DESKTOP = { width: 1280, height: 800 };
export const MOBILE = { width: 375, height: 812 };
/** The session cookie the console signs in with (the server's contract). */
export const SESSION_COOKIE = 'berth_session';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const SCREENSHOTS_DIR = join(repoRoot, 'docs', 'screenshots');
/** Screenshots are written only when asked (BERTH_SCREENSHOTS=1), so that test runs do not rewrite the committed ones. */
const writeScreenshots = process.env.BERTH_SCREENSHOTS === '1';

// ------------------------------------------------------------------ the browser

/** Launches Chromium for this test file; closed when the file's tests are done. */
export async function startBrowser(): Promise<Browser> {
  // --no-sandbox: Chromium's sandbox refuses to run as root, as CI and this machine do.
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  after(() => browser.close());
  return browser;
}

// ------------------------------------------------------------------ the API, over HTTP

export interface ApiAnswer {
  status: number;
  body: unknown;
  // Callers read fields of answers whose shape their route gives.
  json: <T = Record<string, unknown>>() => T;
}

/** A request to the stack's API with a bearer token (or none), answered whatever its status. */
export async function api(token: string | null, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiAnswer> {
  const res = await fetch(`${CONSOLE}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const parsed: unknown = text && (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text;
  return { status: res.status, body: parsed, json: <T>() => parsed as T };
}

/** {@link api}, asserting the status; returns the parsed body. */
export async function apiOk<T = Record<string, unknown>>(token: string | null, method: string, path: string, body?: unknown, status = 200): Promise<T> {
  const res = await api(token, method, path, body);
  assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)}`);
  return res.json<T>();
}

async function loginToken(username: string, password: string): Promise<string> {
  return (await apiOk<{ token: string }>(null, 'POST', '/api/v1/auth/login', { username, password })).token;
}

let admin: Promise<string> | undefined;
/** A session token of the stack's admin (one login per test file). */
export const adminToken = () => (admin ??= loginToken(baseConfig.admin.username, baseConfig.admin.password!));

export interface ConsoleUser {
  id: string;
  username: string;
  password: string;
  /** A bearer session of the user's own, for what the test sets up or checks through the API. */
  token: string;
  role: 'admin' | 'user';
}

/**
 * A user with a unique name, made through the stack's API by its admin. Everything they own
 * (containers, images) is removed through the API when the test file ends, so that the serial
 * pass that follows finds no container of theirs.
 */
export async function createUser(opts: { balance?: number; role?: 'admin' | 'user'; prefix?: string } = {}): Promise<ConsoleUser> {
  const username = `${opts.prefix ?? 'web'}-${randomUUID().slice(0, 12)}`;
  const password = `pw-${randomUUID()}`;
  const role = opts.role ?? 'user';
  const { id } = await apiOk<{ id: string }>(await adminToken(), 'POST', '/api/v1/users', { username, password, role, balance: opts.balance ?? 0 }, 201);
  const user = { id, username, password, role, token: await loginToken(username, password) };
  after(() => removeEverythingOf(user));
  return user;
}

/** Removes the user's containers, then their images, through the API (what a failed test left included). */
export async function removeEverythingOf(user: Pick<ConsoleUser, 'token'>): Promise<void> {
  const { items: containers } = await apiOk<{ items: Array<{ id: string; state: string }> }>(user.token, 'GET', '/api/v1/containers?pageSize=100');
  for (const c of containers.filter((c) => c.state !== 'removed')) {
    const res = await api(user.token, 'DELETE', `/api/v1/containers/${c.id}`);
    if (res.status >= 400 && res.status !== 404) console.error(`cleanup: removing container ${c.id}: ${res.status}`, res.body);
  }
  const { items: images } = await apiOk<{ items: Array<{ id: string }> }>(user.token, 'GET', '/api/v1/images?pageSize=100');
  for (const image of images) {
    const res = await api(user.token, 'DELETE', `/api/v1/images/${image.id}`);
    if (res.status >= 400 && res.status !== 404) console.error(`cleanup: removing image ${image.id}: ${res.status}`, res.body);
  }
}

/** Money as the console shows it: minor units with two decimals (no grouping needed below 1,000.00). */
export const money = (minor: number) => (minor / 100).toFixed(2);

// ------------------------------------------------------------------ watching a page

/** A failed response the test expects: its status and where it goes (method and path of the console's origin). */
export interface Allowance {
  status: number;
  method?: string;
  path: RegExp;
}

const API_PREFIX = new URL(CONSOLE).origin;
const pathOf = (url: string) => (url.startsWith(API_PREFIX) ? url.slice(API_PREFIX.length) : null);

/** Chromium's console line for a response of status >= 400 ("Failed to load resource: the server responded with a status of 404 (Not Found)"). */
const FAILED_RESOURCE = /^Failed to load resource: the server responded with a status of (\d{3})/;

/**
 * A user's browser context and its page, watched: every console error, uncaught page error,
 * response of status >= 400 from the console's origin and failed request to it (but one the page
 * aborted itself: a stream closed when its page is left, a navigation that became a download)
 * is a problem unless an allowance covers it. The test fails on problems when it ends.
 */
export class ConsoleSession {
  readonly problems: string[] = [];
  private readonly allowances = new Set<Allowance>();
  /** The API's answers of status >= 400 that allowances covered, for tests asserting that they came. */
  readonly allowed: Array<{ status: number; method: string; path: string }> = [];

  constructor(
    readonly context: BrowserContext,
    readonly page: Page,
  ) {
    page.on('console', (message) => this.onConsole(message));
    page.on('pageerror', (error) => this.problems.push(`page error: ${error.stack ?? error.message}`));
    page.on('response', (response) => this.onResponse(response));
    page.on('requestfailed', (request) => this.onRequestFailed(request));
  }

  /** Lets `status` answers to requests matching `path` (and `method`) pass until the returned function is called. */
  allow(status: number, path: RegExp, method?: string): () => void {
    const allowance = { status, path, ...(method ? { method } : {}) };
    this.allowances.add(allowance);
    return () => this.allowances.delete(allowance);
  }

  private allowedFor(status: number, path: string, method?: string): boolean {
    return [...this.allowances].some((a) => a.status === status && a.path.test(path) && (!a.method || !method || a.method === method));
  }

  private onConsole(message: ConsoleMessage) {
    if (message.type() !== 'error' && message.type() !== 'assert') return;
    const failed = FAILED_RESOURCE.exec(message.text());
    const path = pathOf(message.location().url);
    // The response itself is judged (with its method) in onResponse.
    if (failed && path !== null && this.allowedFor(Number(failed[1]), path)) return;
    this.problems.push(`console ${message.type()}: ${message.text()} (${message.location().url || this.page.url()})`);
  }

  private onResponse(response: Response) {
    const path = pathOf(response.url());
    if (path === null || response.status() < 400) return;
    const method = response.request().method();
    if (this.allowedFor(response.status(), path, method)) this.allowed.push({ status: response.status(), method, path });
    else this.problems.push(`unexpected ${response.status()} for ${method} ${path}`);
  }

  private onRequestFailed(request: Request) {
    const path = pathOf(request.url());
    const error = request.failure()?.errorText ?? 'failed';
    if (path === null || error === 'net::ERR_ABORTED') return;
    this.problems.push(`request failed: ${request.method()} ${path}: ${error}`);
  }

  /** Asserts that nothing unexpected happened so far, and forgets it. */
  assertClean(): void {
    const problems = this.problems.splice(0);
    assert.deepEqual(problems, [], `the browser reported:\n${problems.join('\n')}`);
  }

  /** The roles of elements that have appeared on the page since it loaded, and the values progress bars showed. */
  seen(): Promise<{ roles: string[]; progress: number[] }> {
    return this.page.evaluate(() => (window as unknown as { __berthSeen: { roles: string[]; progress: number[] } }).__berthSeen);
  }
}

/**
 * Records in the page, from its first script on, every role that any element takes (explicit, or
 * implicit for <progress>) and every value a progress bar shows (in % of its maximum), however
 * briefly: a pull from the stack's registry may show its progress for a few frames only. Plain
 * JavaScript in a string: a function would be sent as tsx compiled it, with helpers the page
 * does not have.
 */
const RECORD_ROLES = `(() => {
  const seen = { roles: [], progress: [] };
  window.__berthSeen = seen;
  const note = (element) => {
    const role = element.getAttribute('role') ?? (element.tagName === 'PROGRESS' ? 'progressbar' : null);
    if (!role) return;
    if (!seen.roles.includes(role)) seen.roles.push(role);
    if (role !== 'progressbar') return;
    const value = Number(element.getAttribute('aria-valuenow') ?? element.value);
    const max = Number(element.getAttribute('aria-valuemax') ?? element.max ?? 100) || 100;
    if (Number.isFinite(value) && seen.progress.length < 10000) seen.progress.push((value / max) * 100);
  };
  new MutationObserver((records) => {
    for (const record of records) {
      if (record.type === 'attributes' && record.target instanceof Element) note(record.target);
      for (const node of record.addedNodes) {
        if (!(node instanceof Element)) continue;
        note(node);
        node.querySelectorAll('[role], progress').forEach(note);
      }
    }
  }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['role', 'aria-valuenow', 'value'] });
})();`;

/**
 * A new browser context (locale en-US, the test time zone, a desktop window) and page for one
 * user, watched (see {@link ConsoleSession}); when the test ends, the context is closed and the
 * test fails if the page reported anything it did not expect.
 */
export async function openConsole(t: Pick<TestContext, 'after'>, browser: Browser): Promise<ConsoleSession> {
  const context = await browser.newContext({ locale: LOCALE, timezoneId: TIMEZONE, viewport: DESKTOP, acceptDownloads: true });
  context.setDefaultTimeout(20_000);
  await context.addInitScript({ content: RECORD_ROLES });
  const session = new ConsoleSession(context, await context.newPage());
  t.after(async () => {
    const problems = session.problems.splice(0);
    await context.close();
    assert.deepEqual(problems, [], `the browser reported:\n${problems.join('\n')}`);
  });
  return session;
}

// ------------------------------------------------------------------ signing in and moving around

/** GET /api/v1/users/me answering 401: the console asking, while no one is signed in, who is. */
const WHO_IS_SIGNED_IN = /^\/api\/v1\/users\/me(\?|$)/;

/** The navigation landmark. */
export const nav = (page: Page) => page.getByRole('navigation');

/**
 * Signs `user` in from the sign-in page with the keyboard only (Tab between the fields, Enter to
 * submit), and waits for the signed-in console (its navigation, the dashboard at `/`).
 */
export async function signIn(session: ConsoleSession, user: Pick<ConsoleUser, 'username' | 'password'>): Promise<void> {
  const { page } = session;
  const stopAllowing = session.allow(401, WHO_IS_SIGNED_IN, 'GET');
  await page.goto(`${CONSOLE}/signin`);
  await page.getByLabel('Username', { exact: true }).focus();
  await page.keyboard.type(user.username);
  await page.keyboard.press('Tab');
  await assertFocused(page.getByLabel('Password', { exact: true }), 'Tab from "Username" reaches "Password"');
  await page.keyboard.type(user.password);
  await page.keyboard.press('Enter');
  await nav(page).waitFor();
  await page.waitForURL(`${CONSOLE}/`);
  stopAllowing();
}

/** Asserts that `locator` has the keyboard focus. */
export async function assertFocused(locator: Locator, what: string): Promise<void> {
  assert.ok(await locator.evaluate((element) => element === document.activeElement), what);
}

/** A watched context with `user` signed in. */
export async function signedIn(t: Pick<TestContext, 'after'>, browser: Browser, user: ConsoleUser): Promise<ConsoleSession> {
  const session = await openConsole(t, browser);
  await signIn(session, user);
  return session;
}

/** Follows a link of the navigation (no reload: the console routes itself) and waits for its URL. */
export async function go(page: Page, link: string, path: string): Promise<void> {
  await nav(page).getByRole('link', { name: link, exact: true }).click();
  await page.waitForURL(`${CONSOLE}${path}`);
}

/** The table row (role=row) that holds `text`. */
export const rowWith = (page: Page | Locator, text: string) => page.getByRole('row').filter({ hasText: text });

/**
 * A control named `name` in `scope`, a button or a link (the console may make either), whose
 * accessible name is `name` or begins with it and a space: a row's button may name its row
 * ("Credit alice").
 */
export function control(scope: Page | Locator, name: string): Locator {
  const named = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}( |$)`);
  return scope.getByRole('button', { name: named }).or(scope.getByRole('link', { name: named }));
}

/** The <form> that holds the field labelled `label`. */
export const formWith = (page: Page, label: string) => page.locator('form').filter({ has: page.getByLabel(label, { exact: true }) });

// ------------------------------------------------------------------ screenshots and narrow screens

/**
 * Views the page at 1280×800 and at 375×812: at 375 px the page must not scroll sideways (a wide
 * table scrolls inside its own box). With BERTH_SCREENSHOTS=1 each view is written to
 * docs/screenshots/<name>-desktop.png and <name>-mobile.png. The desktop size is restored.
 */
export async function views(page: Page, name: string): Promise<void> {
  if (writeScreenshots) await mkdir(SCREENSHOTS_DIR, { recursive: true });
  for (const [size, viewport] of [['desktop', DESKTOP], ['mobile', MOBILE]] as const) {
    await page.setViewportSize(viewport);
    // The page's top, whatever a click scrolled into view.
    await page.evaluate(() => window.scrollTo(0, 0));
    // Two frames: the layout of the new size is done and painted.
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
    if (size === 'mobile') {
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= MOBILE.width, `${name} at ${MOBILE.width} px is ${width} px wide: the page scrolls sideways`);
    }
    if (writeScreenshots) await page.screenshot({ path: join(SCREENSHOTS_DIR, `${name}-${size}.png`) });
  }
  await page.setViewportSize(DESKTOP);
}
