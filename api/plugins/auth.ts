/**
 * Authentication and API key scopes. Every route needs `Authorization: Bearer <credential>`
 * (a login's session token or an API key), or the console's session cookie (`berth_session`,
 * with the CSRF rules of ./browser-session.ts), unless its config says `public: true` (health,
 * metrics, docs, login, the console's files). A route whose config says `ticket: true` (the
 * stats WebSocket, which a client cannot always give a header) also opens with `?ticket=`, a
 * single-use ticket for that container. The header wins over a ticket, a ticket over the cookie.
 * A key reaches only what its scopes allow (core/scopes.ts): beyond them, a 403; a route that
 * needs `admin` is a 403 for anyone but an admin, whatever the credential.
 */
import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { forbidden, unauthorized } from '../../core/errors.js';
import { keyAllows, requirementOf } from '../../core/scopes.js';
import type { AuthService, Principal } from '../../services/auth.js';
import type { PublicUser } from '../../services/users.js';
import { clearSessionCookie, cookieRefusal, sessionCookieOf } from './browser-session.js';

declare module 'fastify' {
  interface FastifyRequest {
    user: PublicUser | null;
    /** How the caller authenticated (null on public routes and before authentication). */
    principal: Principal | { kind: 'ticket'; user: PublicUser } | null;
  }
  interface FastifyContextConfig {
    public?: boolean;
    /** Also opens with ?ticket=<single-use ticket for this container> (the stats WebSocket). */
    ticket?: boolean;
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

/** The caller's session (routes that manage the account: an API key cannot reach them). */
export function callerSession(request: FastifyRequest): Principal & { kind: 'session' } {
  const principal = request.principal;
  if (principal?.kind !== 'session') throw forbidden('This needs a session: log in with a password.');
  return principal;
}

/** Where the request comes from, as sessions and the login throttle record it. */
export const clientOf = (request: FastifyRequest) => ({ ip: request.ip, userAgent: request.headers['user-agent'] });

export default fp<{ auth: Pick<AuthService, 'authenticate' | 'redeemTicket'> }>(
  async (app, { auth }) => {
    app.decorateRequest('user', null);
    app.decorateRequest('principal', null);
    /** The session the console's cookie names (a 403 when the request breaks a CSRF rule). */
    async function fromCookie(request: FastifyRequest, reply: FastifyReply): Promise<Principal | undefined> {
      const token = sessionCookieOf(request);
      if (!token) throw unauthorized('Send "Authorization: Bearer <token or API key>"; POST /api/v1/auth/login gives a token.');
      const refusal = cookieRefusal(request);
      if (refusal) throw forbidden(refusal);
      const principal = await auth.authenticate(token);
      // The cookie carries sessions only; one that no longer works is dropped.
      if (principal?.kind === 'session') return principal;
      clearSessionCookie(request, reply);
      throw unauthorized('The session has ended (signed out, expired or revoked): sign in again.');
    }

    app.addHook('onRequest', async (request, reply) => {
      if (request.routeOptions.config.public || request.is404) return;
      const header = request.headers.authorization;
      const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
      if (!match && request.routeOptions.config.ticket) {
        const ticket = (request.query as { ticket?: unknown } | undefined)?.ticket;
        const containerId = (request.params as { id?: unknown } | undefined)?.id;
        if (typeof ticket === 'string' && typeof containerId === 'string') {
          const user = await auth.redeemTicket(ticket, containerId);
          if (!user) throw unauthorized('The ticket is invalid, used or expired: POST .../stats/ticket gives another.');
          request.user = user;
          request.principal = { kind: 'ticket', user };
          return;
        }
      }
      const principal = match ? await auth.authenticate(match[1]!) : await fromCookie(request, reply);
      if (!principal) throw unauthorized('The token or key is invalid, revoked or expired, or its user is disabled.');
      const requirement = requirementOf(request.method, request.routeOptions.url ?? request.url);
      if ('scope' in requirement && requirement.scope === 'admin' && principal.user.role !== 'admin') throw forbidden('This needs an admin.');
      if (principal.kind === 'api_key') {
        if (!keyAllows(principal.scopes, requirement, principal.user.role)) {
          if ('session' in requirement) throw forbidden('This needs a session: log in with a password. API keys cannot manage the account.');
          const needed = 'scope' in requirement ? requirement.scope : '';
          throw forbidden(
            needed === 'admin' && principal.user.role !== 'admin' ? 'This needs an admin.' : `This API key lacks the scope "${needed}" this route needs.`,
          );
        }
      }
      request.user = principal.user;
      request.principal = principal;
    });
  },
  { name: 'auth' },
);
