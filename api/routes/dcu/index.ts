/**
 * The DCU API at /api/dcu, with the original service's paths and envelope. This plugin
 * has its own error and not-found handlers: every error here, authentication (401)
 * and validation (400) included, is answered as {code, status, message, data: null}.
 * `message` and `state_display` are Chinese unless Accept-Language prefers English
 * (api/dcu-messages.ts).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { DcuService, DcuTaskView } from '../../../services/dcu.js';
import { formatDcuTime } from '../../../services/dcu.js';
import { caller } from '../../plugins/auth.js';
import { problemFor } from '../../plugins/problems.js';
import { emptyResponse } from '../../schemas.js';
import { DCU_OK_MESSAGES, dcuErrorMessage, dcuLanguage, noRouteMessage, stateDisplay } from '../../dcu-messages.js';
import {
  CancelRequested,
  ErrorEnvelope,
  Health,
  QueryParams,
  StartBody,
  Started,
  Task,
  TaskEnvelope,
  TaskPage,
  TaskParams,
  dcuErrors,
  errorRef,
} from './schemas.js';

/** A success envelope, its message in the caller's language. */
const ok = <T>(request: FastifyRequest, data: T, message: keyof typeof DCU_OK_MESSAGES = 'ok') => ({
  code: 0,
  status: 200,
  message: DCU_OK_MESSAGES[message][dcuLanguage(request)],
  data,
});

/** A task as the caller's language shows its state. */
const shown = (request: FastifyRequest, task: DcuTaskView): DcuTaskView => ({ ...task, state_display: stateDisplay(task.state, dcuLanguage(request)) });

function sendError(reply: FastifyReply, status: number, message: string) {
  return reply.code(status).type('application/json; charset=utf-8').send({ code: status, status, message, data: null });
}

const dcu: FastifyPluginAsyncTypebox<{ dcu: DcuService }> = async (app, { dcu }) => {
  app.addSchema(ErrorEnvelope);
  app.addSchema(Task);

  app.setErrorHandler((error, request, reply) => {
    const problem = problemFor(error, request);
    if (problem.status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ status: problem.status, detail: problem.detail }, 'request rejected');
    return sendError(reply, problem.status, dcuErrorMessage(dcuLanguage(request), error, problem.status, problem.detail ?? problem.title));
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, 404, noRouteMessage(dcuLanguage(request), request.method, request.url.split('?')[0]!)));

  app.get(
    '/health',
    {
      config: { public: true },
      schema: { operationId: 'getDcuHealth', tags: ['dcu'], summary: 'The DCU service is up', response: { 200: Health } },
    },
    async (request) => ok(request, { status: 'healthy', time: formatDcuTime(new Date()) }),
  );

  app.post(
    '/start',
    {
      schema: {
        operationId: 'startDcuTask',
        tags: ['dcu'],
        summary: 'Start a Download-Compress-Upload task for an image',
        description: '`username` must be the caller (an admin may start for anyone). The task runs as the workflow `dcu-<task_id>`.',
        body: StartBody,
        response: { 200: Started, ...dcuErrors },
      },
    },
    async (request) => ok(request, await dcu.start(caller(request), request.body), 'started'),
  );

  app.get(
    '/status/:task_id',
    {
      schema: {
        operationId: 'getDcuTask',
        tags: ['dcu'],
        summary: "A task's state, progress, artifacts and timing",
        params: TaskParams,
        response: { 200: TaskEnvelope, ...dcuErrors },
      },
    },
    async (request) => ok(request, shown(request, await dcu.status(caller(request), request.params.task_id))),
  );

  app.get(
    '/query',
    {
      schema: {
        operationId: 'listDcuTasks',
        tags: ['dcu'],
        summary: "Tasks, newest first: the caller's (an admin: everyone's), filtered and paged",
        querystring: QueryParams,
        response: { 200: TaskPage, ...dcuErrors },
      },
    },
    async (request) => {
      const q = request.query;
      const { total, items } = await dcu.query(caller(request), {
        docker_image_name: q.docker_image_name || undefined,
        username: q.username || undefined,
        state: q.state || undefined,
        page: Number(q.page) || 1,
        page_size: Number(q.page_size) || 10,
      });
      return ok(request, { total, items: items.map((task) => shown(request, task)) });
    },
  );

  app.post(
    '/cancel/:task_id',
    {
      schema: {
        operationId: 'cancelDcuTask',
        tags: ['dcu'],
        summary: 'Cancel a running task: the running phase stops, partial artifacts are removed, the task ends failed "cancelled"',
        params: TaskParams,
        response: { 200: CancelRequested, ...dcuErrors },
      },
    },
    async (request) => ok(request, await dcu.cancel(caller(request), request.params.task_id), 'cancelRequested'),
  );

  app.get(
    '/download/:task_id',
    {
      schema: {
        operationId: 'downloadDcuArchive',
        tags: ['dcu'],
        summary: "302 to a presigned MinIO URL of a completed task's archive",
        description: 'The URL is valid for BERTH_DCU_DOWNLOAD_URL_TTL; the archive is a .tar.gz (application/gzip) that docker load reads.',
        params: TaskParams,
        response: {
          302: emptyResponse("Found: the archive's presigned MinIO URL", {
            location: { type: 'string', format: 'uri', description: 'The presigned URL of the .tar.gz' },
          }),
          ...dcuErrors,
          410: errorRef,
        },
      },
    },
    async (request, reply) => reply.redirect(await dcu.downloadUrl(caller(request), request.params.task_id), 302),
  );
};

export default dcu;
