import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { UserService } from '../../../services/users.js';
import type { Ledger } from '../../../services/ledger.js';
import { notFound } from '../../../core/errors.js';
import { caller, requireAdmin } from '../../plugins/auth.js';
import { Pagination, authErrors, problemRef } from '../../schemas.js';
import {
  CreateUserBody,
  CreditBody,
  CreditResponse,
  IdempotencyHeaders,
  LedgerPage,
  User,
  UserIdParams,
} from './schemas.js';

const users: FastifyPluginAsyncTypebox<{ users: UserService; ledger: Pick<Ledger, 'listForUser'> }> = async (
  app,
  { users, ledger },
) => {
  app.get(
    '/me',
    { schema: { tags: ['users'], summary: 'The caller', response: { 200: User, ...authErrors } } },
    async (request) => caller(request),
  );

  app.get(
    '/me/ledger',
    {
      schema: {
        tags: ['users'],
        summary: "The caller's ledger entries, newest first",
        querystring: Pagination,
        response: { 200: LedgerPage, 400: problemRef, ...authErrors },
      },
    },
    async (request) => {
      const { page, pageSize } = request.query;
      const result = await ledger.listForUser(caller(request).id, { limit: pageSize, offset: (page - 1) * pageSize });
      return { ...result, page, pageSize };
    },
  );

  app.get(
    '/:id',
    {
      schema: {
        tags: ['users'],
        summary: 'A user (admins: anyone; users: themselves)',
        params: UserIdParams,
        response: { 200: User, 400: problemRef, 404: problemRef, ...authErrors },
      },
    },
    async (request) => {
      const me = caller(request);
      if (me.role !== 'admin' && me.id !== request.params.id) throw notFound('User');
      const user = await users.getById(request.params.id);
      if (!user) throw notFound('User');
      return user;
    },
  );

  app.post(
    '/',
    {
      schema: {
        tags: ['users'],
        summary: 'Create a user (admin)',
        body: CreateUserBody,
        response: { 201: User, 400: problemRef, 403: problemRef, 409: problemRef, ...authErrors },
      },
    },
    async (request, reply) => {
      requireAdmin(request);
      return reply.code(201).send(await users.create(request.body));
    },
  );

  app.post(
    '/:id/credit',
    {
      schema: {
        tags: ['users'],
        summary: "Credit a user's balance through the ledger (admin)",
        description: 'Send an Idempotency-Key header to make a retried request credit once.',
        params: UserIdParams,
        headers: IdempotencyHeaders,
        body: CreditBody,
        response: { 200: CreditResponse, 400: problemRef, 403: problemRef, 404: problemRef, 409: problemRef, ...authErrors },
      },
    },
    async (request) => {
      const admin = requireAdmin(request);
      const key = request.headers['idempotency-key'];
      const entry = await users.credit(
        request.params.id,
        request.body.amount,
        request.body.reason,
        key ? `credit-${admin.id}-${key}` : `credit-${randomUUID()}`,
      );
      return { balance: entry.balanceAfter, entry };
    },
  );
};

export default users;
