/** Users, their credentials, their bearer tokens and their ledger; money moves through billing/ledger.ts. */
import { createHash, randomBytes } from 'node:crypto';
import type { Database } from '../db/client.js';
import { conflict, unauthorized } from '../core/errors.js';
import { billing } from '../billing/ledger.js';
import * as repo from '../repositories/users.js';
import type { PageRequest } from '../repositories/paging.js';
import { decoyPasswordHash, hashPassword, verifyPassword } from './passwords.js';

export type { PublicUser, Role } from '../repositories/users.js';
type PublicUser = repo.PublicUser;

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

export function createUserService(deps: { db: Database; tokenTtlMs: number }) {
  const { db, tokenTtlMs } = deps;

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

    /** Same answer, and about the same time, for an unknown user and a wrong password. */
    async login(username: string, password: string): Promise<{ token: string; expiresAt: Date; user: PublicUser }> {
      const user = await repo.findCredentials(db, username);
      const ok = await verifyPassword(user?.passwordHash ?? (await decoyPasswordHash()), password);
      if (!user || !ok) throw unauthorized('Invalid username or password.');
      const token = randomBytes(32).toString('base64url');
      const expiresAt = new Date(Date.now() + tokenTtlMs);
      await repo.insertToken(db, { userId: user.id, tokenHash: sha256(token), expiresAt });
      // Expired tokens of this user are of no use to anyone.
      await repo.deleteExpiredTokens(db, user.id, new Date());
      const { passwordHash: _, ...publicUser } = user;
      return { token, expiresAt, user: publicUser };
    },

    authenticate: (token: string): Promise<PublicUser | undefined> => repo.findUserByToken(db, sha256(token), new Date()),

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
  };
}

export type UserService = ReturnType<typeof createUserService>;
