/**
 * The Temporal SDK's logging as the process's pino JSON lines (core/logger.ts, so every line is
 * redacted by core/redact.ts like any other): the SDK's own lines (worker, activity and workflow
 * lifecycle), the workflow and activity context loggers (`log` from @temporalio/workflow and
 * @temporalio/activity: each line carries the workflow id, run id and type, the activity type
 * and attempt, and the request id: workers/request-id-activity-interceptor.ts,
 * workflows/request-id-interceptors.ts), and Core's (Rust) lines, forwarded.
 *
 *   Runtime.install({ logger: sdkLogger(logger), telemetryOptions: { logging: coreLogForwarding(logger) } })
 */
import type { Logger as PinoLogger, Level } from 'pino';
import { makeTelemetryFilterString, type LogExporterConfig, type Logger, type LogLevel, type LogMetadata } from '@temporalio/worker';

const PINO_LEVEL: Record<LogLevel, Level> = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };

/**
 * The fields of an SDK line as pino writes them: its symbol-keyed timestamp dropped (pino stamps
 * the line), `error` as pino's `err` (serialized with its type, message and stack; an Error under
 * another key would be written as `{}`), and the activity's task token dropped (an opaque handle
 * that completes the activity, and 200 characters of noise on every line).
 */
function fields(meta: LogMetadata | undefined): Record<string, unknown> {
  if (!meta) return {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(meta)) {
    if (key === 'taskToken') continue;
    out[key === 'error' ? 'err' : key] = value;
  }
  return out;
}

/** A Temporal SDK logger writing through `logger` (the process's pino), one JSON line per call. */
export function sdkLogger(logger: PinoLogger): Logger {
  const log = (level: LogLevel, message: string, meta?: LogMetadata) => {
    const pinoLevel = PINO_LEVEL[level] ?? 'info';
    if (!logger.isLevelEnabled(pinoLevel)) return;
    logger[pinoLevel](fields(meta), message);
  };
  return {
    log,
    trace: (message, meta) => log('TRACE', message, meta),
    debug: (message, meta) => log('DEBUG', message, meta),
    info: (message, meta) => log('INFO', message, meta),
    warn: (message, meta) => log('WARN', message, meta),
    error: (message, meta) => log('ERROR', message, meta),
  };
}

/** Core's level for the process's: as verbose as pino's (trace at most), its dependencies' warnings and errors only. */
function coreLevel(level: string): LogLevel {
  switch (level) {
    case 'trace':
      return 'TRACE';
    case 'debug':
      return 'DEBUG';
    case 'info':
      return 'INFO';
    case 'warn':
      return 'WARN';
    default:
      return 'ERROR';
  }
}

/** Core's (Rust) log lines forwarded to the Runtime's logger (sdkLogger), at the process's level, instead of printed apart. */
export function coreLogForwarding(logger: Pick<PinoLogger, 'level'>): LogExporterConfig {
  return { filter: makeTelemetryFilterString({ core: coreLevel(logger.level), other: 'WARN' }), forward: {} };
}
