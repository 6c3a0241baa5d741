/** User administration (admins): list, disable or enable, change a role, reset a password. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { UserService } from '../../../services/users.js';
import type { AuthService } from '../../../services/auth.js';
import { pageRequest } from '../../../repositories/paging.js';
import { requireAdmin } from '../../plugins/auth.js';
import { authErrors, problemResponses } from '../../schemas.js';
import { PasswordReset, PasswordResetBody, UpdateUserBody, UpdatedUser, UserIdParams, UserListQuery, UserPage } from './schemas.js';

const adminUsers: FastifyPluginAsyncTypebox<{ users: Pick<UserService, 'list' | 'update'>; auth: Pick<AuthService, 'resetPassword'> }> = async (
  app,
  { users, auth },
) => {
  app.get(
    '/',
    {
      schema: {
        operationId: 'listUsers',
        tags: ['users'],
        summary: 'Users by username (admin); filter by a username substring, role, disabled',
        querystring: UserListQuery,
        response: { 200: UserPage, ...problemResponses(400, 403), ...authErrors },
      },
    },
    async (request) => {
      requireAdmin(request);
      const { page, pageSize, ...filter } = request.query;
      return { ...(await users.list(filter, pageRequest({ page, pageSize }))), page, pageSize };
    },
  );

  app.patch(
    '/:id',
    {
      schema: {
        operationId: 'updateUser',
        tags: ['users'],
        summary: "Disable or enable a user, or change their role (admin)",
        description:
          "A disabled user's sessions and API keys stop working at once (the next request is a 401); their running containers " +
          'are stopped, not removed; they keep their balance. Enabling them again lets their unexpired sessions and keys work again.',
        params: UserIdParams,
        body: UpdateUserBody,
        response: { 200: UpdatedUser, ...problemResponses(400, 403, 404), ...authErrors },
      },
    },
    async (request) => users.update(requireAdmin(request), request.params.id, request.body),
  );

  app.post(
    '/:id/password',
    {
      schema: {
        operationId: 'resetUserPassword',
        tags: ['users'],
        summary: "Set a user's password (admin); every session of theirs ends",
        params: UserIdParams,
        body: PasswordResetBody,
        response: { 200: PasswordReset, ...problemResponses(400, 403, 404), ...authErrors },
      },
    },
    async (request) => {
      requireAdmin(request);
      return auth.resetPassword(request.params.id, request.body.newPassword);
    },
  );
};

export default adminUsers;
