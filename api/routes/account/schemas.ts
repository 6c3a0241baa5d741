import { Type } from 'typebox';
import { SCOPES } from '../../../core/scopes.js';
import { DateTime, Uuid } from '../../schemas.js';

export const Session = Type.Object(
  {
    id: Uuid,
    createdAt: DateTime,
    lastUsedAt: Type.Union([DateTime, Type.Null()]),
    expiresAt: DateTime,
    clientIp: Type.Union([Type.String(), Type.Null()]),
    userAgent: Type.Union([Type.String(), Type.Null()]),
    current: Type.Boolean({ description: 'The session this request presents' }),
  },
  { $id: 'Session' },
);

export const SessionList = Type.Object({ items: Type.Array(Type.Ref('Session')) });

export const IdParams = Type.Object({ id: Uuid });

/** Passwords: as for a new user. */
export const Password = Type.String({ minLength: 8, maxLength: 1024 });

export const PasswordChangeBody = Type.Object(
  { currentPassword: Type.String({ minLength: 1, maxLength: 1024 }), newPassword: Password },
  { additionalProperties: false },
);

export const PasswordChanged = Type.Object({ revokedSessions: Type.Integer({ description: 'Other sessions ended' }) });

export const ScopeName = Type.Union(
  SCOPES.map((s) => Type.Literal(s)),
  { description: 'images:read, images:write, containers:read, containers:write, dcu, ledger:read, audit:read, admin (an admin\'s key only)' },
);

export const CreateApiKeyBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    scopes: Type.Array(ScopeName, { minItems: 1, maxItems: SCOPES.length, uniqueItems: true }),
    expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);

const apiKeyFields = {
  id: Uuid,
  name: Type.String(),
  prefix: Type.String({ description: 'The first characters of the key, to tell keys apart' }),
  scopes: Type.Array(Type.String()),
  createdAt: DateTime,
  lastUsedAt: Type.Union([DateTime, Type.Null()]),
  expiresAt: Type.Union([DateTime, Type.Null()]),
};

export const ApiKey = Type.Object(apiKeyFields, { $id: 'ApiKey' });

export const CreatedApiKey = Type.Object(
  { ...apiKeyFields, key: Type.String({ description: 'The key: shown this once, never again' }) },
  { $id: 'CreatedApiKey' },
);

export const ApiKeyList = Type.Object({ items: Type.Array(Type.Ref('ApiKey')) });
