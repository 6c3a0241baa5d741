/**
 * Errors as application/problem+json: domain errors keep their status and detail,
 * client mistakes get a 4xx that says what was wrong, anything else is a 500 whose
 * details stay in the log.
 */
import fp from 'fastify-plugin';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../core/errors.js';
import { dcuErrorMessage, dcuLanguage } from '../dcu-messages.js';
import type { NotFoundFallback } from './web-console.js';

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  requestId?: string;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  413: 'Payload Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
};

export function problemFor(error: unknown, request: FastifyRequest): ProblemBody {
  const base = { instance: request.url.split('?')[0]!, requestId: String(request.id) };
  if (error instanceof AppError) {
    return { type: `/problems/${error.type}`, title: error.title, status: error.status, detail: error.detail, ...base };
  }
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    const context = fastifyError.validationContext ?? 'request';
    return {
      type: '/problems/validation',
      title: 'Bad Request',
      status: 400,
      detail: `Invalid ${context}: ${fastifyError.message.replace(/^(body|querystring|params|headers)\/?\s*/, '')}`,
      ...base,
    };
  }
  const status = fastifyError.statusCode;
  if (status && status >= 400 && status < 500) {
    return {
      type: `/problems/${(TITLES[status] ?? 'client-error').toLowerCase().replace(/ /g, '-')}`,
      title: TITLES[status] ?? 'Client Error',
      status,
      detail: fastifyError.message,
      ...base,
    };
  }
  return { type: '/problems/internal', title: 'Internal Server Error', status: 500, ...base };
}

export function sendProblem(reply: FastifyReply, problem: ProblemBody) {
  return reply.code(problem.status).type('application/problem+json').send(problem);
}

/**
 * Fastify's `frameworkErrors`: errors its router raises before any route or hook runs (a
 * malformed %-encoding, FST_ERR_BAD_URL; a path parameter over maxParamLength,
 * FST_ERR_MAX_PARAM_LENGTH). A problem, or the DCU envelope under /api/dcu; the detail does not
 * echo the URL back.
 */
const ROUTER_DETAILS: Record<string, string> = {
  FST_ERR_BAD_URL: 'The URL is not valid: a malformed %-encoding.',
  FST_ERR_MAX_PARAM_LENGTH: 'A path parameter is too long.',
};

export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const found = problemFor(error, request);
  const problem = { ...found, detail: ROUTER_DETAILS[error.code] ?? found.detail };
  if (problem.status >= 500) request.log.error({ err: error }, 'request failed');
  if (/^\/api\/dcu(\/|$)/.test(request.url)) {
    const message = dcuErrorMessage(dcuLanguage(request), error, problem.status, problem.detail ?? problem.title);
    void reply.code(problem.status).type('application/json; charset=utf-8').send({ code: problem.status, status: problem.status, message, data: null });
    return;
  }
  void sendProblem(reply, problem);
}

export default fp<{ fallback?: NotFoundFallback }>(
  async (app, { fallback }) => {
    app.setErrorHandler((error, request, reply) => {
      const problem = problemFor(error, request);
      if (problem.status >= 500) request.log.error({ err: error }, 'request failed');
      else request.log.info({ status: problem.status, detail: problem.detail }, 'request rejected');
      if (error instanceof AppError) reply.headers(error.headers);
      return sendProblem(reply, problem);
    });
    // What no route answers may be a page of the web console (api/plugins/web-console.ts).
    app.setNotFoundHandler(async (request, reply) => {
      if (fallback && (await fallback(request, reply))) return reply;
      return sendProblem(reply, {
        type: '/problems/not-found',
        title: 'Not Found',
        status: 404,
        detail: `No route ${request.method} ${request.url.split('?')[0]}.`,
        instance: request.url.split('?')[0]!,
        requestId: String(request.id),
      });
    });
  },
  { name: 'problems' },
);
