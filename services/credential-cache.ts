/**
 * A short-lived cache of authenticated credentials, so that a read does not cost a credential
 * lookup (a join of tokens or api_keys with users) on every request: the hash of a session token
 * or API key → the principal it authenticated, for at most BERTH_AUTH_CACHE_TTL and never past
 * the credential's own expiry.
 *
 * Revocation is still at once. Whatever ends a credential or changes what it may do (logout, a
 * session or key revoked, a password changed or reset, a user disabled or their role changed)
 * notifies PostgreSQL's channel `berth_credentials` with the user's id in the transaction that
 * does it (repositories/sessions.ts); every API process LISTENs on it and drops that user's
 * entries when the change commits, and the process that made the change drops them itself
 * before it answers. Three rules keep a stale entry out:
 * - a lookup that began before an eviction is not cached (the generation it began in is gone);
 * - while the LISTEN connection is down (not yet up, lost, reconnecting) nothing is cached or
 *   served from the cache, and everything cached is dropped when it goes down;
 * - the cache holds at most `maxEntries` credentials, the oldest dropped first.
 * A credential changed behind Berth's back (SQL typed by an operator) is seen within the TTL.
 */
import pg from 'pg';
import type { FastifyBaseLogger } from 'fastify';
import { CREDENTIALS_CHANNEL } from '../repositories/credential-changes.js';
import type { Principal } from './principal.js';

interface Entry {
  principal: Principal;
  /** Epoch ms after which the entry is not served (the TTL, or the credential's expiry if sooner). */
  validUntil: number;
  /** Epoch ms of the last use written to the database (null: never). */
  touchedAt: number | null;
}

export interface CredentialCache {
  /** The principal cached for a credential's hash, while valid; undefined while not listening. */
  get(hash: string, now: number): Entry | undefined;
  /** The generation to give set(): take it before the lookup. */
  generation(): number;
  /** Caches a lookup's principal unless something was evicted since `generation`, or the cache is off. */
  set(hash: string, entry: { principal: Principal; expiresAt: Date | null; touchedAt: Date | null }, generation: number, now: number): void;
  /** Records a use written to the database. */
  touched(hash: string, now: number): void;
  /** Drops every entry of the user (their credentials ended or changed). */
  evictUser(userId: string): void;
  /** Whether entries are served (the LISTEN connection is up). */
  readonly active: boolean;
  close(): Promise<void>;
}

/** The cache alone, without its listener: `active` is set by whoever listens (and by tests). */
export function createCredentialStore({ ttlMs, maxEntries = 10_000 }: { ttlMs: number; maxEntries?: number }) {
  const entries = new Map<string, Entry>();
  const byUser = new Map<string, Set<string>>();
  let generation = 0;
  let active = false;

  function remove(hash: string) {
    const entry = entries.get(hash);
    if (!entry) return;
    entries.delete(hash);
    const hashes = byUser.get(entry.principal.user.id);
    hashes?.delete(hash);
    if (hashes?.size === 0) byUser.delete(entry.principal.user.id);
  }

  function clear() {
    generation++;
    entries.clear();
    byUser.clear();
  }

  return {
    get active() {
      return active;
    },
    setActive(value: boolean) {
      if (!value) clear();
      else generation++;
      active = value;
    },
    get(hash: string, now: number) {
      if (!active) return undefined;
      const entry = entries.get(hash);
      if (entry && entry.validUntil <= now) {
        remove(hash);
        return undefined;
      }
      return entry;
    },
    generation: () => generation,
    set(hash: string, { principal, expiresAt, touchedAt }: { principal: Principal; expiresAt: Date | null; touchedAt: Date | null }, since: number, now: number) {
      if (!active || since !== generation) return;
      remove(hash);
      while (entries.size >= maxEntries) remove(entries.keys().next().value!);
      const validUntil = Math.min(now + ttlMs, expiresAt?.getTime() ?? Number.POSITIVE_INFINITY);
      entries.set(hash, { principal, validUntil, touchedAt: touchedAt?.getTime() ?? null });
      const userId = principal.user.id;
      let hashes = byUser.get(userId);
      if (!hashes) byUser.set(userId, (hashes = new Set()));
      hashes.add(hash);
    },
    touched(hash: string, now: number) {
      const entry = entries.get(hash);
      if (entry) entry.touchedAt = now;
    },
    evictUser(userId: string) {
      generation++;
      for (const hash of byUser.get(userId) ?? []) entries.delete(hash);
      byUser.delete(userId);
    },
    get size() {
      return entries.size;
    },
  };
}

const RECONNECT_MS = 1000;

/**
 * The cache with its listener: a connection of its own (not the pool's) LISTENing on
 * `berth_credentials`, reconnected after a second when it fails; the cache serves entries only
 * while it listens.
 */
export function createCredentialCache(deps: { databaseUrl: string; ttlMs: number; logger?: FastifyBaseLogger | undefined }): CredentialCache {
  const store = createCredentialStore({ ttlMs: deps.ttlMs });
  let client: pg.Client | null = null;
  let closed = false;
  let retry: NodeJS.Timeout | null = null;

  /** Stops caching and lets go of the LISTEN connection (its late errors ignored); resolves when it has ended. */
  function detach(): Promise<void> {
    store.setActive(false);
    const last = client;
    client = null;
    last?.removeAllListeners();
    last?.on('error', () => undefined);
    return last ? last.end().catch(() => undefined) : Promise.resolve();
  }

  function lost(error?: unknown) {
    void detach();
    if (closed || retry) return;
    if (error) deps.logger?.warn({ err: error }, 'credential cache: its LISTEN connection failed; credentials are looked up every time until it is back');
    retry = setTimeout(() => {
      retry = null;
      void listen();
    }, RECONNECT_MS);
    retry.unref();
  }

  async function listen() {
    if (closed) return;
    const next = new pg.Client({ connectionString: deps.databaseUrl });
    client = next;
    next.on('error', (error) => lost(error));
    next.on('end', () => {
      if (client === next) lost(new Error('connection ended'));
    });
    next.on('notification', (message) => {
      if (message.channel === CREDENTIALS_CHANNEL && message.payload) store.evictUser(message.payload);
    });
    try {
      await next.connect();
      await next.query(`LISTEN ${CREDENTIALS_CHANNEL}`);
      if (client === next && !closed) store.setActive(true);
    } catch (error) {
      if (client === next) lost(error);
    }
  }
  void listen();

  return {
    get: (hash, now) => store.get(hash, now),
    generation: () => store.generation(),
    set: (hash, entry, generation, now) => store.set(hash, entry, generation, now),
    touched: (hash, now) => store.touched(hash, now),
    evictUser: (userId) => store.evictUser(userId),
    get active() {
      return store.active;
    },
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      await detach();
    },
  };
}
