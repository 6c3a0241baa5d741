import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AuthService } from '../../../services/auth.js';
import { authErrors, problemRef } from '../../schemas.js';
import { callerSession, clientOf } from '../../plugins/auth.js';
import { LoginBody, LoginResponse } from './schemas.js';

const auth: FastifyPluginAsyncTypebox<{ auth: Pick<AuthService, 'login' | 'logout'> }> = async (app, { auth }) => {
  app.post(
    '/login',
    {
      config: { public: true },
      schema: {
        operationId: 'login',
        tags: ['auth'],
        summary: 'Exchange a username and password for a session token',
        description:
          'Failed logins are counted per username and per client address; beyond the limits (BERTH_LOGIN_MAX_FAILURES_PER_USER, ' +
          '_PER_ADDRESS within BERTH_LOGIN_FAILURE_WINDOW) login answers 429 with Retry-After, before any password is checked.',
        body: LoginBody,
        response: { 200: LoginResponse, 400: problemRef, 401: problemRef, 403: problemRef, 429: problemRef },
      },
    },
    async (request) => auth.login(request.body.username, request.body.password, clientOf(request)),
  );

  app.post(
    '/logout',
    {
      schema: {
        operationId: 'logout',
        tags: ['auth'],
        summary: 'Revoke the session whose token this request presents',
        response: { 204: Type.Null({ description: 'The session is revoked' }), 403: problemRef, ...authErrors },
      },
    },
    async (request, reply) => {
      await auth.logout(callerSession(request));
      return reply.code(204).send(null);
    },
  );
};

export default auth;
