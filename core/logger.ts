import pino from 'pino';
import type { LogConfig } from './config.js';

export function createLogger(name: string, config: LogConfig) {
  return pino({ name, level: config.level });
}
