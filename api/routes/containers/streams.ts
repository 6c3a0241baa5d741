/**
 * Logs and live stats. Only host workers talk to Docker: the API checks the token
 * and ownership, then relays the host worker's internal stream (see
 * workers/host-streams.ts). When the client goes, the relay is aborted and the
 * host worker destroys the Docker stream behind it.
 *
 * Bounds: a user holds at most `limits.maxPerUser` log follows and stats sockets at
 * once (counted in this process; beyond it a 429, or close code 4429 on the socket,
 * before anything is opened upstream), and a stream that stays idle for
 * `limits.idleTimeoutMs` ends: a followed log through which nothing was sent, a stats
 * socket whose client sent nothing (any message or ping keeps it open) or to which no
 * sample was delivered.
 */
import { PassThrough, type Readable } from 'node:stream';
import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { AppError, conflict, unprocessable } from '../../../core/errors.js';
import type { StreamsConfig } from '../../../core/config.js';
import type { ContainerService } from '../../../services/containers.js';
import type { HostService } from '../../../services/hosts.js';
import type { HostStreamClient } from '../../../services/host-streams.js';
import { TICKET_TTL_MS, type AuthService } from '../../../services/auth.js';
import { caller } from '../../plugins/auth.js';
import { authErrors, emptyResponse, problemResponses, textResponse } from '../../schemas.js';
import { ContainerParams, LogsQuery, StatsError, StatsSample, StatsTicket } from './schemas.js';
import { LIMITS, countLimited } from '../../../core/metrics.js';

type Deps = {
  containers: Pick<ContainerService, 'getVisible'>;
  hosts: Pick<HostService, 'get'>;
  /** Reads host workers' endpoints with the internal token, over TLS where they serve it. */
  hostStreams: Pick<HostStreamClient, 'get'>;
  limits: StreamsConfig;
  auth: Pick<AuthService, 'streamTicket'>;
};

/** WebSocket close codes: 4000 + the HTTP status that means the same. */
export const CLOSE_TOO_MANY_STREAMS = 4429;
export const CLOSE_IDLE = 4408;

/** Open log follows and stats sockets per user, in this process. */
export function streamSlots(max: number) {
  const open = new Map<string, number>();
  return {
    /** A release function (idempotent), or null when the user holds `max` already. */
    acquire(userId: string): (() => void) | null {
      const held = open.get(userId) ?? 0;
      if (held >= max) return null;
      open.set(userId, held + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = (open.get(userId) ?? 1) - 1;
        if (left > 0) open.set(userId, left);
        else open.delete(userId);
      };
    },
    held: (userId: string) => open.get(userId) ?? 0,
  };
}

const describeDuration = (ms: number) => (ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms / 1000}s`);

const streams: FastifyPluginAsyncTypebox<Deps> = async (app, { containers, hosts, hostStreams, limits, auth }) => {
  // What the stats WebSocket sends: named components of the document, for clients to type its messages.
  app.addSchema(StatsSample);
  app.addSchema(StatsError);
  const slots = streamSlots(limits.maxPerUser);
  const idle = describeDuration(limits.idleTimeoutMs);

  /** A slot for one more long-lived stream of the caller's, or a 429. */
  function admit(request: FastifyRequest): () => void {
    const release = slots.acquire(caller(request).id);
    if (!release) {
      countLimited(LIMITS.streamLimit);
      throw new AppError(
        429,
        'too-many-streams',
        'Too Many Requests',
        `At most ${limits.maxPerUser} log follows and stats sockets may be open at once; close one first.`,
      );
    }
    return release;
  }

  /** The container (one the caller may see) and the address of its host's stream server. */
  async function locate(request: FastifyRequest, id: string) {
    const container = await containers.getVisible(caller(request), id);
    if (container.removedAt) throw conflict(`The container is ${container.state}.`);
    const host = await hosts.get(container.host);
    if (!host?.streamUrl || host.status !== 'up') throw unprocessable(`The container's host "${container.host}" is down.`);
    return { container, streamUrl: host.streamUrl };
  }

  /**
   * Opens the host worker's stream. A host that cannot be reached, or whose certificate is not
   * accepted, is a 502 (the reason is logged, not shown).
   */
  async function upstream(request: FastifyRequest, streamUrl: string, id: string, path: 'logs' | 'stats', query: string, signal: AbortSignal) {
    const res = await hostStreams.get(streamUrl, `/containers/${id}/${path}${query}`, signal).catch((error: unknown) => {
      if (signal.aborted) throw error;
      request.log.warn({ err: error }, 'host stream failed');
      throw new AppError(502, 'host-stream-failed', 'Bad Gateway', 'The host could not be reached.');
    });
    if (res.status < 200 || res.status > 299) res.body.destroy();
    if (res.status === 404) throw conflict('The container is not on its host (it may have been removed outside Berth).');
    if (res.status < 200 || res.status > 299) throw new AppError(502, 'host-stream-failed', 'Bad Gateway', `The host answered ${res.status}.`);
    return res.body;
  }

  /**
   * The upstream body as a Node stream for the reply. It ends (cleanly) once nothing came
   * through for the idle timeout. `onClose` runs once when it is over, however it ended.
   */
  function relay(source: Readable, abort: AbortController, onClose: () => void) {
    const out = new PassThrough();
    let idled = false;
    const timer = setTimeout(() => {
      idled = true;
      source.unpipe(out);
      source.destroy();
      out.end();
    }, limits.idleTimeoutMs);
    source.on('data', () => timer.refresh());
    source.on('error', (error) => {
      if (!idled) out.destroy(error);
    });
    // A host worker that went away mid-body: the reply ends in error, not as a clean end.
    source.on('close', () => {
      if (!idled && !source.readableEnded && !out.destroyed) out.destroy(new Error('the host closed the stream'));
    });
    out.on('close', () => {
      clearTimeout(timer);
      abort.abort();
      source.destroy();
      onClose();
    });
    source.pipe(out);
    return out;
  }

  const logsSchema = { tags: ['containers'], params: ContainerParams, querystring: LogsQuery };
  const logsErrors = { ...problemResponses(400, 404, 409, 422, 502), ...authErrors };
  const LOG_LINES = 'The log as text: one line per line the container wrote, prefixed [stdout] or [stderr] (and its time with ?timestamps=true).';

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
        operationId: 'getContainerLogs',
        summary: 'Logs as text, one line each, prefixed [stdout] or [stderr]; ?follow=true streams until you leave or it stops',
        description:
          'Without ?follow the body is the log so far. With ?follow=true it is streamed (chunked) as lines come, ' +
          'the headers sent at once, until the client leaves, the container stops or nothing was sent for ' +
          `${idle}. A followed log counts towards the caller's ${limits.maxPerUser} open streams (beyond them: 429).`,
        response: { 200: textResponse('text/plain', LOG_LINES), ...logsErrors },
      },
    },
    async (request, reply) => {
      const { follow } = request.query;
      const abort = new AbortController();
      let release: () => void = () => undefined;
      request.raw.once('close', () => abort.abort());
      reply.raw.once('close', () => {
        abort.abort();
        release();
      });
      const { streamUrl } = await locate(request, request.params.id);
      if (follow) release = admit(request);
      try {
        // A client gone already aborted the signal: the request fails and the slot is released.
        const body = await upstream(request, streamUrl, request.params.id, 'logs', logsQuery(request.query, follow), abort.signal);
        // Followed or not, a log that stops moving (nothing new, or a reader that stopped reading) ends.
        const out = relay(body, abort, release);
        // A followed log may be quiet for a while: send the headers at once, not with the first line.
        if (follow) reply.raw.once('pipe', () => reply.raw.headersSent || reply.raw.flushHeaders());
        return reply.type('text/plain; charset=utf-8').send(out);
      } catch (error) {
        release();
        throw error;
      }
    },
  );

  app.get(
    '/:id/logs/download',
    {
      schema: {
        ...logsSchema,
        operationId: 'downloadContainerLogs',
        summary: 'The logs as a file attachment',
        description: 'Never followed: the log so far, as a download (not counted as an open stream).',
        response: {
          200: textResponse('text/plain', LOG_LINES, {
            'content-disposition': { type: 'string', description: 'attachment; filename="<container name>-logs.txt"' },
          }),
          ...logsErrors,
        },
      },
    },
    async (request, reply) => {
      // Never followed, so it ends by itself: not counted as an open stream.
      const abort = new AbortController();
      reply.raw.once('close', () => abort.abort());
      const { container, streamUrl } = await locate(request, request.params.id);
      const body = await upstream(request, streamUrl, request.params.id, 'logs', logsQuery(request.query, false), abort.signal);
      return reply
        .type('text/plain; charset=utf-8')
        .header('content-disposition', `attachment; filename="${container.name}-logs.txt"`)
        .send(relay(body, abort, () => undefined));
    },
  );

  app.post(
    '/:id/stats/ticket',
    {
      schema: {
        operationId: 'createStatsTicket',
        tags: ['containers'],
        summary: "A single-use ticket that opens this container's stats WebSocket (for browsers)",
        description: `Valid for ${TICKET_TTL_MS / 1000} s and one socket: open GET /api/v1/containers/{id}/stats?ticket=<ticket>.`,
        params: ContainerParams,
        response: { 201: StatsTicket, ...problemResponses(400, 403, 404), ...authErrors },
      },
    },
    async (request, reply) => {
      const container = await containers.getVisible(caller(request), request.params.id);
      return reply.code(201).send(await auth.streamTicket(caller(request).id, container.id));
    },
  );

  app.route({
    method: 'GET',
    url: '/:id/stats',
    config: { ticket: true },
    schema: {
      operationId: 'streamContainerStats',
      tags: ['containers'],
      summary: 'WebSocket: a JSON sample about once a second (CPU %, memory, network, block I/O, pids)',
      description:
        'A WebSocket (RFC 6455): send `Connection: Upgrade`, `Upgrade: websocket`; the answer is 101 Switching Protocols, ' +
        'or a problem when the request or its token is refused (one without the upgrade is a 426). ' +
        'Server messages are text frames, one JSON object each: a sample (`#/components/schemas/StatsSample`) about once ' +
        'a second, the latest at once on joining; before the server closes for a reason, one `{"error": "<reason>"}` ' +
        '(`#/components/schemas/StatsError`). Close codes: 1000 the container\'s stream ended; 4000 + an HTTP status ' +
        `when it is refused after the upgrade (4404, 4409, 4422); ${CLOSE_TOO_MANY_STREAMS} beyond the caller's ` +
        `${limits.maxPerUser} open streams; ${CLOSE_IDLE} idle; 1011 the host failed. The client's messages are ignored but ` +
        `keep the socket open: send one (or a ping) at least every ${idle}; a socket whose client sent nothing, or that ` +
        `got no sample, for ${idle} is closed. Browsers, which cannot set headers on a WebSocket, open it with ?ticket=<ticket> from ` +
        'POST /api/v1/containers/{id}/stats/ticket (single use, short-lived); a token is never put in a URL.',
      params: ContainerParams,
      querystring: Type.Object({
        ticket: Type.Optional(Type.String({ maxLength: 100, description: 'A single-use ticket from POST .../stats/ticket, for clients that cannot send an Authorization header' })),
      }),
      response: {
        101: emptyResponse('Switching Protocols: the WebSocket is open and JSON samples follow as text messages', {
          upgrade: { type: 'string', description: 'websocket' },
          connection: { type: 'string', description: 'Upgrade' },
        }),
        // The container and its host are checked after the upgrade: those refusals are close codes.
        ...problemResponses(400, 426),
        ...authErrors,
      },
    },
    // A plain GET (no upgrade) reaches this handler.
    handler: async (_request, reply) => {
      reply.header('upgrade', 'websocket');
      throw new AppError(426, 'upgrade-required', 'Upgrade Required', 'This route is a WebSocket: send Connection: Upgrade and Upgrade: websocket.');
    },
    wsHandler: async (socket, request) => {
      const id = request.params.id;
      const abort = new AbortController();
      let release: () => void = () => undefined;
      // Listeners first: messages that arrive while the container is looked up count too.
      const goIdle = (reason: string) => () => {
        socket.close(CLOSE_IDLE, reason);
        abort.abort();
      };
      const quiet = setTimeout(goIdle(`idle: the client sent nothing for ${idle}`), limits.idleTimeoutMs);
      const starved = setTimeout(goIdle(`idle: no sample for ${idle}`), limits.idleTimeoutMs);
      const heard = () => quiet.refresh();
      socket.on('message', heard);
      socket.on('ping', heard);
      const done = () => {
        clearTimeout(quiet);
        clearTimeout(starved);
        abort.abort();
        release();
      };
      socket.on('close', done);
      try {
        const { streamUrl } = await locate(request, id);
        if (abort.signal.aborted) return;
        release = admit(request);
        const body = await upstream(request, streamUrl, id, 'stats', '', abort.signal);
        let buffered = '';
        const decoder = new TextDecoder();
        for await (const chunk of body as AsyncIterable<Buffer>) {
          buffered += decoder.decode(chunk, { stream: true });
          let newline: number;
          while ((newline = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, newline);
            buffered = buffered.slice(newline + 1);
            if (line) {
              socket.send(line);
              starved.refresh();
            }
          }
        }
        socket.close(1000, 'stream ended');
      } catch (error) {
        if (abort.signal.aborted) return;
        const message = error instanceof AppError ? (error.detail ?? error.title) : 'stats stream failed';
        if (!(error instanceof AppError)) request.log.error({ err: error }, 'stats relay failed');
        socket.send(JSON.stringify({ error: message }));
        socket.close(error instanceof AppError && error.status < 500 ? 4000 + error.status : 1011, message.slice(0, 120));
      } finally {
        done();
      }
    },
  });
};

export default streams;
