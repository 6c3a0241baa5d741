import { Type } from 'typebox';
import { DateTime } from '../../schemas.js';

export const AuditEntry = Type.Object(
  {
    id: Type.Integer(),
    at: DateTime,
    actorType: Type.Union([Type.Literal('user'), Type.Literal('api_key'), Type.Literal('anonymous'), Type.Literal('system')]),
    actorUserId: Type.Union([Type.String(), Type.Null()]),
    apiKeyId: Type.Union([Type.String(), Type.Null()]),
    action: Type.String({ description: "An API request's operation id, or the system's action (e.g. release.removeContainer)" }),
    targetType: Type.Union([Type.String(), Type.Null()]),
    targetId: Type.Union([Type.String(), Type.Null()]),
    subjectUserId: Type.Union([Type.String(), Type.Null()], { description: 'Whose things the action concerns' }),
    outcome: Type.Union([Type.Literal('success'), Type.Literal('failure')]),
    status: Type.Union([Type.Integer(), Type.Null()], { description: 'The HTTP status of an API request' }),
    requestId: Type.Union([Type.String(), Type.Null()]),
    clientIp: Type.Union([Type.String(), Type.Null()]),
    workflowId: Type.Union([Type.String(), Type.Null()]),
    detail: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  },
  { $id: 'AuditEntry' },
);

export const AuditQuery = Type.Object(
  {
    page: Type.Integer({ minimum: 1, default: 1 }),
    pageSize: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    actor: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'A user id, an API key id, or an actor type (system, anonymous)' })),
    action: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'An action, or the start of one' })),
    target: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: "The target's id" })),
    outcome: Type.Optional(Type.Union([Type.Literal('success'), Type.Literal('failure')])),
    from: Type.Optional(Type.String({ format: 'date-time' })),
    to: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);

export const AuditPage = Type.Object({
  items: Type.Array(Type.Ref('AuditEntry')),
  total: Type.Integer(),
  page: Type.Integer(),
  pageSize: Type.Integer(),
});
