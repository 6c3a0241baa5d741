import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { toImageView, type ImageService } from '../../../services/images.js';
import type { PullService, PullStatus } from '../../../services/pulls.js';
import { problemForWorkflowFailure } from '../../../services/workflow-failures.js';
import { CONTROL_TASK_QUEUE, workflowIds } from '../../../core/temporal-names.js';
import { AppError } from '../../../core/errors.js';
import type { removeImage } from '../../../workflows/remove-image.js';
import { caller, requireAdmin } from '../../plugins/auth.js';
import { authErrors, problemRef } from '../../schemas.js';
import {
  Image,
  ImagePage,
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

const images: FastifyPluginAsyncTypebox<{ images: ImageService; pulls: PullService; temporal: Client }> = async (
  app,
  { images, pulls, temporal },
) => {
  app.post(
    '/pull',
    {
      schema: {
        tags: ['images'],
        summary: 'Pull an image onto a host and pay for it by size',
        description: '202 with the pull id; `?wait=true` waits for the end and answers 201 with the image (or the failure).',
        body: PullBody,
        querystring: WaitQuery,
        response: { 201: Image, 202: PullAccepted, 400: problemRef, 409: problemRef, 422: problemRef, 502: problemRef, 504: problemRef, ...authErrors },
      },
    },
    async (request, reply) => {
      const started = await pulls.start(caller(request), request.body);
      if (!request.query.wait) return reply.code(202).header('location', `/api/v1/images/pulls/${started.pullId}`).send(started);
      try {
        const { image } = await pulls.result(started.pullId);
        return reply.code(201).header('location', `/api/v1/images/${image.id}`).send(image);
      } catch (error) {
        if (error instanceof AppError) throw error; // the wait's own 504
        throw problemForWorkflowFailure(error);
      }
    },
  );

  app.get(
    '/pulls/:pullId',
    {
      schema: {
        tags: ['images'],
        summary: "A pull's state, progress and outcome",
        params: PullParams,
        response: { 200: PullStatusSchema, 400: problemRef, 404: problemRef, ...authErrors },
      },
    },
    async (request) => pulls.status(caller(request), request.params.pullId),
  );

  app.get(
    '/pulls/:pullId/events',
    {
      schema: {
        tags: ['images'],
        summary: 'Server-Sent Events: progress until the end, then one done or error event',
        params: PullParams,
        response: { 400: problemRef, 404: problemRef, ...authErrors },
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
        tags: ['images'],
        summary: "The caller's images and the public ones (admins: all, ?userId= to filter), newest first",
        querystring: ListQuery,
        response: { 200: ImagePage, 400: problemRef, ...authErrors },
      },
    },
    async (request) => {
      const { page, pageSize, userId } = request.query;
      return images.list(caller(request), { userId, limit: pageSize, offset: (page - 1) * pageSize });
    },
  );

  app.get(
    '/:id',
    {
      schema: { tags: ['images'], params: ImageParams, response: { 200: Image, 400: problemRef, 404: problemRef, ...authErrors } },
    },
    async (request) => toImageView(await images.getVisible(caller(request), request.params.id)),
  );

  app.delete(
    '/:id',
    {
      schema: {
        tags: ['images'],
        summary: 'Remove an image: refund its charge, delete the record, remove it from the host if no other record uses it',
        params: ImageParams,
        response: { 200: Removed, 400: problemRef, 404: problemRef, 409: problemRef, 502: problemRef, ...authErrors },
      },
    },
    async (request) => {
      const row = await images.getRemovable(caller(request), request.params.id);
      const workflowId = workflowIds.removeImage(row.id);
      let handle;
      try {
        handle = await temporal.workflow.start<typeof removeImage>('removeImage', {
          taskQueue: CONTROL_TASK_QUEUE,
          workflowId,
          args: [{ imageId: row.id, hostId: row.hostId, reference: row.reference, reason: `image ${row.reference} removed` }],
        });
      } catch (error) {
        // A removal of this image is already running: wait for that one.
        if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
        handle = temporal.workflow.getHandle<typeof removeImage>(workflowId);
      }
      try {
        const result = await handle.result();
        return { id: row.id, ...result };
      } catch (error) {
        throw problemForWorkflowFailure(error);
      }
    },
  );

  app.post(
    '/:id/publish',
    {
      schema: {
        tags: ['images'],
        summary: 'Make an image public: visible to everyone, free to use, never released (admin)',
        params: ImageParams,
        response: { 200: Image, 400: problemRef, 403: problemRef, 404: problemRef, ...authErrors },
      },
    },
    async (request) => {
      requireAdmin(request);
      return images.publish(request.params.id);
    },
  );
};

export default images;
