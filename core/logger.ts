import pino from 'pino';
import type { LogConfig } from './config.js';
import { redactJsonLine } from './redact.js';

/** A process's logger: JSON lines, each redacted of secrets as it is written (core/redact.ts). */
export function createLogger(name: string, config: LogConfig) {
  return pino({ name, level: config.level, hooks: { streamWrite: redactJsonLine } });
}
