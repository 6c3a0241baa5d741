import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AuthService } from '../../../services/auth.js';
import { authErrors, emptyResponse, problemResponses } from '../../schemas.js';
import { callerSession, clientOf } from '../../plugins/auth.js';
import { clearSessionCookie, fromOtherOrigin, sentByConsole, setSessionCookie } from '../../plugins/browser-session.js';
import { User } from '../users/schemas.js';
import { LoginBody, LoginResponse } from './schemas.js';

const auth: FastifyPluginAsyncTypebox<{ auth: Pick<AuthService, 'login' | 'logout'> }> = async (app, { auth }) => {
  app.addSchema(User);
  app.addSchema(LoginResponse);

  app.post(
    '/login',
    {
      config: { public: true },
      schema: {
        operationId: 'login',
        tags: ['auth'],
        summary: 'Exchange a username and password for a session token (and the console\'s session cookie)',
        description:
          'Failed logins are counted per username and per client address; beyond the limits (BERTH_LOGIN_MAX_FAILURES_PER_USER, ' +
          '_PER_ADDRESS within BERTH_LOGIN_FAILURE_WINDOW) login answers 429 with Retry-After, before any password is checked. ' +
          'Unless it comes from another origin, a login also sets the session as the cookie `berth_session` (httpOnly, SameSite=Strict, ' +
          'Path=/, Secure over HTTPS). A login that sends `X-Berth-CSRF: 1` (the web console) gets the cookie only: its body has no `token`.',
        body: LoginBody,
        response: { 200: Type.Ref('LoginResult'), ...problemResponses(400, 401, 403, 429) },
      },
    },
    async (request, reply) => {
      const { token, ...session } = await auth.login(request.body.username, request.body.password, clientOf(request));
      // A page on another origin (BERTH_CORS_ORIGINS) gets the token to send as a bearer, never the cookie.
      if (fromOtherOrigin(request)) return { token, ...session };
      setSessionCookie(request, reply, token, session.expiresAt);
      return sentByConsole(request) ? session : { token, ...session };
    },
  );

  app.post(
    '/logout',
    {
      schema: {
        operationId: 'logout',
        tags: ['auth'],
        summary: 'Revoke the session whose token (or cookie) this request presents, and clear the cookie',
        response: { 204: emptyResponse('The session is revoked'), ...problemResponses(403), ...authErrors },
      },
    },
    async (request, reply) => {
      await auth.logout(callerSession(request));
      clearSessionCookie(request, reply);
      return reply.code(204).send(null);
    },
  );
};

export default auth;
