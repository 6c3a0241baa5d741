import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ImageService } from '../../../services/images.js';
import type { PullService, PullStatus } from '../../../services/pulls.js';
import { pageRequest } from '../../../repositories/paging.js';
import { caller, requireAdmin } from '../../plugins/auth.js';
import { authErrors, problemResponses, textResponse } from '../../schemas.js';
import {
  Image,
  ImagePage,
  ImageRef,
  ImageParams,
  ListQuery,
  PullAccepted,
  PullBody,
  PullParams,
  PullStatus as PullStatusSchema,
  Removed,
  WaitQuery,
} from './schemas.js';

const SSE_POLL_MS = 500;

const images: FastifyPluginAsyncTypebox<{ images: ImageService; pulls: PullService }> = async (app, { images, pulls }) => {
  app.addSchema(Image);
  app.addSchema(PullStatusSchema);

  app.post(
    '/pull',
    {
      schema: {
        operationId: 'pullImage',
        tags: ['images'],
        summary: 'Pull an image onto a host and pay for it by size',
        description: '202 with the pull id; `?wait=true` waits for the end and answers 201 with the image (or the failure).',
        body: PullBody,
        querystring: WaitQuery,
        response: { 201: ImageRef, 202: PullAccepted, ...problemResponses(400, 409, 422, 502, 504), ...authErrors },
      },
    },
    async (request, reply) => {
      const { wait } = request.query;
      const { deduped, ...started } = await pulls.start(caller(request), request.body, { wait });
      if (!wait) return reply.code(202).header('location', `/api/v1/images/pulls/${started.pullId}`).send(started);
      // The caller owns it there already: the workflow's answer, from PostgreSQL.
      const image = deduped ?? (await pulls.result(started.pullId)).image;
      return reply.code(201).header('location', `/api/v1/images/${image.id}`).send(image);
    },
  );

  app.get(
    '/pulls/:pullId',
    {
      schema: {
        operationId: 'getPull',
        tags: ['images'],
        summary: "A pull's state, progress and outcome",
        params: PullParams,
        response: { 200: Type.Ref('Pull'), ...problemResponses(400, 404), ...authErrors },
      },
    },
    async (request) => pulls.status(caller(request), request.params.pullId),
  );

  app.get(
    '/pulls/:pullId/events',
    {
      schema: {
        operationId: 'streamPullEvents',
        tags: ['images'],
        summary: 'Server-Sent Events: progress until the end, then one done or error event',
        params: PullParams,
        response: {
          200: textResponse(
            'text/event-stream',
            'Server-Sent Events, each `event: <name>` and `data: <JSON>`: `progress` (the pull\'s progress, as in getPull) ' +
              'whenever it changes, then one `done` ({image, deduped}) or `error` ({type?, message}), and the stream ends.',
          ),
          ...problemResponses(400, 404),
          ...authErrors,
        },
      },
    },
    async (request, reply) => {
      const user = caller(request);
      let status: PullStatus = await pulls.status(user, request.params.pullId); // 404 before the stream opens
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-request-id': String(request.id),
      });
      let open = true;
      request.raw.on('close', () => {
        open = false;
      });
      const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      let last = '';
      try {
        while (open) {
          const progress = JSON.stringify(status.progress);
          if (progress !== last && status.progress) {
            send('progress', status.progress);
            last = progress;
          }
          if (status.state === 'completed') {
            send('done', { image: status.image, deduped: status.deduped });
            break;
          }
          if (status.state === 'failed') {
            send('error', status.error);
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, SSE_POLL_MS));
          status = await pulls.status(user, request.params.pullId);
        }
      } catch (error) {
        request.log.error({ err: error }, 'pull event stream failed');
        send('error', { message: 'The progress stream failed; GET the pull for its state.' });
      } finally {
        res.end();
      }
    },
  );

  app.get(
    '/',
    {
      schema: {
        operationId: 'listImages',
        tags: ['images'],
        summary: "The caller's images and the public ones (admins: all, ?userId= to filter), newest first",
        querystring: ListQuery,
        response: { 200: ImagePage, ...problemResponses(400), ...authErrors },
      },
    },
    async (request) => {
      const { userId } = request.query;
      return images.list(caller(request), { userId }, pageRequest(request.query));
    },
  );

  app.get(
    '/:id',
    {
      schema: {
        operationId: 'getImage',
        tags: ['images'],
        summary: 'An image the caller may see',
        params: ImageParams,
        response: { 200: ImageRef, ...problemResponses(400, 404), ...authErrors },
      },
    },
    async (request) => images.get(caller(request), request.params.id),
  );

  app.delete(
    '/:id',
    {
      schema: {
        operationId: 'removeImage',
        tags: ['images'],
        summary: 'Remove an image: refund its charge, delete the record, remove it from the host if no other record uses it',
        description: 'Waits for the removal, up to BERTH_WAIT_TIMEOUT: then 504, and the removal goes on.',
        params: ImageParams,
        response: { 200: Removed, ...problemResponses(400, 404, 409, 502, 504), ...authErrors },
      },
    },
    async (request) => images.remove(caller(request), request.params.id),
  );

  app.post(
    '/:id/publish',
    {
      schema: {
        operationId: 'publishImage',
        tags: ['images'],
        summary: 'Make an image public: visible to everyone, free to use, never released (admin)',
        params: ImageParams,
        response: { 200: ImageRef, ...problemResponses(400, 403, 404), ...authErrors },
      },
    },
    async (request) => {
      requireAdmin(request);
      return images.publish(request.params.id);
    },
  );
};

export default images;
