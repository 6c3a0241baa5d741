import pino, { type DestinationStream } from 'pino';
import type { LogConfig } from './config.js';
import { redactJsonLine } from './redact.js';

/** A process's logger: JSON lines, each redacted of secrets as it is written (core/redact.ts); to stdout unless given a destination (tests). */
export function createLogger(name: string, config: LogConfig, destination?: DestinationStream) {
  const options = { name, level: config.level, hooks: { streamWrite: redactJsonLine } };
  return destination ? pino(options, destination) : pino(options);
}
