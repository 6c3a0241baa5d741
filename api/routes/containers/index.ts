import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ContainerService } from '../../../services/containers.js';
import { pageRequest } from '../../../repositories/paging.js';
import { caller } from '../../plugins/auth.js';
import { authErrors, problemResponses } from '../../schemas.js';
import {
  Container,
  ContainerPage,
  ContainerParams,
  ContainerRef,
  CreateBody,
  Created,
  ListQuery,
  OperationParams,
  Quote,
  QuoteBody,
  WaitQuery,
} from './schemas.js';

const errors = { ...problemResponses(400, 404, 409, 422, 502), ...authErrors } as const;

const containerRoutes: FastifyPluginAsyncTypebox<{ containers: ContainerService }> = async (app, { containers }) => {
  app.addSchema(Container);
  app.addSchema(Quote);

  app.post(
    '/',
    {
      schema: {
        operationId: 'createContainer',
        tags: ['containers'],
        summary: "Run a container from one of your images (or a public one) on the image's host",
        description: '202 with the id; `?wait=true` answers 201 with the container once it runs, or the reason it could not run as a problem (409 insufficient funds, 502 Docker refused).',
        body: CreateBody,
        querystring: WaitQuery,
        response: { 201: ContainerRef, 202: Created, ...errors },
      },
    },
    async (request, reply) => {
      const user = caller(request);
      if (!request.query.wait) {
        const created = await containers.create(user, request.body);
        return reply.code(202).header('location', `/api/v1/containers/${created.id}`).send(created);
      }
      const running = await containers.createRunning(user, request.body);
      return reply.code(201).header('location', `/api/v1/containers/${running.id}`).send(running);
    },
  );

  app.post(
    '/quote',
    {
      schema: {
        operationId: 'quoteContainer',
        tags: ['containers'],
        summary: 'The price per billing period of a container with these limits, before running it (nothing is created)',
        body: QuoteBody,
        response: { 200: Type.Ref('ContainerQuote'), ...problemResponses(400), ...authErrors },
      },
    },
    async (request) => containers.quote(request.body),
  );

  app.get(
    '/',
    {
      schema: {
        operationId: 'listContainers',
        tags: ['containers'],
        summary: 'Your containers (admins: all, filterable by user, host and state); removed ones with ?state=removed',
        querystring: ListQuery,
        response: { 200: ContainerPage, ...problemResponses(400), ...authErrors },
      },
    },
    async (request) => {
      const { page, pageSize, ...filter } = request.query;
      return containers.list(caller(request), filter, pageRequest({ page, pageSize }));
    },
  );

  app.get(
    '/:id',
    {
      schema: {
        operationId: 'getContainer',
        tags: ['containers'],
        summary: 'A container you may see',
        params: ContainerParams,
        response: { 200: ContainerRef, ...errors },
      },
    },
    async (request) => containers.getVisible(caller(request), request.params.id),
  );

  app.post(
    '/:id/:operation',
    {
      schema: {
        operationId: 'operateContainer',
        tags: ['containers'],
        summary: 'start, stop or restart: a Temporal update on the container workflow, answered with the new state',
        params: OperationParams,
        response: { 200: ContainerRef, ...errors },
      },
    },
    async (request) => {
      const user = caller(request);
      await containers.operate(user, request.params.id, request.params.operation);
      return containers.getVisible(user, request.params.id);
    },
  );

  app.delete(
    '/:id',
    {
      schema: {
        operationId: 'removeContainer',
        tags: ['containers'],
        summary: 'Remove: billing stops, the container is removed, its port is freed, its workflow ends',
        params: ContainerParams,
        response: { 200: ContainerRef, ...errors },
      },
    },
    async (request) => {
      const user = caller(request);
      await containers.operate(user, request.params.id, 'remove');
      return containers.getVisible(user, request.params.id);
    },
  );
};

export default containerRoutes;
