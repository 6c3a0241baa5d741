import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import type { HostService, HostView } from '../../../services/hosts.js';
import type { pingHost } from '../../../workflows/ping-host.js';
import { CONTROL_TASK_QUEUE, hostTaskQueue, workflowIds } from '../../../core/temporal-names.js';
import { gatewayTimeout, notFound, unprocessable } from '../../../core/errors.js';
import { requireAdmin } from '../../plugins/auth.js';
import { authErrors, problemRef } from '../../schemas.js';
import { HostList, HostParams, PingResponse } from './schemas.js';

const present = (host: HostView) => ({ ...host, taskQueue: hostTaskQueue(host.id) });

const hosts: FastifyPluginAsyncTypebox<{ hosts: Pick<HostService, 'list' | 'get'>; temporal: Client }> = async (
  app,
  { hosts, temporal },
) => {
  app.get(
    '/',
    {
      schema: {
        tags: ['hosts'],
        summary: 'Docker hosts with their status and last heartbeat (admin)',
        response: { 200: HostList, 403: problemRef, ...authErrors },
      },
    },
    async (request) => {
      requireAdmin(request);
      return { items: (await hosts.list()).map(present) };
    },
  );

  app.get(
    '/:id/ping',
    {
      schema: {
        tags: ['hosts'],
        summary: "Run a workflow whose activity runs on the host's own task queue (admin)",
        params: HostParams,
        response: { 200: PingResponse, 400: problemRef, 403: problemRef, 404: problemRef, 422: problemRef, 504: problemRef, ...authErrors },
      },
    },
    async (request) => {
      requireAdmin(request);
      const host = await hosts.get(request.params.id);
      if (!host) throw notFound(`Host "${request.params.id}"`);
      if (host.status !== 'up') throw unprocessable(`Host "${host.id}" is down: no heartbeat since ${host.lastHeartbeatAt.toISOString()}.`);
      const workflowId = workflowIds.pingHost(host.id, String(request.id));
      const started = Date.now();
      try {
        const info = await temporal.workflow.execute<typeof pingHost>('pingHost', {
          taskQueue: CONTROL_TASK_QUEUE,
          workflowId,
          args: [host.id],
          workflowExecutionTimeout: '30s',
        });
        return { ...info, workflowId, durationMs: Date.now() - started };
      } catch (error) {
        if (error instanceof WorkflowFailedError) {
          throw gatewayTimeout(`Host "${host.id}" did not answer: ${error.cause?.message ?? error.message}`);
        }
        throw error;
      }
    },
  );
};

export default hosts;
