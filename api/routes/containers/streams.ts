/**
 * Logs and live stats. Only host workers talk to Docker: the API checks the token
 * and ownership, then relays the host worker's internal stream (see
 * workers/host-streams.ts). When the client goes, the relay is aborted and the
 * host worker destroys the Docker stream behind it.
 */
import { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AppError, conflict, unprocessable } from '../../../core/errors.js';
import type { ContainerService } from '../../../services/containers.js';
import type { HostService } from '../../../services/hosts.js';
import { caller } from '../../plugins/auth.js';
import { authErrors, problemRef } from '../../schemas.js';
import { ContainerParams, LogsQuery } from './schemas.js';

type Deps = { containers: Pick<ContainerService, 'getVisible'>; hosts: Pick<HostService, 'get'>; internalToken: string };

const streams: FastifyPluginAsyncTypebox<Deps> = async (app, { containers, hosts, internalToken }) => {
  /** Opens the host worker's stream for a container the caller may see. */
  async function upstream(request: Parameters<typeof caller>[0], id: string, path: 'logs' | 'stats', query = '', signal?: AbortSignal) {
    const container = await containers.getVisible(caller(request), id);
    if (container.removedAt) throw conflict(`The container is ${container.state}.`);
    const host = await hosts.get(container.host);
    if (!host?.streamUrl || host.status !== 'up') throw unprocessable(`The container's host "${container.host}" is down.`);
    const res = await fetch(`${host.streamUrl}/containers/${id}/${path}${query}`, {
      headers: { authorization: `Bearer ${internalToken}` },
      signal: signal ?? null,
    });
    if (res.status === 404) throw conflict('The container is not on its host (it may have been removed outside Berth).');
    if (!res.ok || !res.body) throw new AppError(502, 'host-stream-failed', 'Bad Gateway', `The host answered ${res.status}.`);
    return { container, body: res.body };
  }

  const logsSchema = {
    tags: ['containers'],
    params: ContainerParams,
    querystring: LogsQuery,
    response: { 400: problemRef, 404: problemRef, 409: problemRef, 422: problemRef, 502: problemRef, ...authErrors },
  };

  function logsQuery(q: { tail?: number | 'all'; since?: number; timestamps: boolean; follow: boolean }, follow: boolean) {
    const params = new URLSearchParams({ timestamps: String(q.timestamps), follow: String(follow) });
    if (q.tail !== undefined) params.set('tail', String(q.tail));
    if (q.since !== undefined) params.set('since', String(q.since));
    return `?${params}`;
  }

  app.get(
    '/:id/logs',
    {
      schema: {
        ...logsSchema,
        summary: 'Logs as text, one line each, prefixed [stdout] or [stderr]; ?follow=true streams until you leave or it stops',
        produces: ['text/plain'],
      },
    },
    async (request, reply) => {
      const abort = new AbortController();
      request.raw.on('close', () => abort.abort());
      const { body } = await upstream(request, request.params.id, 'logs', logsQuery(request.query, request.query.follow), abort.signal);
      return reply.type('text/plain; charset=utf-8').send(Readable.fromWeb(body as never));
    },
  );

  app.get(
    '/:id/logs/download',
    { schema: { ...logsSchema, summary: 'The logs as a file attachment', produces: ['text/plain'] } },
    async (request, reply) => {
      const { container, body } = await upstream(request, request.params.id, 'logs', logsQuery(request.query, false));
      return reply
        .type('text/plain; charset=utf-8')
        .header('content-disposition', `attachment; filename="${container.name}-logs.txt"`)
        .send(Readable.fromWeb(body as never));
    },
  );

  app.get(
    '/:id/stats',
    {
      websocket: true,
      config: { queryToken: true },
      schema: {
        tags: ['containers'],
        summary: 'WebSocket: a JSON sample about once a second (CPU %, memory, network, block I/O, pids)',
        description: 'Browsers, which cannot set headers on a WebSocket, may pass the token as ?access_token=.',
        params: ContainerParams,
      },
    },
    async (socket, request) => {
      const abort = new AbortController();
      socket.on('close', () => abort.abort());
      try {
        const { body } = await upstream(request, (request.params as { id: string }).id, 'stats', '', abort.signal);
        let buffered = '';
        const decoder = new TextDecoder();
        for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
          buffered += decoder.decode(chunk, { stream: true });
          let newline: number;
          while ((newline = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, newline);
            buffered = buffered.slice(newline + 1);
            if (line) socket.send(line);
          }
        }
        socket.close(1000, 'stream ended');
      } catch (error) {
        if (abort.signal.aborted) return;
        const message = error instanceof AppError ? (error.detail ?? error.title) : 'stats stream failed';
        if (!(error instanceof AppError)) request.log.error({ err: error }, 'stats relay failed');
        socket.send(JSON.stringify({ error: message }));
        socket.close(error instanceof AppError && error.status < 500 ? 4000 + error.status : 1011, message.slice(0, 120));
      }
    },
  );
};

export default streams;
