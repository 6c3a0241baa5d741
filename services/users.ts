/**
 * Users, their administration and their ledger; money moves through billing/ledger.ts, and
 * credentials (logins, sessions, API keys) live in services/auth.ts.
 */
import type { Database } from '../db/client.js';
import { badRequest, conflict, notFound } from '../core/errors.js';
import { billing } from '../billing/ledger.js';
import * as repo from '../repositories/users.js';
import type { PageRequest } from '../repositories/paging.js';
import * as containerRepo from '../repositories/containers.js';
import { hashPassword } from './passwords.js';
import type { CredentialCache } from './credential-cache.js';
import type { ContainerService } from './containers.js';

export type { PublicUser, Role } from '../repositories/users.js';
type PublicUser = repo.PublicUser;

export function createUserService(deps: {
  db: Database;
  containers?: Pick<ContainerService, 'operate'>;
  /** The API's cache of authenticated credentials, told when what a user's credentials may do changes. */
  credentials?: Pick<CredentialCache, 'evictUser'> | null;
}) {
  const { db } = deps;

  return {
    getById: (id: string) => repo.findUser(db, id),

    /** The user and their opening balance, in one transaction. */
    async create(input: { username: string; password: string; role?: repo.Role; balance?: number }): Promise<PublicUser> {
      const passwordHash = await hashPassword(input.password);
      return db.transaction(async (tx) => {
        const user = await repo.insertUser(tx, { username: input.username, passwordHash, role: input.role ?? 'user' });
        if (!user) throw conflict(`The username "${input.username}" is taken.`);
        if (input.balance && input.balance > 0) {
          const { entry } = await billing.openingBalance(tx, { userId: user.id, amount: input.balance });
          user.balance = entry.balanceAfter;
        }
        return user;
      });
    },

    /** Creates the admin at first start; an existing user of that name is left as it is. */
    async ensureAdmin(username: string, password: string | undefined): Promise<'created' | 'exists'> {
      if (await repo.findUserIdByName(db, username)) return 'exists';
      if (password === undefined) return Promise.reject(new Error('BERTH_ADMIN_PASSWORD is required to create the admin'));
      await repo.insertUser(db, { username, passwordHash: await hashPassword(password), role: 'admin' });
      return 'created';
    },

    /**
     * An admin's credit of a user (404 for an unknown user). `requestKey` (the Idempotency-Key
     * header, else a fresh UUID) makes a retried request credit once.
     */
    async credit(m: { userId: string; adminId: string; amount: number; reason: string; requestKey: string }) {
      const { entry } = await db.transaction((tx) => billing.credit(tx, m));
      return entry;
    },

    /** A user's ledger entries, newest first. */
    ledger: (userId: string, page: PageRequest) => repo.ledgerPage(db, userId, page),

    /** Users by username, filtered (admins). */
    list: (filter: repo.UserFilter, page: PageRequest) => repo.listUsers(db, filter, page),

    getForAdmin: (id: string) => repo.findUserForAdmin(db, id),

    /**
     * An admin disables or enables a user, or changes their role. A disabled user's credentials
     * stop working at once (authentication checks the flag, and every API process drops what it
     * cached of them: services/credential-cache.ts); their running containers are
     * stopped, not removed; their balance stays. Admins cannot disable or demote themselves.
     */
    async update(admin: PublicUser, id: string, set: { disabled?: boolean; role?: repo.Role }) {
      if (id === admin.id && (set.disabled === true || set.role === 'user')) throw badRequest('You cannot disable or demote yourself.');
      const user = await repo.updateUser(db, id, set);
      deps.credentials?.evictUser(id);
      if (!user) throw notFound('User');
      const stopped: string[] = [];
      const failed: Array<{ id: string; reason: string }> = [];
      if (set.disabled === true && deps.containers) {
        for (const containerId of await containerRepo.runningOf(db, id)) {
          try {
            await deps.containers.operate({ id, role: 'user' }, containerId, 'stop');
            stopped.push(containerId);
          } catch (error) {
            failed.push({ id: containerId, reason: (error as Error).message });
          }
        }
      }
      return { user, stoppedContainers: stopped, failedToStop: failed };
    },
  };
}

export type UserService = ReturnType<typeof createUserService>;
