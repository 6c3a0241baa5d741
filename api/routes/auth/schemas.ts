import { Type } from 'typebox';
import { DateTime } from '../../schemas.js';
import { UserRef } from '../users/schemas.js';

export const LoginBody = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 64 }),
    password: Type.String({ minLength: 1, maxLength: 1024 }),
  },
  { additionalProperties: false },
);

export const LoginResponse = Type.Object({
  token: Type.Optional(Type.String({ description: 'The session token, to send as `Authorization: Bearer <token>`; absent when the login sent X-Berth-CSRF: 1 (the cookie carries it)' })),
  expiresAt: DateTime,
  user: UserRef,
}, { $id: 'LoginResult', description: 'A session: its token (unless the cookie carries it), expiry and user' });
