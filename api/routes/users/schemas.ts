import { Type } from 'typebox';
import { USERNAME } from '../../../core/config.js';
import { DateTime, Uuid } from '../../schemas.js';

export const Role = Type.Union([Type.Literal('admin'), Type.Literal('user')]);

export const User = Type.Object(
  {
    id: Uuid,
    username: Type.String(),
    role: Role,
    balance: Type.Integer({ description: 'In minor units (e.g. cents)' }),
    createdAt: DateTime,
  },
  { $id: 'User', description: 'A user' },
);
export const UserRef = Type.Ref('User');

/** Amounts are integer minor units; the upper bound keeps every sum a safe integer. */
const Amount = Type.Integer({ minimum: 1, maximum: 1_000_000_000_000 });

export const CreateUserBody = Type.Object(
  {
    username: Type.String({ pattern: USERNAME.source }),
    password: Type.String({ minLength: 8, maxLength: 1024 }),
    role: Type.Optional(Role),
    balance: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000_000 })),
  },
  { additionalProperties: false },
);

export const UserIdParams = Type.Object({ id: Uuid });

export const CreditBody = Type.Object(
  {
    amount: Amount,
    reason: Type.String({ minLength: 1, maxLength: 500 }),
  },
  { additionalProperties: false },
);

export const LedgerEntry = Type.Object(
  {
    id: Type.Integer(),
    amount: Type.Integer(),
    balanceAfter: Type.Integer(),
    kind: Type.String(),
    reason: Type.String(),
    createdAt: DateTime,
  },
  { $id: 'LedgerEntry', description: 'One movement of a balance' },
);
const LedgerEntryRef = Type.Ref('LedgerEntry');

export const CreditResponse = Type.Object({ balance: Type.Integer(), entry: LedgerEntryRef });

export const LedgerPage = Type.Object({
  items: Type.Array(LedgerEntryRef),
  total: Type.Integer(),
  page: Type.Integer(),
  pageSize: Type.Integer(),
});

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
});

export const AdminUser = Type.Object(
  {
    id: Uuid,
    username: Type.String(),
    role: Role,
    balance: Type.Integer({ description: 'In minor units (e.g. cents)' }),
    disabled: Type.Boolean(),
    createdAt: DateTime,
  },
  { $id: 'AdminUser' },
);

export const UserListQuery = Type.Object(
  {
    page: Type.Integer({ minimum: 1, default: 1 }),
    pageSize: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'A substring of the username' })),
    role: Type.Optional(Role),
    disabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const UserPage = Type.Object({ items: Type.Array(Type.Ref('AdminUser')), total: Type.Integer(), page: Type.Integer(), pageSize: Type.Integer() });

export const UpdateUserBody = Type.Object(
  { disabled: Type.Optional(Type.Boolean()), role: Type.Optional(Role) },
  { additionalProperties: false, minProperties: 1 },
);

export const UpdatedUser = Type.Object({
  user: Type.Ref('AdminUser'),
  stoppedContainers: Type.Array(Uuid, { description: 'Running containers stopped because the user was disabled' }),
  failedToStop: Type.Array(Type.Object({ id: Uuid, reason: Type.String() })),
});

export const PasswordResetBody = Type.Object(
  { newPassword: Type.String({ minLength: 8, maxLength: 1024 }) },
  { additionalProperties: false },
);

export const PasswordReset = Type.Object({ revokedSessions: Type.Integer({ description: "The user's sessions ended" }) });
