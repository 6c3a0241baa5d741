/**
 * Containers through the API, for tests that run them as a user would: a pull (any image, or
 * httpd), a run, an operation, a removal, an idle busybox, the container's row, the stack's
 * container settings with overrides, and a cleanup scope whose hooks run before the test's app
 * closes.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { eq } from 'drizzle-orm';
import { containers } from '../../db/schema.js';
import type { App } from '../../api/app.js';
import { baseConfig, bearer, buildTestApp, createUser, testDb, type TestUser } from './app.js';
import { pullRequest } from './images.js';

export const BUSYBOX = '127.0.0.1:5000/library/busybox:1.35';
export const HTTPD = '127.0.0.1:5000/library/httpd:latest';

/** Pulls `image` onto `host` for `user` (asserting a 201); returns the image record's id. */
export async function pull(app: App, user: TestUser, image: string, host: string) {
  const res = await pullRequest(app, user.token, { image, host });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<{ id: string }>().id;
}

/** Pulls httpd onto `host` for `user` (asserting a 201); returns the image record (its id, what the pull charged). */
export async function pullHttpd(app: App, user: TestUser, host = 'host-a') {
  const res = await pullRequest(app, user.token, { image: HTTPD, host });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<{ id: string; charged: number }>();
}

export interface Running {
  id: string;
  host: string;
  hostIp: string;
  hostPort: number;
  state: string;
  pidsLimit?: number;
}

/** Runs a container (POST /api/v1/containers?wait=true, asserting a 201); returns the container as the API answers. */
export async function run(app: App, user: TestUser, body: Record<string, unknown>) {
  const res = await app.inject({ method: 'POST', url: '/api/v1/containers?wait=true', headers: bearer(user.token), payload: body });
  assert.equal(res.statusCode, 201, res.body);
  return res.json();
}

/** {@link run}, typed: the fields of the container that its callers read. */
export async function runContainer(app: App, user: TestUser, body: Record<string, unknown>): Promise<Running> {
  return run(app, user, body);
}

/** POST /api/v1/containers/:id/:operation (start, stop, restart, …) as `user`: the response, whatever it is. */
export const op = (app: App, user: TestUser, id: string, operation: string) =>
  app.inject({ method: 'POST', url: `/api/v1/containers/${id}/${operation}`, headers: bearer(user.token) });

export async function removeContainer(app: App, user: TestUser, id: string) {
  const res = await app.inject({ method: 'DELETE', url: `/api/v1/containers/${id}`, headers: bearer(user.token) });
  assert.equal(res.statusCode, 200, res.body);
}

/** The container's row (it must exist). */
export const rowOf = async (id: string) => (await testDb().db.select().from(containers).where(eq(containers.id, id)))[0]!;

/** Container prices that are the same whatever the resources. */
export const flatPrice = (base: number) => ({ base, perCpu: 0, perGbMemory: 0 });

/** The stack's container settings with `overrides`, for buildTestApp's `containers`. */
export const containersConfig = (overrides: Partial<typeof baseConfig.containers> = {}) => ({ ...baseConfig.containers, ...overrides });

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
