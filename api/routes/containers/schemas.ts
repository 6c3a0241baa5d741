import { Type } from 'typebox';
import { HOST_ID } from '../../../core/config.js';
import { DateTime, Pagination, Uuid } from '../../schemas.js';
import { multiline } from '../../plugins/input.js';
import { CONTAINER_REASON_CODES, CONTAINER_STATES } from '../../../core/container-state.js';

const ENV_NAME = '^[A-Za-z_][A-Za-z0-9_]*$';

export const ContainerStateName = Type.Union(CONTAINER_STATES.map((s) => Type.Literal(s)));

export const ContainerReasonCodeName = Type.Union(CONTAINER_REASON_CODES.map((c) => Type.Literal(c)));

export const Container = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    userId: Uuid,
    host: Type.String(),
    imageId: Type.Union([Uuid, Type.Null()], { description: 'null once the image record has been removed' }),
    image: Type.String(),
    state: Type.String(),
    stateReason: Type.Union([Type.String(), Type.Null()]),
    stateReasonCode: Type.Union([ContainerReasonCodeName, Type.Null()], {
      description: 'Why it is in its state, as a code (insufficient_funds: a 409 for ?wait=true; the others a 502); null when no reason is needed',
    }),
    hostIp: Type.String({ description: 'The address the port is published on' }),
    hostPort: Type.Integer(),
    containerPort: Type.Integer(),
    memoryMb: Type.Integer(),
    cpus: Type.Number(),
    pidsLimit: Type.Union([Type.Integer(), Type.Null()], { description: 'The most processes it may run (null: created before PIDs limits)' }),
    pricePerPeriod: Type.Union([Type.Integer(), Type.Null()], {
      description: 'Minor units charged per started billing period, fixed at creation (null: created before prices by resources)',
    }),
    nextChargeAt: Type.Union([DateTime, Type.Null()], {
      description: 'When a running container is charged its next period of pricePerPeriod (about: within the seconds its start took); null unless running',
    }),
    exitCode: Type.Union([Type.Integer(), Type.Null()]),
    charged: Type.Integer({ description: 'Minor units charged so far' }),
    workflowId: Type.String(),
    createdAt: DateTime,
    startedAt: Type.Union([DateTime, Type.Null()]),
    removedAt: Type.Union([DateTime, Type.Null()]),
  },
  { $id: 'Container', description: 'A container and its billing' },
);
export const ContainerRef = Type.Ref('Container');

export const ContainerPage = Type.Object({ items: Type.Array(ContainerRef), total: Type.Integer() });

export const CreateBody = Type.Object(
  {
    imageId: Uuid,
    name: Type.Optional(Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$', description: 'Letters, digits, "_", "." and "-"' })),
    containerPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    memoryMb: Type.Optional(Type.Integer({ minimum: 6 })),
    cpus: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Between the minimum and maximum CPUs (settings), in steps of 0.001' })),
    pidsLimit: Type.Optional(Type.Integer({ minimum: 16, description: 'The most processes the container may run (default and cap: settings)' })),
    // Env names are POSIX names (no "=", no newline); values and arguments may span lines, never hold NUL.
    env: Type.Optional(
      Type.Record(Type.String({ pattern: ENV_NAME }), Type.String({ maxLength: 4096, ...multiline }), {
        maxProperties: 100,
        propertyNames: { pattern: ENV_NAME },
        additionalProperties: false,
        description: 'Names: letters, digits and "_", not starting with a digit',
      }),
    ),
    cmd: Type.Optional(Type.Array(Type.String({ maxLength: 4096, ...multiline }), { minItems: 1, maxItems: 100 })),
  },
  { additionalProperties: false },
);

export const Created = Type.Object({ id: Uuid, workflowId: Type.String() });

export const QuoteBody = Type.Object(
  {
    memoryMb: CreateBody.properties.memoryMb,
    cpus: CreateBody.properties.cpus,
    pidsLimit: CreateBody.properties.pidsLimit,
  },
  { additionalProperties: false },
);

export const Quote = Type.Object({
  memoryMb: Type.Integer(),
  cpus: Type.Number(),
  pidsLimit: Type.Integer(),
  pricePerPeriod: Type.Integer({ description: 'Minor units per started billing period: base + per CPU + per GB of memory' }),
  billingPeriodSeconds: Type.Integer(),
  prices: Type.Object({ base: Type.Integer(), perCpu: Type.Integer(), perGbMemory: Type.Integer() }),
}, { $id: 'ContainerQuote', description: 'What a container with these limits costs per billing period' });

export const ListQuery = Type.Intersect([
  Pagination,
  Type.Object({ userId: Type.Optional(Uuid), host: Type.Optional(Type.String({ maxLength: 63, pattern: HOST_ID.source })), state: Type.Optional(ContainerStateName) }),
]);

export const ContainerParams = Type.Object({ id: Uuid });
export const OperationParams = Type.Object({
  id: Uuid,
  operation: Type.Union([Type.Literal('start'), Type.Literal('stop'), Type.Literal('restart')]),
});

export const WaitQuery = Type.Object({ wait: Type.Boolean({ default: false }) });

export const LogsQuery = Type.Object({
  tail: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Literal('all')])),
  since: Type.Optional(Type.Integer({ minimum: 0, description: 'Unix seconds' })),
  timestamps: Type.Boolean({ default: false }),
  follow: Type.Boolean({ default: false }),
});

export const StatsTicket = Type.Object({
  ticket: Type.String({ description: 'Single use; valid for a short time' }),
  expiresAt: DateTime,
});

/** One message of the stats WebSocket (core/docker-frames.ts, StatsSample): a named component, referenced by no route. */
export const StatsSample = Type.Object(
  {
    at: Type.String({ description: "The sample's time, as Docker reads it (RFC 3339)" }),
    cpuPercent: Type.Number({ description: 'CPU use, 100 per busy CPU' }),
    memoryUsage: Type.Integer({ description: 'Bytes, page cache excluded' }),
    memoryLimit: Type.Integer({ description: 'Bytes' }),
    networkRx: Type.Integer({ description: 'Bytes received, all interfaces' }),
    networkTx: Type.Integer({ description: 'Bytes sent, all interfaces' }),
    blockRead: Type.Integer({ description: 'Bytes read from block devices' }),
    blockWrite: Type.Integer({ description: 'Bytes written to block devices' }),
    pids: Type.Integer({ description: 'Processes running' }),
  },
  { $id: 'StatsSample', description: 'A text message of the stats WebSocket (GET /api/v1/containers/{id}/stats), as JSON' },
);

/** The last message before the server closes a stats WebSocket for a reason. */
export const StatsError = Type.Object(
  { error: Type.String({ description: 'Why the socket is closed' }) },
  { $id: 'StatsError', description: 'The last text message of a stats WebSocket the server closes for a reason, as JSON' },
);
