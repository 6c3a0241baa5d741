/**
 * Browser sessions: the web console signs in and gets its session token as a cookie
 * (`berth_session`: httpOnly, SameSite=Strict, Path=/, Secure when the request came over HTTPS)
 * instead of holding it in JavaScript. The cookie carries a token of the usual kind (a login's
 * session), so everything a session may do, a cookie may do, with three more rules because a
 * browser sends cookies by itself (cross-site request forgery, cross-site WebSocket hijacking):
 *
 * - a cookie-authenticated request whose `Origin` is not the API's own is refused;
 * - a cookie-authenticated POST, PUT, PATCH or DELETE must send `X-Berth-CSRF: 1` (a header no
 *   form and no cross-origin page can send without a CORS preflight, which is refused), and
 *   without an `Origin`, a `Referer` it sends must be of the API's own origin;
 * - a WebSocket opened with the cookie must say its `Origin` (browsers always do), the API's own.
 *
 * The API's own origin is the scheme and host the request came to (`X-Forwarded-Proto` and
 * `-Host` believed only from BERTH_TRUST_PROXY's addresses). A bearer credential (token or API
 * key) in `Authorization` needs none of this: a browser never adds that header by itself.
 */
import fp from 'fastify-plugin';
import cookie from '@fastify/cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';

export const SESSION_COOKIE = 'berth_session';
/** The header the console sends with every request (`X-Berth-CSRF: 1`). */
export const CSRF_HEADER = 'x-berth-csrf';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** `scheme://host[:port]` as browsers write it in `Origin` (default ports left out); undefined when it is not one. */
function originOf(url: string): string | undefined {
  try {
    const origin = new URL(url).origin;
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}

/** The origin this request was sent to: the console's, when the console sent it. */
export function ownOrigin(request: FastifyRequest): string | undefined {
  return originOf(`${request.protocol}://${request.host}`);
}

const header = (request: FastifyRequest, name: string): string | undefined => {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/** Whether the request says it comes from another origin (an `Origin` that is not the API's own). */
export function fromOtherOrigin(request: FastifyRequest): boolean {
  const origin = header(request, 'origin');
  return origin !== undefined && originOf(origin) !== ownOrigin(request);
}

/** Whether the request comes from the console: `X-Berth-CSRF: 1`. */
export const sentByConsole = (request: FastifyRequest) => header(request, CSRF_HEADER) === '1';

const isWebSocket = (request: FastifyRequest) => header(request, 'upgrade')?.toLowerCase() === 'websocket';

/** Why a request authenticated by the session cookie is refused (a 403), or null when it may go on. */
export function cookieRefusal(request: FastifyRequest): string | null {
  const origin = header(request, 'origin');
  if (fromOtherOrigin(request)) return 'A request signed in with the session cookie must come from the console (its Origin is another site).';
  if (isWebSocket(request) && origin === undefined) return 'A WebSocket opened with the session cookie must send its Origin.';
  if (!MUTATING.has(request.method)) return null;
  if (!sentByConsole(request)) return `A ${request.method} signed in with the session cookie must send "X-Berth-CSRF: 1".`;
  const referer = header(request, 'referer');
  if (origin === undefined && referer !== undefined && originOf(referer) !== ownOrigin(request)) {
    return `A ${request.method} signed in with the session cookie must come from the console (its Referer is another site).`;
  }
  return null;
}

/** The session token the request's cookie carries, if any. */
export const sessionCookieOf = (request: FastifyRequest): string | undefined => request.cookies[SESSION_COOKIE] || undefined;

const cookieOptions = (request: FastifyRequest) =>
  ({ path: '/', httpOnly: true, sameSite: 'strict', secure: request.protocol === 'https' }) as const;

export function setSessionCookie(request: FastifyRequest, reply: FastifyReply, token: string, expiresAt: Date): void {
  void reply.setCookie(SESSION_COOKIE, token, { ...cookieOptions(request), expires: expiresAt });
}

/** Tells the browser to drop the cookie (sign-out, or a cookie whose session has ended). */
export function clearSessionCookie(request: FastifyRequest, reply: FastifyReply): void {
  void reply.clearCookie(SESSION_COOKIE, cookieOptions(request));
}

/** Parses the Cookie header (request.cookies) and lets replies set cookies. */
export default fp(
  async (app) => {
    await app.register(cookie);
  },
  { name: 'browser-session' },
);
