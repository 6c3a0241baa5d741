import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import pino from 'pino';
import * as schema from './schema.js';

export type Database = NodePgDatabase<typeof schema>;
/** A transaction handle, as drizzle passes it to `db.transaction(async (tx) => ...)`. */
export type Transaction = Parameters<Parameters<Database['transaction']>[0]>[0];
/** What a repository runs its queries on: the pool, or the caller's transaction. */
export type Executor = Database | Transaction;

export interface DatabaseHandle {
  db: Database;
  pool: pg.Pool;
  close(): Promise<void>;
}

/**
 * A pool on `url`, of at most `max` connections. With `allowExitOnIdle`, idle connections do not
 * keep the process alive (a test file's shared pool: otherwise the process waits out the pool's
 * 10 s idle timeout before it can exit).
 */
export function connectDatabase(url: string, { max = 10, allowExitOnIdle = false } = {}): DatabaseHandle {
  const pool = new pg.Pool({ connectionString: url, max, allowExitOnIdle });
  pool.on('error', () => {
    // An idle client lost its connection; the pool replaces it on next use.
  });
  const db = drizzle(pool, { schema });
  return { db, pool, close: () => pool.end() };
}

// ---------------------------------------------------------------------------------------
// Logging database errors without the data they carry

type ErrorLike = Error & Record<string, unknown>;
const isErrorLike = (value: unknown): value is ErrorLike =>
  value instanceof Error || (typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string' && typeof (value as { stack?: unknown }).stack === 'string');

/** drizzle's DrizzleQueryError: "Failed query: <sql>\nparams: <values>", with `query` and `params`. */
const isQueryError = (err: ErrorLike) => typeof err.query === 'string' && 'params' in err;
/** pg's DatabaseError: `detail` ("Key (username)=(...)", "Failing row contains (...)") and `where` carry row data. */
const isPgError = (err: ErrorLike) => typeof err.code === 'string' && typeof err.severity === 'string' && 'routine' in err;

/** What a pg error may say: its SQLSTATE and where it happened, never the row. */
const PG_FIELDS = ['code', 'severity', 'constraint', 'table', 'column', 'schema', 'dataType', 'routine'] as const;

function involvesDatabase(err: unknown, depth = 0): boolean {
  if (!isErrorLike(err) || depth > 8) return false;
  return isQueryError(err) || isPgError(err) || involvesDatabase(err.cause, depth + 1);
}

/** The stack's frames under a message of our own (V8 starts a stack with "<name>: <message>"). */
function stackWith(err: ErrorLike, type: string, message: string): string {
  const stack = typeof err.stack === 'string' ? err.stack : '';
  const head = `${String(err.name)}: ${err.message}`;
  const frames = stack.startsWith(head)
    ? stack.slice(head.length).replace(/^\n/, '')
    : stack.split('\n').filter((line) => /^\s+at /.test(line)).join('\n');
  return frames ? `${type}: ${message}\n${frames}` : `${type}: ${message}`;
}

/** pg quotes the offending input in data exceptions ('invalid input syntax for type uuid: "..."'). */
function redactPgMessage(message: string, params: unknown[]): string {
  let text = message;
  for (const value of params) {
    const s =
      typeof value === 'string'
        ? value
        : typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean'
          ? String(value)
          : value !== null && typeof value === 'object' && !(value instanceof Date)
            ? JSON.stringify(value)
            : '';
    if (s.length >= 2) text = text.split(s).join('[redacted]');
  }
  return text.replace(/: ".*"$/s, ': "[redacted]"');
}

function serialize(err: ErrorLike, params: unknown[], depth: number): Record<string, unknown> {
  const type = err.constructor?.name || String(err.name);
  const cause = depth < 8 && isErrorLike(err.cause) ? serialize(err.cause, params, depth + 1) : undefined;
  if (isQueryError(err)) {
    const message = `Failed query: ${err.query as string}`;
    const ownParams = Array.isArray(err.params) ? (err.params as unknown[]) : [];
    const inner = depth < 8 && isErrorLike(err.cause) ? serialize(err.cause, [...params, ...ownParams], depth + 1) : undefined;
    return { type, message, query: err.query, stack: stackWith(err, type, message), ...(inner ? { cause: inner } : {}) };
  }
  if (isPgError(err)) {
    const message = redactPgMessage(err.message, params);
    const fields = Object.fromEntries(PG_FIELDS.filter((k) => err[k] !== undefined).map((k) => [k, err[k]]));
    return { type, message, ...fields, stack: stackWith(err, type, message), ...(cause ? { cause } : {}) };
  }
  // Any other error on the way to a database error: its own message and stack, nothing it copied from its cause.
  return { type, message: err.message, stack: err.stack, ...(typeof err.code === 'string' ? { code: err.code } : {}), ...(cause ? { cause } : {}) };
}

/**
 * A pino `err` serializer that never writes a query's parameters: drizzle puts them in its
 * error message ("params: ..."), pg in `detail` and in some messages. The SQL, the SQLSTATE
 * and the constraint stay. Any other error goes to pino's standard serializer.
 */
export function serializeError(err: unknown): unknown {
  if (!isErrorLike(err)) return err;
  if (!involvesDatabase(err)) return pino.stdSerializers.err(err);
  return serialize(err, [], 0);
}

/**
 * The same error without the data a query carried, for where errors travel further than a
 * log line: an activity's failure is stored in the workflow's history (and may become a
 * container's stateReason). A database error becomes a plain Error whose message is the
 * chain of safe messages (the SQL, pg's redacted reason) and whose `code` is pg's SQLSTATE;
 * any other error is returned as it is.
 */
export function withoutQueryParams(error: unknown): unknown {
  if (!isErrorLike(error) || !involvesDatabase(error)) return error;
  const messages: string[] = [];
  let code: unknown;
  for (let link: Record<string, unknown> | undefined = serialize(error, [], 0); link; link = link.cause as Record<string, unknown> | undefined) {
    messages.push(String(link.message));
    if (typeof link.code === 'string') code = link.code;
  }
  const safe = new Error(messages.join(': ')) as Error & { code?: unknown };
  safe.name = 'DatabaseError';
  if (code !== undefined) safe.code = code;
  return safe;
}
