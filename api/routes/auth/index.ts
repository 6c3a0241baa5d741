import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { UserService } from '../../../services/users.js';
import { problemResponses } from '../../schemas.js';
import { User } from '../users/schemas.js';
import { LoginBody, LoginResponse } from './schemas.js';

const auth: FastifyPluginAsyncTypebox<{ users: Pick<UserService, 'login'> }> = async (app, { users }) => {
  app.addSchema(User);

  app.post(
    '/login',
    {
      config: { public: true },
      schema: {
        operationId: 'createToken',
        tags: ['auth'],
        summary: 'Exchange a username and password for a bearer token',
        body: LoginBody,
        response: { 200: LoginResponse, ...problemResponses(400, 401) },
      },
    },
    async (request) => users.login(request.body.username, request.body.password),
  );
};

export default auth;
