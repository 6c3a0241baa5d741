import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { UserService } from '../../../services/users.js';
import { problemRef } from '../../schemas.js';
import { LoginBody, LoginResponse } from './schemas.js';

const auth: FastifyPluginAsyncTypebox<{ users: Pick<UserService, 'login'> }> = async (app, { users }) => {
  app.post(
    '/login',
    {
      config: { public: true },
      schema: {
        tags: ['auth'],
        summary: 'Exchange a username and password for a bearer token',
        body: LoginBody,
        response: { 200: LoginResponse, 400: problemRef, 401: problemRef },
      },
    },
    async (request) => users.login(request.body.username, request.body.password),
  );
};

export default auth;
