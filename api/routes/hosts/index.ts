import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { HostService, HostView } from '../../../services/hosts.js';
import { hostTaskQueue } from '../../../core/temporal-names.js';
import { requireAdmin } from '../../plugins/auth.js';
import { authErrors, problemResponses } from '../../schemas.js';
import { Host, HostList, HostParams, PingResponse } from './schemas.js';

const present = (host: HostView & { containers: number }) => ({ ...host, taskQueue: hostTaskQueue(host.id) });

const hosts: FastifyPluginAsyncTypebox<{ hosts: Pick<HostService, 'list' | 'ping'> }> = async (app, { hosts }) => {
  app.addSchema(Host);
  app.addSchema(PingResponse);
  app.get(
    '/',
    {
      schema: {
        operationId: 'listHosts',
        tags: ['hosts'],
        summary: 'Docker hosts with their status and last heartbeat (admin)',
        response: { 200: HostList, ...problemResponses(403), ...authErrors },
      },
    },
    async (request) => {
      requireAdmin(request);
      return { items: (await hosts.list()).map(present) };
    },
  );

  // A POST: each ping starts a workflow (a GET never has a side effect).
  app.post(
    '/:id/ping',
    {
      schema: {
        operationId: 'pingHost',
        tags: ['hosts'],
        summary: "Run a workflow whose activity runs on the host's own task queue (admin)",
        params: HostParams,
        response: { 200: Type.Ref('HostPing'), ...problemResponses(400, 403, 404, 422, 504), ...authErrors },
      },
    },
    async (request) => {
      requireAdmin(request);
      return hosts.ping(request.params.id, String(request.id));
    },
  );
};

export default hosts;
