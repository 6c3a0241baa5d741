/**
 * Test support: the API built in-process (app.inject) on the real stack's
 * PostgreSQL and Temporal, plus helpers to make users and log in. Each test makes
 * its own users with unique names, so files run in any order and in parallel.
 */
import { randomUUID } from 'node:crypto';
import type { TestContext } from 'node:test';
import { eq } from 'drizzle-orm';
import { ledgerEntries, users } from '../../db/schema.js';
import { loadApiConfig, type ApiConfig } from '../../core/config.js';
import { connectTemporal } from '../../core/temporal.js';
import { connectDatabase, type DatabaseHandle } from '../../db/client.js';
import { buildApp, type App } from '../../api/app.js';

export const env = process.env;
export const baseConfig = loadApiConfig(env);

let shared: DatabaseHandle | undefined;
/** One pool per test file, closed when the process ends. */
export function testDb(): DatabaseHandle {
  if (!shared) {
    // Idle connections let the process exit (then beforeExit closes the pool): no 10 s wait per file.
    shared = connectDatabase(baseConfig.database.url, { max: 4, allowExitOnIdle: true });
    process.once('beforeExit', () => void shared?.close());
  }
  return shared;
}

/**
 * Every test's requests come from 127.0.0.1, like users behind one NAT, and failed logins are
 * counted in PostgreSQL across test files and runs: the per-address limit is lifted unless a test
 * sets it (test/integration/accounts.test.ts does, from addresses of its own).
 */
const testLogin = { login: { ...baseConfig.login, maxFailuresPerAddress: 1_000_000 } };

export async function buildTestApp(
  t: Pick<TestContext, 'after'>,
  overrides: Partial<
    Pick<ApiConfig, 'tokenTtlMs' | 'authCacheTtlMs' | 'login' | 'rateLimit' | 'hosts' | 'waitTimeoutMs' | 'containers' | 'streams' | 'dcu' | 'registries' | 'pulls' | 'corsOrigins' | 'trustProxy' | 'webDir'>
  > = {},
  /** `temporalAddress`: where the app's Temporal client connects (a proxy in front of the stack's Temporal, say). */
  opts: { temporalAddress?: string } = {},
): Promise<App> {
  const database = connectDatabase(baseConfig.database.url, { max: 4 });
  const temporal = await connectTemporal({ ...baseConfig.temporal, ...(opts.temporalAddress ? { address: opts.temporalAddress } : {}) });
  const app = await buildApp({ config: { ...baseConfig, ...testLogin, ...overrides }, db: database.db, temporal });
  t.after(async () => {
    await app.close();
    await temporal.connection.close();
    await database.close();
  });
  return app;
}

export const uniqueName = (prefix = 'u') => `${prefix}-${randomUUID().slice(0, 12)}`;

export async function login(app: App, username: string, password: string): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password } });
  if (res.statusCode !== 200) throw new Error(`login ${username} failed: ${res.statusCode} ${res.body}`);
  return res.json<{ token: string }>().token;
}

export const adminToken = (app: App) => login(app, baseConfig.admin.username, baseConfig.admin.password!);

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

export interface TestUser {
  id: string;
  username: string;
  password: string;
  token: string;
}

export async function createUser(app: App, opts: { balance?: number; role?: 'admin' | 'user' } = {}): Promise<TestUser> {
  const admin = await adminToken(app);
  const username = uniqueName();
  const password = `pw-${randomUUID()}`;
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/users',
    headers: bearer(admin),
    payload: { username, password, ...opts },
  });
  if (res.statusCode !== 201) throw new Error(`create user failed: ${res.statusCode} ${res.body}`);
  const { id } = res.json<{ id: string }>();
  return { id, username, password, token: await login(app, username, password) };
}

/** A user's balance, read from the users table. */
export const balanceOf = async (id: string) => (await testDb().db.select().from(users).where(eq(users.id, id)))[0]!.balance;

/** A user's ledger entries. */
export const ledgerOf = (id: string) => testDb().db.select().from(ledgerEntries).where(eq(ledgerEntries.userId, id));
