/** Users, their credentials and their bearer tokens. */
import { createHash, randomBytes } from 'node:crypto';
import { and, eq, gt, lt } from 'drizzle-orm';
import type { Database } from '../db/client.js';
import { tokens, users } from '../db/schema.js';
import { conflict, notFound, unauthorized } from '../core/errors.js';
import { decoyPasswordHash, hashPassword, verifyPassword } from './passwords.js';
import type { Ledger } from './ledger.js';

export type Role = 'admin' | 'user';
export interface PublicUser {
  id: string;
  username: string;
  role: Role;
  balance: number;
  createdAt: Date;
}

const publicColumns = {
  id: users.id,
  username: users.username,
  role: users.role,
  balance: users.balance,
  createdAt: users.createdAt,
};

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

export function createUserService(deps: { db: Database; ledger: Ledger; tokenTtlMs: number }) {
  const { db, ledger, tokenTtlMs } = deps;

  async function getById(id: string): Promise<PublicUser | undefined> {
    const [user] = await db.select(publicColumns).from(users).where(eq(users.id, id));
    return user;
  }

  return {
    getById,

    async create(input: { username: string; password: string; role?: Role; balance?: number }): Promise<PublicUser> {
      const passwordHash = await hashPassword(input.password);
      const [user] = await db
        .insert(users)
        .values({ username: input.username, passwordHash, role: input.role ?? 'user', balance: 0 })
        .onConflictDoNothing({ target: users.username })
        .returning(publicColumns);
      if (!user) throw conflict(`The username "${input.username}" is taken.`);
      if (input.balance && input.balance > 0) {
        const { entry } = await ledger.apply({
          userId: user.id,
          amount: input.balance,
          kind: 'credit',
          reason: 'opening balance',
          idempotencyKey: `user-opening-balance-${user.id}`,
        });
        user.balance = entry.balanceAfter;
      }
      return user;
    },

    /** Creates the admin at first start; an existing user of that name is left as it is. */
    async ensureAdmin(username: string, password: string | undefined): Promise<'created' | 'exists'> {
      const [existing] = await db.select({ id: users.id }).from(users).where(eq(users.username, username));
      if (existing) return 'exists';
      if (password === undefined) return Promise.reject(new Error('BERTH_ADMIN_PASSWORD is required to create the admin'));
      await db
        .insert(users)
        .values({ username, passwordHash: await hashPassword(password), role: 'admin' })
        .onConflictDoNothing({ target: users.username });
      return 'created';
    },

    /** Same answer, and about the same time, for an unknown user and a wrong password. */
    async login(username: string, password: string): Promise<{ token: string; expiresAt: Date; user: PublicUser }> {
      const [user] = await db
        .select({ ...publicColumns, passwordHash: users.passwordHash })
        .from(users)
        .where(eq(users.username, username));
      const ok = await verifyPassword(user?.passwordHash ?? (await decoyPasswordHash()), password);
      if (!user || !ok) throw unauthorized('Invalid username or password.');
      const token = randomBytes(32).toString('base64url');
      const expiresAt = new Date(Date.now() + tokenTtlMs);
      await db.insert(tokens).values({ userId: user.id, tokenHash: sha256(token), expiresAt });
      // Expired tokens of this user are of no use to anyone.
      await db.delete(tokens).where(and(eq(tokens.userId, user.id), lt(tokens.expiresAt, new Date())));
      const { passwordHash: _, ...publicUser } = user;
      return { token, expiresAt, user: publicUser };
    },

    async authenticate(token: string): Promise<PublicUser | undefined> {
      const [row] = await db
        .select(publicColumns)
        .from(tokens)
        .innerJoin(users, eq(users.id, tokens.userId))
        .where(and(eq(tokens.tokenHash, sha256(token)), gt(tokens.expiresAt, new Date())));
      return row;
    },

    async credit(userId: string, amount: number, reason: string, idempotencyKey: string) {
      if (!(await getById(userId))) throw notFound('User');
      const { entry } = await ledger.apply({ userId, amount, kind: 'credit', reason, idempotencyKey });
      return entry;
    },
  };
}

export type UserService = ReturnType<typeof createUserService>;
