/**
 * Bearer-token authentication. Every route needs `Authorization: Bearer <token>`
 * unless its config says `public: true` (health, metrics, docs, login).
 */
import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { forbidden, unauthorized } from '../../core/errors.js';
import type { PublicUser, UserService } from '../../services/users.js';

declare module 'fastify' {
  interface FastifyRequest {
    user: PublicUser | null;
  }
  interface FastifyContextConfig {
    public?: boolean;
    /** Also accept the token as ?access_token= (WebSockets from browsers cannot send headers). */
    queryToken?: boolean;
  }
}

/** The authenticated caller; routes behind the auth hook always have one. */
export function caller(request: FastifyRequest): PublicUser {
  if (!request.user) throw unauthorized();
  return request.user;
}

export function requireAdmin(request: FastifyRequest): PublicUser {
  const user = caller(request);
  if (user.role !== 'admin') throw forbidden('This needs an admin.');
  return user;
}

export default fp<{ users: Pick<UserService, 'authenticate'> }>(
  async (app, { users }) => {
    app.decorateRequest('user', null);
    app.addHook('onRequest', async (request) => {
      if (request.routeOptions.config.public || request.is404) return;
      const header = request.headers.authorization;
      const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
      const queryToken = request.routeOptions.config.queryToken
        ? (request.query as { access_token?: string } | undefined)?.access_token
        : undefined;
      const token = match?.[1] ?? queryToken;
      if (!token) throw unauthorized('Send "Authorization: Bearer <token>"; POST /api/v1/auth/login gives one.');
      const user = await users.authenticate(token);
      if (!user) throw unauthorized('The token is invalid or has expired.');
      request.user = user;
    });
  },
  { name: 'auth' },
);
