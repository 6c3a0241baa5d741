/**
 * Schemas shared by several route plugins (the problem body, pagination), and the helpers
 * every route uses so that the OpenAPI document (/docs/json) tells clients the truth.
 * The conventions, checked by test/integration/openapi.test.ts:
 *
 * - Every route has `schema.operationId`: camelCase verb + noun (`listImages`, `pullImage`),
 *   unique, and never renamed once released (generated clients are named after it).
 * - Every route declares its success response. A body that is not JSON says its content
 *   type (`textResponse`: logs, Server-Sent Events, metrics); a response without a body
 *   says so (`emptyResponse`: redirects, the WebSocket upgrade).
 * - Errors are `application/problem+json`: `...problemResponses(400, 404)` for the route's
 *   own, plus `...authErrors` on every route behind authentication. (The DCU routes keep
 *   their envelope, `dcuErrors` in api/routes/dcu/schemas.ts.)
 * - A model several responses share is a named component of the document (`Problem`,
 *   `Image`, `Container`, ...): give it an `$id`, register it with `app.addSchema` in the
 *   plugins that answer with it, and answer with `Type.Ref('<$id>')` (an `$id` on a schema
 *   used inline is not emitted as a component). Only response schemas: request schemas stay
 *   inline (see api/plugins/input.ts).
 * - Public routes (`config: { public: true }`) get `security: []` from api/app.ts.
 */
import { STATUS_CODES } from 'node:http';
import { Type, type Static } from 'typebox';

export const PROBLEM_JSON = 'application/problem+json';

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.Optional(Type.String()),
    instance: Type.Optional(Type.String()),
    requestId: Type.Optional(Type.String()),
  },
  { $id: 'Problem', description: 'RFC 9457 problem details (application/problem+json)' },
);

export const problemRef = Type.Ref('Problem');

/** One error response: the Problem schema under application/problem+json. */
export interface ProblemResponse {
  description: string;
  content: { [PROBLEM_JSON]: { schema: typeof problemRef } };
}

/**
 * Problem responses for these statuses, to spread into a route's `response`:
 * `response: { 200: Image, ...problemResponses(400, 404), ...authErrors }`. The problem
 * plugin (api/plugins/problems.ts) sends errors with this content type, so Fastify
 * serializes them with this schema.
 */
export function problemResponses<const S extends readonly number[]>(...statuses: S): Record<S[number], ProblemResponse> {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      { description: `${STATUS_CODES[status] ?? 'Error'} (a problem)`, content: { [PROBLEM_JSON]: { schema: problemRef } } },
    ]),
  ) as Record<S[number], ProblemResponse>;
}

/** Responses every authenticated route may give besides its own. */
export const authErrors = problemResponses(401, 429);

/** A response header, as the OpenAPI document describes it. */
export interface ResponseHeader {
  type: 'string' | 'integer';
  description: string;
  format?: string;
}

/**
 * A body that is text, not JSON (logs, Server-Sent Events, metrics): its content type and
 * what it holds. Handlers send strings or streams, which Fastify does not serialize.
 */
export function textResponse(contentType: string, description: string, headers?: Record<string, ResponseHeader>) {
  return {
    description,
    ...(headers ? { headers } : {}),
    content: { [contentType]: { schema: Type.String({ description }) } },
  };
}

/** A response without a body (a redirect, the 101 of a WebSocket upgrade), with its headers. */
export function emptyResponse(description: string, headers?: Record<string, ResponseHeader>) {
  return { description, type: 'null', ...(headers ? { headers } : {}) } as const;
}

export const Pagination = Type.Object({
  page: Type.Integer({ minimum: 1, default: 1 }),
  pageSize: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
});
export type Pagination = Static<typeof Pagination>;

export const Uuid = Type.String({ format: 'uuid' });

/** A timestamp: handlers return Dates, the serializer writes ISO 8601. */
export const DateTime = Type.Unsafe<Date | string>({ type: 'string', format: 'date-time' });
