import pino from 'pino';
import type { LogConfig } from './config.js';
import { redactLogObject } from './redact.js';

/** A process's logger: JSON lines, every field passed through the redaction of secrets. */
export function createLogger(name: string, config: LogConfig) {
  return pino({ name, level: config.level, formatters: { log: redactLogObject } });
}
