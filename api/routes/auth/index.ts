import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AuthService } from '../../../services/auth.js';
import { authErrors, emptyResponse, problemResponses } from '../../schemas.js';
import { callerSession, clientOf } from '../../plugins/auth.js';
import { User } from '../users/schemas.js';
import { LoginBody, LoginResponse } from './schemas.js';

const auth: FastifyPluginAsyncTypebox<{ auth: Pick<AuthService, 'login' | 'logout'> }> = async (app, { auth }) => {
  app.addSchema(User);

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
        response: { 200: LoginResponse, ...problemResponses(400, 401, 403, 429) },
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
        response: { 204: emptyResponse('The session is revoked'), ...problemResponses(403), ...authErrors },
      },
    },
    async (request, reply) => {
      await auth.logout(callerSession(request));
      return reply.code(204).send(null);
    },
  );
};

export default auth;
