/**
 * Who is calling, and the credentials that say so: logins (throttled per username and per client
 * address, in PostgreSQL), sessions (revocable), API keys (scoped), password changes, and the
 * single-use tickets that open a stats WebSocket. Only hashes of secrets are stored.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Database } from '../db/client.js';
import type { LoginThrottleConfig } from '../core/config.js';
import { badRequest, forbidden, notFound, tooManyRequests, unauthorized } from '../core/errors.js';
import { SCOPES, type Scope } from '../core/scopes.js';
import { LIMITS, countLimited } from '../core/metrics.js';
import * as users from '../repositories/users.js';
import * as credentials from '../repositories/sessions.js';
import * as failures from '../repositories/login-failures.js';
import * as tickets from '../repositories/stream-tickets.js';
import { decoyPasswordHash, hashPassword, verifyPassword } from './passwords.js';
import type { CredentialCache } from './credential-cache.js';

type PublicUser = users.PublicUser;

import type { Principal } from './principal.js';
export type { Principal };

/** Where a request comes from, as sessions and the throttle record it. */
export interface Client {
  ip: string;
  userAgent?: string | undefined;
}

/** API keys start with this, so a key is told from a session token at a glance (and by scanners). */
export const API_KEY_PREFIX = 'berth_';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const secret = () => randomBytes(32).toString('base64url');
/** How long a stats ticket may wait to be used. */
export const TICKET_TTL_MS = 30_000;

export function createAuthService(deps: {
  db: Database;
  tokenTtlMs: number;
  throttle: LoginThrottleConfig;
  /** Authenticated credentials kept for a short time (services/credential-cache.ts); absent: every request looks its credential up. */
  cache?: CredentialCache | null | undefined;
}) {
  const { db, tokenTtlMs, throttle } = deps;
  const cache = deps.cache ?? null;
  /** Whatever the user's credentials were cached as is gone before the change is answered. */
  const forget = <T>(userId: string, result: T): T => {
    cache?.evictUser(userId);
    return result;
  };
  /** The last use, written at most once a minute (the UPDATE's own condition says so too). */
  const dueForTouch = (touchedAt: number | null, now: number) => touchedAt === null || now - touchedAt >= credentials.TOUCH_EVERY_MS;

  /** The principal a credential's hash names in the database, and when it expires. */
  async function lookup(bearer: string, hash: string, now: Date) {
    if (bearer.startsWith(API_KEY_PREFIX)) {
      const key = await credentials.findApiKey(db, hash, now);
      if (!key) return undefined;
      if (dueForTouch(key.lastUsedAt?.getTime() ?? null, now.getTime())) await credentials.touchApiKey(db, key.keyId);
      const principal: Principal = { kind: 'api_key', user: key.user, keyId: key.keyId, scopes: key.scopes };
      return { principal, expiresAt: key.expiresAt, touchedAt: now };
    }
    const session = await credentials.findSession(db, hash, now);
    if (!session) return undefined;
    if (dueForTouch(session.lastUsedAt?.getTime() ?? null, now.getTime())) await credentials.touchSession(db, session.sessionId);
    const principal: Principal = { kind: 'session', user: session.user, sessionId: session.sessionId };
    return { principal, expiresAt: session.expiresAt, touchedAt: now };
  }

  /** A 429 when the username or the address has used up its failures in the window. */
  async function checkThrottle(username: string, client: Client): Promise<void> {
    const now = Date.now();
    const counts = await failures.failuresSince(db, { username, clientIp: client.ip, since: new Date(now - throttle.windowMs) });
    const over = (c: failures.FailureCount, max: number) => (c.count >= max ? (c.oldest?.getTime() ?? now) + throttle.windowMs - now : 0);
    const wait = Math.max(over(counts.user, throttle.maxFailuresPerUser), over(counts.address, throttle.maxFailuresPerAddress));
    if (wait > 0) {
      countLimited(LIMITS.loginThrottle);
      throw tooManyRequests('Too many failed logins: try again later.', wait);
    }
  }

  async function recordFailure(username: string, client: Client): Promise<void> {
    await failures.recordFailure(db, { username, clientIp: client.ip, before: new Date(Date.now() - throttle.windowMs) });
  }

  async function newSession(user: PublicUser, client: Client) {
    const token = secret();
    const expiresAt = new Date(Date.now() + tokenTtlMs);
    const sessionId = await credentials.insertSession(db, {
      userId: user.id,
      tokenHash: sha256(token),
      expiresAt,
      clientIp: client.ip,
      userAgent: client.userAgent?.slice(0, 512) ?? null,
    });
    await credentials.deleteDeadSessions(db, user.id, new Date());
    return { token, expiresAt, sessionId };
  }

  return {
    /**
     * A session for a username and password. Throttled before any hashing; an unknown username
     * is hashed against a decoy, so it takes as long and gets the same answer as a wrong password.
     */
    async login(username: string, password: string, client: Client): Promise<{ token: string; expiresAt: Date; user: PublicUser }> {
      await checkThrottle(username, client);
      const found = await users.findCredentials(db, username);
      const ok = await verifyPassword(found?.passwordHash ?? (await decoyPasswordHash()), password);
      if (!found || !ok) {
        await recordFailure(username, client);
        throw unauthorized('Invalid username or password.');
      }
      await failures.clearUserFailures(db, username);
      const { passwordHash: _, disabled, ...user } = found;
      if (disabled) throw forbidden('This account is disabled.');
      const { token, expiresAt } = await newSession(user, client);
      return { token, expiresAt, user };
    },

    /** The principal a bearer credential names, while it is valid and its user enabled. */
    async authenticate(bearer: string): Promise<Principal | undefined> {
      const hash = sha256(bearer);
      const now = Date.now();
      const cached = cache?.get(hash, now);
      if (cached) {
        const { principal } = cached;
        if (dueForTouch(cached.touchedAt, now)) {
          await (principal.kind === 'api_key' ? credentials.touchApiKey(db, principal.keyId) : credentials.touchSession(db, principal.sessionId));
          cache!.touched(hash, now);
        }
        return principal;
      }
      const generation = cache?.generation() ?? 0;
      const found = await lookup(bearer, hash, new Date(now));
      if (!found) return undefined;
      cache?.set(hash, found, generation, now);
      return found.principal;
    },

    /** Revokes the caller's own session (logout). */
    logout: async (principal: Principal & { kind: 'session' }) =>
      forget(principal.user.id, await credentials.revokeSession(db, principal.user.id, principal.sessionId)),

    /** The user's live sessions, the caller's marked; never a secret. */
    async sessions(principal: Principal) {
      const rows = await credentials.listSessions(db, principal.user.id, new Date());
      return rows.map((s) => ({
        id: s.id,
        createdAt: s.createdAt,
        lastUsedAt: s.lastUsedAt,
        expiresAt: s.expiresAt,
        clientIp: s.clientIp,
        userAgent: s.userAgent,
        current: principal.kind === 'session' && principal.sessionId === s.id,
      }));
    },

    async revokeSession(userId: string, sessionId: string): Promise<void> {
      if (!forget(userId, await credentials.revokeSession(db, userId, sessionId))) throw notFound('Session');
    },

    /** Changes the caller's password (the current one must be given) and revokes every other session. */
    async changePassword(principal: Principal & { kind: 'session' }, currentPassword: string, newPassword: string, client: Client): Promise<{ revokedSessions: number }> {
      const { user } = principal;
      await checkThrottle(user.username, client);
      const hash = await users.findPasswordHash(db, user.id);
      if (!hash || !(await verifyPassword(hash, currentPassword))) {
        await recordFailure(user.username, client);
        throw forbidden('The current password is wrong.');
      }
      if (newPassword === currentPassword) throw badRequest('The new password is the current one.');
      await users.setPasswordHash(db, user.id, await hashPassword(newPassword));
      return { revokedSessions: forget(user.id, await credentials.revokeSessions(db, user.id, principal.sessionId)) };
    },

    /** An admin sets a user's password: every session of theirs ends (their API keys stay). */
    async resetPassword(userId: string, newPassword: string): Promise<{ revokedSessions: number }> {
      if (!(await users.setPasswordHash(db, userId, await hashPassword(newPassword)))) throw notFound('User');
      return { revokedSessions: forget(userId, await credentials.revokeSessions(db, userId)) };
    },

    /** Ends every session of a user (they were disabled). */
    revokeAllSessions: async (userId: string) => forget(userId, await credentials.revokeSessions(db, userId)),

    /** A new key for the caller, shown once. `admin` only on an admin's key. */
    async createApiKey(user: PublicUser, input: { name: string; scopes: string[]; expiresAt?: Date | undefined }) {
      const scopes = [...new Set(input.scopes)].sort();
      const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
      if (unknown.length > 0) throw badRequest(`Unknown scopes: ${unknown.join(', ')}. Scopes are: ${SCOPES.join(', ')}.`);
      if (scopes.includes('admin' satisfies Scope) && user.role !== 'admin') throw forbidden('Only an admin may give a key the admin scope.');
      if (input.expiresAt && input.expiresAt.getTime() <= Date.now()) throw badRequest('expiresAt is in the past.');
      const body = secret();
      const key = `${API_KEY_PREFIX}${body}`;
      const row = await credentials.insertApiKey(db, {
        userId: user.id,
        name: input.name,
        prefix: key.slice(0, API_KEY_PREFIX.length + 6),
        keyHash: sha256(key),
        scopes,
        expiresAt: input.expiresAt ?? null,
      });
      return { ...publicKey(row), key };
    },

    apiKeys: async (userId: string) => (await credentials.listApiKeys(db, userId)).map(publicKey),

    async revokeApiKey(userId: string, keyId: string): Promise<void> {
      if (!forget(userId, await credentials.revokeApiKey(db, userId, keyId))) throw notFound('API key');
    },

    /** A single-use ticket, valid for TICKET_TTL_MS, that opens this container's stats socket. */
    async streamTicket(userId: string, containerId: string): Promise<{ ticket: string; expiresAt: Date }> {
      const ticket = secret();
      const expiresAt = new Date(Date.now() + TICKET_TTL_MS);
      await tickets.insertTicket(db, { ticketHash: sha256(ticket), userId, containerId, expiresAt });
      return { ticket, expiresAt };
    },

    /** Takes a ticket for the container: its user (enabled), or undefined. */
    async redeemTicket(ticket: string, containerId: string): Promise<PublicUser | undefined> {
      const taken = await tickets.consumeTicket(db, sha256(ticket), new Date());
      if (!taken || taken.containerId !== containerId) return undefined;
      const user = await users.findUserForAdmin(db, taken.userId);
      if (!user || user.disabled) return undefined;
      const { disabled: _, ...publicUser } = user;
      return publicUser;
    },
  };
}

function publicKey(row: credentials.ApiKeyRow) {
  return { id: row.id, name: row.name, prefix: row.prefix, scopes: row.scopes, createdAt: row.createdAt, lastUsedAt: row.lastUsedAt, expiresAt: row.expiresAt };
}

export type AuthService = ReturnType<typeof createAuthService>;
