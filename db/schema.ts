/**
 * The one source of truth for Berth's tables. drizzle-kit generates the
 * migrations in db/migrations from this file; never edit a migration that has run.
 *
 * Money is integer minor units in BIGINT columns (never floats). Every balance
 * is kept at zero or above by a CHECK constraint, not only by code.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { CONTAINER_REASON_CODES, CONTAINER_STATES } from '../core/container-state.js';
import type { ImageView } from '../contracts/pull-image.js';

const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();

export const users = pgTable(
  'users',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    username: text('username').notNull(),
    passwordHash: text('password_hash').notNull(),
    role: text('role', { enum: ['admin', 'user'] }).notNull().default('user'),
    balance: bigint('balance', { mode: 'number' }).notNull().default(0),
    /** A disabled user's sessions and API keys stop working at once; they keep their balance. */
    disabled: boolean('disabled').notNull().default(false),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('users_username_key').on(t.username),
    check('users_balance_non_negative', sql`${t.balance} >= 0`),
    check('users_role_valid', sql`${t.role} in ('admin', 'user')`),
  ],
);

/** Sessions: the bearer tokens a login gives. Only a SHA-256 of the token is stored. */
export const tokens = pgTable(
  'tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    tokenHash: text('token_hash').notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    createdAt: createdAt(),
    /** Updated at most once a minute. */
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
    clientIp: text('client_ip'),
    userAgent: text('user_agent'),
    /** Logout, a revocation by its user, a password change or reset. */
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('tokens_token_hash_key').on(t.tokenHash), index('tokens_user_id_idx').on(t.userId)],
);

/** API keys: long-lived bearer credentials limited to scopes. Only a SHA-256 of the key is stored. */
export const apiKeys = pgTable(
  'api_keys',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    /** The key's first characters, shown to tell keys apart (never enough to use it). */
    prefix: text('prefix').notNull(),
    keyHash: text('key_hash').notNull(),
    scopes: text('scopes').array().notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('api_keys_key_hash_key').on(t.keyHash), index('api_keys_user_id_idx').on(t.userId)],
);

/** Failed logins, counted per username and per client address within the throttling window. */
export const loginFailures = pgTable(
  'login_failures',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    username: text('username').notNull(),
    clientIp: text('client_ip').notNull(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('login_failures_username_at_idx').on(t.username, t.at), index('login_failures_client_ip_at_idx').on(t.clientIp, t.at)],
);

/** Single-use tickets that open a stats WebSocket (a browser cannot send a header there). */
export const streamTickets = pgTable('stream_tickets', {
  ticketHash: text('ticket_hash').primaryKey(),
  userId: uuid('user_id')
    .notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  containerId: uuid('container_id').notNull(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
});

export const AUDIT_ACTOR_TYPES = ['user', 'api_key', 'anonymous', 'system'] as const;

/**
 * Who did what: every mutating API request and every action the system takes on a user's things.
 * Append-only: a trigger (migration 0007) refuses UPDATE, TRUNCATE and any DELETE but the
 * retention job's of rows older than its setting.
 */
export const auditLog = pgTable(
  'audit_log',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
    actorType: text('actor_type', { enum: AUDIT_ACTOR_TYPES }).notNull(),
    /** The acting user (user or api_key actors). */
    actorUserId: uuid('actor_user_id'),
    apiKeyId: uuid('api_key_id'),
    /** The operation id of an API request, or the system's action (e.g. `release.removeContainer`). */
    action: text('action').notNull(),
    targetType: text('target_type'),
    targetId: text('target_id'),
    /** The user whose things the action concerns (they read it in their own audit). */
    subjectUserId: uuid('subject_user_id'),
    outcome: text('outcome', { enum: ['success', 'failure'] }).notNull(),
    /** The HTTP status of an API request. */
    status: integer('status'),
    requestId: text('request_id'),
    clientIp: text('client_ip'),
    workflowId: text('workflow_id'),
    detail: jsonb('detail').$type<Record<string, unknown>>(),
  },
  (t) => [
    index('audit_log_at_idx').on(t.at),
    index('audit_log_subject_at_idx').on(t.subjectUserId, t.at),
    index('audit_log_actor_at_idx').on(t.actorUserId, t.at),
    check('audit_log_actor_type_valid', sql`${t.actorType} in ('user', 'api_key', 'anonymous', 'system')`),
    check('audit_log_outcome_valid', sql`${t.outcome} in ('success', 'failure')`),
  ],
);

/** Docker hosts, registered and kept alive by their host workers. */
export const hosts = pgTable('hosts', {
  id: text('id').primaryKey(),
  dockerEndpoint: text('docker_endpoint').notNull(),
  engineId: text('engine_id').notNull(),
  engineVersion: text('engine_version').notNull(),
  /** The host worker's internal endpoint for container logs and stats (API only). */
  streamUrl: text('stream_url'),
  /** The address containers publish their ports on. */
  publishIp: text('publish_ip').notNull().default('127.0.0.1'),
  registeredAt: timestamp('registered_at', { withTimezone: true }).notNull().defaultNow(),
  lastHeartbeatAt: timestamp('last_heartbeat_at', { withTimezone: true }).notNull().defaultNow(),
});

/**
 * Every movement of money. `amount` is signed (credit > 0, charge < 0) and
 * `balance_after` is the user's balance once it applied. The unique
 * idempotency key makes a retried activity move money once.
 */
export const ledgerEntries = pgTable(
  'ledger_entries',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    amount: bigint('amount', { mode: 'number' }).notNull(),
    balanceAfter: bigint('balance_after', { mode: 'number' }).notNull(),
    kind: text('kind', {
      enum: ['credit', 'image_charge', 'image_refund', 'container_charge', 'container_refund', 'release_refund', 'dcu_charge'],
    }).notNull(),
    reason: text('reason').notNull(),
    idempotencyKey: text('idempotency_key').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('ledger_entries_idempotency_key_key').on(t.idempotencyKey),
    index('ledger_entries_user_created_idx').on(t.userId, t.createdAt, t.id),
    check('ledger_entries_balance_after_non_negative', sql`${t.balanceAfter} >= 0`),
  ],
);

/** Images pulled onto a host for a user (private) or published to everyone (public). */
export const images = pgTable(
  'images',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'restrict' }),
    hostId: text('host_id')
      .notNull()
      .references(() => hosts.id),
    reference: text('reference').notNull(),
    repository: text('repository').notNull(),
    tag: text('tag'),
    digest: text('digest'),
    imageId: text('image_id').notNull(),
    sizeBytes: bigint('size_bytes', { mode: 'number' }).notNull(),
    ports: jsonb('ports').$type<string[]>().notNull().default([]),
    visibility: text('visibility', { enum: ['private', 'public'] }).notNull().default('private'),
    charged: bigint('charged', { mode: 'number' }).notNull().default(0),
    pullId: text('pull_id'),
    createdAt: createdAt(),
    /**
     * Set by the removeImage workflow before it touches the host, cleared if the removal fails: a
     * record being removed is leaving, not owned (a pull of it waits for the removal's end).
     */
    removalStartedAt: timestamp('removal_started_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('images_user_host_reference_key').on(t.userId, t.hostId, t.reference),
    index('images_host_image_id_idx').on(t.hostId, t.imageId),
    check('images_charged_non_negative', sql`${t.charged} >= 0`),
  ],
);

/** Containers, one durable workflow each (container-<id>). */
export const containers = pgTable(
  'containers',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'restrict' }),
    hostId: text('host_id')
      .notNull()
      .references(() => hosts.id),
    /** The image record it was run from; null once that record is removed (the container keeps its reference). */
    imageId: uuid('image_id').references(() => images.id, { onDelete: 'set null' }),
    imageReference: text('image_reference').notNull().default(''),
    name: text('name').notNull(),
    dockerId: text('docker_id'),
    hostIp: text('host_ip').notNull().default('127.0.0.1'),
    hostPort: integer('host_port').notNull(),
    containerPort: integer('container_port').notNull(),
    memoryMb: integer('memory_mb').notNull(),
    cpuMillis: integer('cpu_millis').notNull(),
    state: text('state', { enum: CONTAINER_STATES }).notNull(),
    stateReason: text('state_reason'),
    /** Why it is in its state, as a code (core/container-state.ts); null when no reason is needed, and on records older than codes. */
    stateReasonCode: text('state_reason_code', { enum: CONTAINER_REASON_CODES }),
    charged: bigint('charged', { mode: 'number' }).notNull().default(0),
    env: jsonb('env').$type<string[]>().notNull().default([]),
    cmd: jsonb('cmd').$type<string[] | null>(),
    exitCode: integer('exit_code'),
    /** Minor units per billing period, fixed when the container was created; null for containers created before prices by resources. */
    pricePerPeriod: bigint('price_per_period', { mode: 'number' }),
    /** The most processes the container may run; null for containers created before PIDs limits. */
    pidsLimit: integer('pids_limit'),
    createdAt: createdAt(),
    startedAt: timestamp('started_at', { withTimezone: true }),
    removedAt: timestamp('removed_at', { withTimezone: true }),
  },
  (t) => [
    // A host port belongs to one live container per host; removal frees it.
    uniqueIndex('containers_host_port_live_key').on(t.hostId, t.hostPort).where(sql`${t.removedAt} is null`),
    index('containers_user_idx').on(t.userId),
    uniqueIndex('containers_user_name_live_key').on(t.userId, t.name).where(sql`${t.removedAt} is null`),
    check('containers_host_port_range', sql`${t.hostPort} between 1 and 65535`),
    check('containers_container_port_range', sql`${t.containerPort} between 1 and 65535`),
    check('containers_state_valid', sql.raw(`"containers"."state" in (${CONTAINER_STATES.map((s) => `'${s}'`).join(', ')})`)),
  ],
);

export const DCU_STATES = ['idle', 'downloading', 'compressing', 'uploading', 'completed', 'failed'] as const;

/** Download-Compress-Upload tasks, persisted at every state transition. */
export const dcuTasks = pgTable(
  'dcu_tasks',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'restrict' }),
    username: text('username').notNull(),
    hostId: text('host_id').references(() => hosts.id),
    dockerImageName: text('docker_image_name').notNull(),
    state: text('state', { enum: DCU_STATES }).notNull().default('idle'),
    errorMessage: text('error_message'),
    gzipFileName: text('gzip_file_name'),
    minioObjectName: text('minio_object_name'),
    bytesDone: bigint('bytes_done', { mode: 'number' }).notNull().default(0),
    bytesTotal: bigint('bytes_total', { mode: 'number' }).notNull().default(0),
    sizeBytes: bigint('size_bytes', { mode: 'number' }),
    compressedBytes: bigint('compressed_bytes', { mode: 'number' }),
    sha256: text('sha256'),
    /** Docker's image id (sha256:...) of what was packaged: a later task of the same image reuses the archive. */
    imageId: text('image_id'),
    /** Minor units charged for the task (when its upload completed). */
    charged: bigint('charged', { mode: 'number' }).notNull().default(0),
    artifactsExpired: boolean('artifacts_expired').notNull().default(false),
    startTime: timestamp('start_time', { withTimezone: true }),
    endTime: timestamp('end_time', { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('dcu_tasks_user_created_idx').on(t.userId, t.createdAt),
    index('dcu_tasks_image_id_completed_idx').on(t.imageId).where(sql`${t.state} = 'completed'`),
    check('dcu_tasks_charged_non_negative', sql`${t.charged} >= 0`),
    check(
      'dcu_tasks_state_valid',
      sql`${t.state} in ('idle', 'downloading', 'compressing', 'uploading', 'completed', 'failed')`,
    ),
  ],
);

/**
 * Pulls in flight per user, for the per-user concurrent pull limit: a row is taken when a
 * pull starts and released when its end is seen (by the API, or lazily when the limit is reached).
 */
export const pullSlots = pgTable(
  'pull_slots',
  {
    pullId: text('pull_id').primaryKey(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    createdAt: createdAt(),
    releasedAt: timestamp('released_at', { withTimezone: true }),
    /**
     * A pull answered by the API from the user's own record, without a workflow (a dedup started
     * without ?wait): the image as it was answered, which GET of the pull returns. Such a row is
     * taken released: it never holds a slot.
     */
    dedupedImage: jsonb('deduped_image').$type<ImageView>(),
  },
  (t) => [index('pull_slots_user_open_idx').on(t.userId).where(sql`${t.releasedAt} is null`)],
);

/** Nightly release runs and their reports. */
export const releaseRuns = pgTable('release_runs', {
  id: text('id').primaryKey(),
  status: text('status', { enum: ['running', 'completed', 'failed'] }).notNull(),
  startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
  endedAt: timestamp('ended_at', { withTimezone: true }),
  refundedTotal: bigint('refunded_total', { mode: 'number' }).notNull().default(0),
  report: jsonb('report').$type<Record<string, unknown>>(),
});
