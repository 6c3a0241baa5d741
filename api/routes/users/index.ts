import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { UserService } from '../../../services/users.js';
import { pageRequest } from '../../../repositories/paging.js';
import { notFound, unauthorized } from '../../../core/errors.js';
import { caller, requireAdmin } from '../../plugins/auth.js';
import { Pagination, authErrors, problemResponses } from '../../schemas.js';
import {
  CreateUserBody,
  CreditBody,
  CreditResponse,
  IdempotencyHeaders,
  LedgerEntry,
  LedgerPage,
  User,
  UserIdParams,
  UserRef,
} from './schemas.js';

const users: FastifyPluginAsyncTypebox<{ users: UserService }> = async (app, { users }) => {
  app.addSchema(User);
  app.addSchema(LedgerEntry);

  app.get(
    '/me',
    { schema: { operationId: 'getCurrentUser', tags: ['users'], summary: 'The caller', response: { 200: UserRef, ...authErrors } } },
    // Read again: the caller's balance as it is now, not as authentication may have cached it.
    async (request) => {
      const user = await users.getById(caller(request).id);
      if (!user) throw unauthorized();
      return user;
    },
  );

  app.get(
    '/me/ledger',
    {
      schema: {
        operationId: 'listLedgerEntries',
        tags: ['users'],
        summary: "The caller's ledger entries, newest first",
        querystring: Pagination,
        response: { 200: LedgerPage, ...problemResponses(400), ...authErrors },
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
        operationId: 'getUser',
        tags: ['users'],
        summary: 'A user (admins: anyone; users: themselves)',
        params: UserIdParams,
        response: { 200: UserRef, ...problemResponses(400, 404), ...authErrors },
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
        operationId: 'createUser',
        tags: ['users'],
        summary: 'Create a user (admin)',
        body: CreateUserBody,
        response: { 201: UserRef, ...problemResponses(400, 403, 409), ...authErrors },
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
        operationId: 'creditUser',
        tags: ['users'],
        summary: "Credit a user's balance through the ledger (admin)",
        description: 'Send an Idempotency-Key header to make a retried request credit once.',
        params: UserIdParams,
        headers: IdempotencyHeaders,
        body: CreditBody,
        response: { 200: CreditResponse, ...problemResponses(400, 403, 404, 409), ...authErrors },
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
