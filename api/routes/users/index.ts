import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { UserService } from '../../../services/users.js';
import { pageRequest } from '../../../repositories/paging.js';
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

const users: FastifyPluginAsyncTypebox<{ users: UserService }> = async (app, { users }) => {
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
      const result = await users.ledger(caller(request).id, pageRequest({ page, pageSize }));
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
      const entry = await users.credit({
        userId: request.params.id,
        adminId: admin.id,
        amount: request.body.amount,
        reason: request.body.reason,
        requestKey: request.headers['idempotency-key'] ?? randomUUID(),
      });
      return { balance: entry.balanceAfter, entry };
    },
  );
};

export default users;
