/**
 * Containers through the API, for tests that run them as a user would: a pull, a run, a
 * removal, an idle busybox, and a cleanup scope whose hooks run before the test's app closes.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { App } from '../../api/app.js';
import { bearer, buildTestApp, createUser, type TestUser } from './app.js';

export const BUSYBOX = '127.0.0.1:5000/library/busybox:1.35';

/** Pulls `image` onto `host` for `user` (asserting a 201); returns the image record's id. */
export async function pull(app: App, user: TestUser, image: string, host: string) {
  const res = await app.inject({ method: 'POST', url: '/api/v1/images/pull?wait=true', headers: bearer(user.token), payload: { image, host } });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<{ id: string }>().id;
}

export interface Running {
  id: string;
  host: string;
  hostIp: string;
  hostPort: number;
  state: string;
  pidsLimit?: number;
}

export async function runContainer(app: App, user: TestUser, body: Record<string, unknown>): Promise<Running> {
  const res = await app.inject({ method: 'POST', url: '/api/v1/containers?wait=true', headers: bearer(user.token), payload: body });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<Running>();
}

export async function removeContainer(app: App, user: TestUser, id: string) {
  const res = await app.inject({ method: 'DELETE', url: `/api/v1/containers/${id}`, headers: bearer(user.token) });
  assert.equal(res.statusCode, 200, res.body);
}

/** A busybox that idles, for probes run inside it with `docker exec`. */
export const idler = (imageId: string) => ({ imageId, containerPort: 8080, cmd: ['sleep', '3600'] });

/**
 * Cleanups that run before the app closes: buildTestApp registers its close first, and
 * node:test runs after-hooks in the order they were registered, so removals through the API
 * registered with t.after would find the app closed. These run last-registered first.
 */
export function cleanupScope(t: TestContext) {
  const hooks: Array<() => unknown> = [];
  t.after(async () => {
    for (const hook of hooks.reverse()) {
      try {
        await hook();
      } catch (error) {
        console.error('cleanup failed:', error);
      }
    }
  });
  return { after: (hook: () => unknown) => void hooks.push(hook) };
}

/** A test's cleanup scope and app, a user of its own, and busybox pulled for them on `host`. */
export async function userWithBusybox(t: TestContext, host: string) {
  const scope = cleanupScope(t);
  const app = await buildTestApp(scope);
  const user = await createUser(app, { balance: 100_000 });
  const image = await pull(app, user, BUSYBOX, host);
  return { scope, app, user, image };
}
