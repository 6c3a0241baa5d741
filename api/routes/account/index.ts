/**
 * The caller's account (/api/v1/users/me/...): sessions, password, API keys, and their own audit.
 * Sessions, password and keys need a session: an API key cannot manage the account.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AuthService } from '../../../services/auth.js';
import type { AuditService } from '../../../services/audit.js';
import { pageRequest } from '../../../repositories/paging.js';
import { caller, callerSession, clientOf } from '../../plugins/auth.js';
import { authErrors, emptyResponse, problemResponses } from '../../schemas.js';
import { AuditPage, AuditQuery } from '../audit/schemas.js';
import { ApiKeyList, CreateApiKeyBody, IdParams, PasswordChangeBody, PasswordChanged, SessionList } from './schemas.js';

const noContent = emptyResponse('Done');

const account: FastifyPluginAsyncTypebox<{ auth: AuthService; audit: Pick<AuditService, 'ofUser'> }> = async (app, { auth, audit }) => {
  app.get(
    '/sessions',
    {
      schema: {
        operationId: 'listMySessions',
        tags: ['account'],
        summary: "The caller's live sessions (never their tokens)",
        response: { 200: SessionList, ...problemResponses(403), ...authErrors },
      },
    },
    async (request) => ({ items: await auth.sessions(callerSession(request)) }),
  );

  app.delete(
    '/sessions/:id',
    {
      schema: {
        operationId: 'revokeMySession',
        tags: ['account'],
        summary: 'Revoke one of your sessions: its next request is a 401',
        params: IdParams,
        response: { 204: noContent, ...problemResponses(400, 403, 404), ...authErrors },
      },
    },
    async (request, reply) => {
      await auth.revokeSession(callerSession(request).user.id, request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/password',
    {
      schema: {
        operationId: 'changeMyPassword',
        tags: ['account'],
        summary: 'Change your password; every other session of yours ends',
        body: PasswordChangeBody,
        response: { 200: PasswordChanged, ...problemResponses(400, 403), ...authErrors },
      },
    },
    async (request) => auth.changePassword(callerSession(request), request.body.currentPassword, request.body.newPassword, clientOf(request)),
  );

  app.post(
    '/api-keys',
    {
      schema: {
        operationId: 'createApiKey',
        tags: ['account'],
        summary: 'Create an API key limited to scopes; the key is in this answer only',
        description: 'Use it as "Authorization: Bearer <key>". A route outside its scopes answers 403.',
        body: CreateApiKeyBody,
        response: { 201: Type.Ref('CreatedApiKey'), ...problemResponses(400, 403), ...authErrors },
      },
    },
    async (request, reply) => {
      const { user } = callerSession(request);
      const { name, scopes, expiresAt } = request.body;
      return reply.code(201).send(await auth.createApiKey(user, { name, scopes, expiresAt: expiresAt ? new Date(expiresAt) : undefined }));
    },
  );

  app.get(
    '/api-keys',
    {
      schema: {
        operationId: 'listApiKeys',
        tags: ['account'],
        summary: "Your API keys that are not revoked (never the keys themselves)",
        response: { 200: ApiKeyList, ...problemResponses(403), ...authErrors },
      },
    },
    async (request) => ({ items: await auth.apiKeys(callerSession(request).user.id) }),
  );

  app.delete(
    '/api-keys/:id',
    {
      schema: {
        operationId: 'revokeApiKey',
        tags: ['account'],
        summary: 'Revoke an API key: its next request is a 401',
        params: IdParams,
        response: { 204: noContent, ...problemResponses(400, 403, 404), ...authErrors },
      },
    },
    async (request, reply) => {
      await auth.revokeApiKey(callerSession(request).user.id, request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/audit',
    {
      schema: {
        operationId: 'listMyAuditEntries',
        tags: ['account'],
        summary: 'Your audit: what you did, and what the system or an admin did to your things, newest first',
        querystring: AuditQuery,
        response: { 200: AuditPage, ...problemResponses(400, 403), ...authErrors },
      },
    },
    async (request) => {
      const { page, pageSize, ...filter } = request.query;
      return { ...(await audit.ofUser(caller(request).id, filter, pageRequest({ page, pageSize }))), page, pageSize };
    },
  );
};

export default account;
