/** Schemas shared by several route plugins: the problem body and pagination. */
import { Type, type Static } from 'typebox';

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

/** Responses every authenticated route may give besides its own. */
export const authErrors = { 401: problemRef, 429: problemRef } as const;

export const Pagination = Type.Object({
  page: Type.Integer({ minimum: 1, default: 1 }),
  pageSize: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
});
export type Pagination = Static<typeof Pagination>;

export const Uuid = Type.String({ format: 'uuid' });

/** A timestamp: handlers return Dates, the serializer writes ISO 8601. */
export const DateTime = Type.Unsafe<Date | string>({ type: 'string', format: 'date-time' });
